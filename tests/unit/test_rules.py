"""Event rules as tables of frame sequences: the events each must, and must not, produce.

Each sequence is built from objects with explicit tracks over time (flicker, identity switches,
occlusions, re-entries); `play` steps the rule frame by frame like the runner does (ended tracks
are `forget`-ed) and returns (time, kind, phase) of every event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from engine.config import (
    AbandonedObjectRuleConfig,
    CrowdRuleConfig,
    DumpingRuleConfig,
    IntrusionRuleConfig,
    LineCrossingRuleConfig,
    LoiteringRuleConfig,
    ZoneConfig,
)
from engine.preprocess.ground_register import shift_homography
from engine.rules import (
    AbandonedObjectRule,
    CrowdRule,
    DumpingRule,
    LineCrossingRule,
    LoiteringRule,
    View,
    ZonePresenceRule,
)
from engine.types import Event, Tracks
from tests.conftest import make_frame

NAMES = ("person", "car", "truck", "debris", "bag")
FPS = 5.0
ZONE = ZoneConfig(id="z", source="cam1", polygon=[(0, 0), (640, 0), (640, 480), (0, 480)])
GATE = ZoneConfig(id="g", source="cam1", polygon=[(200, 200), (400, 200), (400, 400), (200, 400)])


@dataclass
class Obj:
    """One object: track id, class, and its box (x1, y1, x2, y2) as a function of time (None:
    not seen at that time)."""

    tid: int
    cls: int
    box: Callable[[float], tuple[float, float, float, float] | None]


def still(x: float, y: float, w: float, h: float, t0: float = 0.0, t1: float = 1e9) -> Callable:
    return lambda t: (x, y, x + w, y + h) if t0 <= t < t1 else None


def moving(
    x0: float, y0: float, vx: float, vy: float, w: float, h: float, t0: float = 0.0, t1: float = 1e9
) -> Callable:
    def f(t: float) -> tuple[float, float, float, float] | None:
        if not t0 <= t < t1:
            return None
        x, y = x0 + vx * (t - t0), y0 + vy * (t - t0)
        return (x, y, x + w, y + h)

    return f


def tracks_at(objs: list[Obj], t: float, offset: tuple[float, float] = (0, 0)) -> Tracks:
    rows = [(o, o.box(t)) for o in objs]
    rows = [(o, b) for o, b in rows if b is not None]
    n = len(rows)
    dx, dy = offset
    return Tracks(
        np.array(
            [[b[0] - dx, b[1] - dy, b[2] - dx, b[3] - dy] for _, b in rows], np.float32
        ).reshape(n, 4),
        np.full(n, 0.9, np.float32),
        np.array([o.cls for o, _ in rows], np.int32),
        np.array([o.tid for o, _ in rows], np.int64),
        NAMES,
    )


Events = list[tuple[float, str, str]]


def step_through(
    rule: object,
    objs: list[Obj],
    seconds: float,
    view: Callable[[float], View] | None = None,
    offset: Callable[[float], tuple[float, float]] | None = None,
    track_buffer_s: float = 0.0,
) -> list[Event]:
    """Step `rule` through `seconds` of the objects like the runner does; every event. A track
    unseen for longer than `track_buffer_s` ends (the tracker keeps lost tracks that long)."""
    out = []
    last: dict[int, float] = {}
    frame = make_frame(0.0)
    for k in range(int(seconds * FPS)):
        t = k / FPS
        frame = make_frame(t, seq=k)
        off = offset(t) if offset else (0.0, 0.0)
        tr = tracks_at(objs, t, off)
        last.update((int(x), t) for x in tr.track_id)
        ended = sorted(tid for tid, seen in last.items() if t - seen > track_buffer_s)
        for tid in ended:
            del last[tid]
        if ended:
            rule.forget(ended)  # type: ignore[attr-defined]
        v = view(t) if view else View(shift_homography(*off), moving=offset is not None)
        out += rule.step(tr, frame, v)  # type: ignore[attr-defined]
    return out + rule.close(frame)  # type: ignore[attr-defined]


def play(
    rule: object,
    objs: list[Obj],
    seconds: float,
    view: Callable[[float], View] | None = None,
    offset: Callable[[float], tuple[float, float]] | None = None,
) -> Events:
    """(t, kind, phase) of each event of `step_through`."""
    return [
        (round(e.pts_s, 1), e.kind, e.phase)
        for e in step_through(rule, objs, seconds, view, offset)
    ]


def phases(events: list[tuple[float, str, str]]) -> list[str]:
    return [p for _, _, p in events]


# --- intrusion -------------------------------------------------------------------------------


def test_intrusion_needs_a_few_frames_and_reports_the_count() -> None:
    rule = ZonePresenceRule(IntrusionRuleConfig(id="i", zone="g"), GATE, NAMES)
    blip = [Obj(1, 0, still(250, 250, 20, 60, 1.0, 1.2))]  # one frame only
    assert play(rule, blip, 5) == []
    rule = ZonePresenceRule(IntrusionRuleConfig(id="i", zone="g"), GATE, NAMES)
    two = [
        Obj(1, 0, still(250, 250, 20, 60, 1.0, 3.0)),
        Obj(2, 0, still(300, 250, 20, 60, 1.0, 3.0)),
    ]
    frame_events = []
    for k in range(25):
        t = k / FPS
        frame_events += rule.step(tracks_at(two, t), make_frame(t, seq=k))
    assert [e.phase for e in frame_events] == ["start", "end"]
    assert frame_events[0].kind == "intrusion" and frame_events[0].attributes["count"] == 2
    assert frame_events[0].pts_s == pytest.approx(1.4)  # third frame inside


# --- line crossing ---------------------------------------------------------------------------

LINE = {"id": "l", "source": "cam1", "line": [(300, 0), (300, 480)], "clear_after_s": 2.0}


@pytest.mark.parametrize(
    ("objs", "cfg", "expected"),
    [
        # walks left to right across: one crossing ('in': to the left of A->B walking down)
        (
            [Obj(1, 0, moving(200, 200, 50, 0, 20, 60))],
            {},
            [(2.0, "line_crossing", "start"), (4.0, "line_crossing", "end")],
        ),
        # a box flickering on the line (within the hysteresis) makes no crossing
        (
            [
                Obj(
                    1,
                    0,
                    lambda t: (
                        285 + 6 * (int(t * FPS) % 2),
                        200,
                        305 + 6 * (int(t * FPS) % 2),
                        260,
                    ),
                )
            ],
            {},
            [],
        ),
        # there and back: two crossings in one incident (start, update), then the end
        (
            [
                Obj(
                    1,
                    0,
                    lambda t: (
                        200 + 60 * min(t, 4 - t) if t < 4 else 200,
                        200,
                        220 + 60 * min(t, 4 - t) if t < 4 else 220,
                        260,
                    ),
                )
            ],
            {},
            [
                (1.8, "line_crossing", "start"),
                (2.8, "line_crossing", "update"),
                (4.8, "line_crossing", "end"),
            ],
        ),
        # only 'out' wanted: the left-to-right crossing is counted but not reported
        ([Obj(1, 0, moving(200, 200, 50, 0, 20, 60))], {"direction": "out"}, []),
        # a car is not a person
        ([Obj(1, 1, moving(200, 200, 50, 0, 20, 60))], {}, []),
    ],
)
def test_line_crossing(objs: list[Obj], cfg: dict, expected: list) -> None:
    rule = LineCrossingRule(LineCrossingRuleConfig(**{**LINE, **cfg}), NAMES)
    assert play(rule, objs, 8) == expected


def test_line_crossing_counts_directions_and_frees_ended_tracks() -> None:
    rule = LineCrossingRule(LineCrossingRuleConfig(**LINE), NAMES)
    objs = [
        Obj(1, 0, moving(200, 200, 50, 0, 20, 60, 0, 5)),
        Obj(2, 0, moving(400, 300, -50, 0, 20, 60, 0, 5)),
    ]
    play(rule, objs, 8)
    assert (rule.count_in, rule.count_out) == (1, 1)
    assert rule._side == {}  # both tracks ended: nothing kept


# --- loitering -------------------------------------------------------------------------------


def loiter_rule(**kw: object) -> LoiteringRule:
    settings: dict[str, object] = {"dwell_s": 10, "grace_s": 3, "clear_after_s": 2, **kw}
    cfg = LoiteringRuleConfig(id="lo", zone="g", **settings)  # type: ignore[arg-type]
    return LoiteringRule(cfg, GATE, NAMES)


def test_loitering_after_dwell_and_not_for_passers_by() -> None:
    stays = [Obj(1, 0, still(250, 250, 20, 60, 1.0, 16.0))]
    assert play(loiter_rule(), stays, 20) == [
        (11.0, "loitering", "start"),
        (17.8, "loitering", "end"),
    ]
    passer = [Obj(1, 0, still(250, 250, 20, 60, 1.0, 8.0))]
    assert play(loiter_rule(), passer, 20) == []


def test_loitering_tolerates_brief_exits_but_restarts_after_long_ones() -> None:
    out_2s = lambda t: (250, 250, 270, 310) if not 5 <= t < 7 else (500, 250, 520, 310)  # noqa: E731
    assert phases(play(loiter_rule(), [Obj(1, 0, out_2s)], 12)) == ["start", "end"]
    assert play(loiter_rule(), [Obj(1, 0, out_2s)], 12)[0][0] == 10.0
    out_5s = lambda t: (250, 250, 270, 310) if not 5 <= t < 10 else (500, 250, 520, 310)  # noqa: E731
    assert play(loiter_rule(), [Obj(1, 0, out_5s)], 16) == []  # 5 s + 6 s: never 10 in a row


def test_loitering_survives_an_identity_switch_but_not_a_stranger_elsewhere() -> None:
    switch = [
        Obj(1, 0, still(250, 250, 20, 60, 0.0, 6.0)),
        Obj(2, 0, still(255, 252, 20, 60, 7.0, 14.0)),
    ]
    assert play(loiter_rule(), switch, 14)[0] == (10.0, "loitering", "start")
    far = [
        Obj(1, 0, still(210, 210, 20, 60, 0.0, 6.0)),
        Obj(2, 0, still(360, 320, 20, 60, 7.0, 14.0)),
    ]
    assert play(loiter_rule(), far, 14) == []


def test_one_incident_per_loiterer() -> None:
    two = [Obj(1, 0, still(210, 250, 20, 60, 1.0, 16.0)), Obj(2, 0, still(350, 250, 20, 60, 3.0))]
    events = step_through(loiter_rule(), two, 20)
    starts = [e for e in events if e.phase == "start"]
    assert [round(e.pts_s, 1) for e in starts] == [11.0, 13.0]
    assert len({e.event_id for e in events}) == 2
    assert [list(e.track_id) for e in starts] == [[1], [2]]


def test_a_tout_is_one_incident_across_identity_switches() -> None:
    # the tracker still holds track 1 (lost, 2 s buffer) when track 2 takes the tout over
    live_switch = [
        Obj(1, 0, still(250, 250, 20, 60, 0.0, 6.0)),
        Obj(2, 0, still(256, 252, 20, 60, 6.2, 14.0)),
    ]
    events = step_through(loiter_rule(), live_switch, 14, track_buffer_s=2.0)
    assert (round(events[0].pts_s, 1), events[0].phase) == (10.0, "start")
    assert events[0].attributes["track_ids"] == [1, 2]
    # reported, then hidden for 5 s (longer than reid_s), back as a new track where they were
    rule = loiter_rule(clear_after_s=8.0)
    hidden = [
        Obj(1, 0, still(250, 250, 20, 60, 0.0, 20.0)),
        Obj(2, 0, still(254, 250, 20, 60, 25.0, 40.0)),
    ]
    events = step_through(rule, hidden, 50)
    assert [e.phase for e in events] == ["start", "end"]  # one incident, not two
    assert events[-1].pts_s == pytest.approx(47.8)  # last seen 39.8 s, + clear_after_s


def test_a_passer_by_does_not_take_over_a_tout_missed_for_a_frame() -> None:
    tout = Obj(1, 0, lambda t: None if 5.0 <= t < 5.4 else (250, 250, 270, 310))
    passer = Obj(2, 0, moving(256, 252, 60, 0, 20, 60, 5.0, 8.0))  # appears beside him, walks on
    for objs in ([tout, passer], [passer, tout]):  # whichever the tracker lists first
        events = step_through(loiter_rule(), objs, 14, track_buffer_s=2.0)
        assert [(round(e.pts_s, 1), e.phase, list(e.track_id)) for e in events][:1] == [
            (10.0, "start", [1])
        ]


def crowd_member(i: int, t1: float = 1e9) -> Obj:
    return Obj(i, 0, still(225 + (i % 4) * 30, 215 + (i // 4) * 60, 20, 60, 1.0, t1))


def walker_chain(speed_px_s: float) -> list[Obj]:
    """Eight people, each seen for 2 s going across the gate at `speed_px_s` and then lost
    (hidden, missed); the next appears where the last one vanished, half a second later."""
    objs = []
    for k in range(8):
        t0 = 2.5 * k
        x0, v = (220.0, speed_px_s) if k % 2 == 0 else (220.0 + 2 * speed_px_s, -speed_px_s)
        objs.append(Obj(10 + k, 0, moving(x0, 250, v, 0, 20, 60, t0, t0 + 2.0)))
    return objs


def test_passers_by_at_a_busy_gate_are_not_chained_into_one_stay() -> None:
    # walking (1 box height per second): each is someone else, nobody stays 10 s
    assert play(loiter_rule(), walker_chain(60.0), 25) == []
    # shuffling (a fifth of that): one person the tracker keeps losing, a loiterer
    assert phases(play(loiter_rule(), walker_chain(12.0), 25)) == ["start", "end"]


def test_crowd_members_are_not_loiterers_unless_they_stay_after_it_disperses() -> None:
    crowd = [crowd_member(i) for i in range(8)]  # 8 people standing together the whole time
    assert play(loiter_rule(), crowd, 30) == []
    # the crowd leaves at 15 s, one of them stays: loitering dwell_s after the crowd went
    stays = [crowd_member(0)] + [crowd_member(i, 15.0) for i in range(1, 8)]
    # (last seen together at 14.8 s)
    assert play(loiter_rule(), stays, 30)[0] == (24.8, "loitering", "start")
    # people walking past one who waits are no crowd: the tout still loiters
    walkers = [
        Obj(10 + i, 0, moving(200, 300, 40, 0, 20, 60, i * 1.5, i * 1.5 + 4)) for i in range(12)
    ]
    tout = Obj(1, 0, still(250, 250, 20, 60, 1.0))
    assert play(loiter_rule(), [tout, *walkers], 20)[0] == (11.0, "loitering", "start")


def test_loitering_state_is_bounded() -> None:
    rule = loiter_rule()
    walkers = [
        Obj(i, 0, still(200 + (i % 9) * 20, 250, 20, 60, i * 0.5, i * 0.5 + 2)) for i in range(60)
    ]
    play(rule, walkers, 45)  # the last one vanished at 31.5 s: kept hidden_s (10 s), no longer
    assert rule.tracked == 0


# --- crowds ----------------------------------------------------------------------------------


def crowd_rule(**kw: object) -> CrowdRule:
    cfg = CrowdRuleConfig(
        id="c", zone="g", min_count=8, gather_rise=5, min_runners=4, clear_after_s=2, **kw
    )
    return CrowdRule(cfg, GATE, NAMES)


def person_at(i: int, t0: float, t1: float = 1e9) -> Obj:
    x, y = 220 + (i % 5) * 35, 220 + (i // 5) * 70
    return Obj(i, 0, still(x, y, 15, 50, t0, t1))


def test_crowd_gathering_when_people_arrive_fast() -> None:
    arriving = [person_at(i, 10.0 + i * 0.5) for i in range(10)]
    events = play(crowd_rule(), arriving, 20)
    assert events[0] == (13.6, "crowd_gathering", "start")  # the 8th person at 13.5 s
    assert phases(events) == ["start", "end"]


def test_a_crowd_that_was_always_there_is_not_a_gathering() -> None:
    # tracks being born at the start of the stream are no rise
    assert play(crowd_rule(), [person_at(i, 0.0) for i in range(10)], 10) == []
    # nor are people spread over the zone: the crowd is who stands close together
    spread = [
        Obj(i, 0, still(200 + (i % 2) * 180, 200 + (i // 2) * 40, 8, 20, 10 + i * 0.3))
        for i in range(10)
    ]
    assert play(crowd_rule(), spread, 20) == []


def converge(i: int, n: int, t0: float, parallel: bool = False) -> Obj:
    """Walks from a ring 150 px out towards (300, 300) at 0.8 heights/s from t0 (or, with
    `parallel`, everyone to the right)."""
    ang = 2 * np.pi * i / n
    sx, sy = 300 + 150 * np.cos(ang), 300 + 75 * np.sin(ang)
    vx, vy = (40.0, 0.0) if parallel else ((300 - sx) / 150 * 40, (300 - sy) / 75 * 20)

    def f(t: float) -> tuple[float, float, float, float]:
        s = min(max(0.0, t - t0), 3.5)  # walk for 3.5 s, then stand
        x, y = sx + vx * s, sy + vy * s
        return (x - 7, y - 50, x + 7, y)

    return Obj(i, 0, f)


def test_gathering_is_reported_while_people_converge() -> None:
    events = play(crowd_rule(), [converge(i, 12, 10.0) for i in range(12)], 20)
    assert events[0][1:] == ("crowd_gathering", "start")
    assert 10.0 < events[0][0] <= 12.5  # before they stand together at 13.5 s
    assert play(crowd_rule(), [converge(i, 12, 10.0, parallel=True) for i in range(12)], 20) == []


def scatter(i: int, t_run: float, speed_h: float) -> Obj:
    """Stands in the crowd until t_run, then moves away from (300, 300) at speed_h heights/s."""
    x, y = 220 + (i % 5) * 35, 220 + (i // 5) * 70
    dx, dy = x - 290, y - 270
    norm = max(1.0, (dx * dx + dy * dy) ** 0.5)
    v = speed_h * 50

    def f(t: float) -> tuple[float, float, float, float]:
        s = max(0.0, t - t_run)
        px, py = x + dx / norm * v * s, y + dy / norm * v * s
        return (px, py, px + 15, py + 50)

    return Obj(i, 0, f)


def test_crowd_dispersal_when_the_crowd_runs_apart_not_when_it_walks_away() -> None:
    runners = [scatter(i, 5.0, 3.0) for i in range(10)]
    events = [e for e in play(crowd_rule(), runners, 10) if e[1] == "crowd_dispersal"]
    assert events[0][2] == "start" and 5.0 < events[0][0] <= 6.0
    walkers = [scatter(i, 5.0, 0.7) for i in range(10)]
    assert [e for e in play(crowd_rule(), walkers, 10) if e[1] == "crowd_dispersal"] == []


def test_runners_without_a_crowd_are_no_dispersal() -> None:
    runners = [Obj(i, 0, moving(100 + 30 * i, 100, 150, 0, 15, 50)) for i in range(6)]
    assert play(crowd_rule(), runners, 6) == []


# --- dumping ---------------------------------------------------------------------------------


def dump_rule(**kw: object) -> DumpingRule:
    cfg = DumpingRuleConfig(
        id="d", zone="z", stop_s=2, confirm_s=1, clear_after_s=3, use_foreground=False, **kw
    )
    return DumpingRule(cfg, ZONE, NAMES)


def truck(t_arrive: float, t_leave: float) -> Obj:
    """Drives in from the left, stands at x=300 from t_arrive to t_leave, drives off right."""

    def f(t: float) -> tuple[float, float, float, float]:
        x = 300 - 100 * max(0.0, t_arrive - t) + 100 * max(0.0, t - t_leave)
        return (x, 200, x + 120, 260)

    return Obj(1, 2, f)


PILE = still(250, 240, 40, 25)  # behind the truck's stop


def staged(
    rule: DumpingRule,
    objs: list[Obj],
    seconds: float,
    view: Callable[[float], View] | None = None,
    offset: Callable[[float], tuple[float, float]] | None = None,
) -> list[tuple[float, str, str | None, str]]:
    """(t, phase, stage, severity) of each event of `step_through`, all of one incident."""
    events = step_through(rule, objs, seconds, view, offset)
    assert len({e.event_id for e in events}) <= 1, "one stop, one incident"
    return [(round(e.pts_s, 1), e.phase, e.stage, e.severity) for e in events]


SUSPECTED = (4.8, "start", "suspected", "warning")  # the truck stood still from 2.8 s
LEFT = 13.4  # it drives off at 12 s: moving for LEAVE_S, and then it has left
DUMPING = [
    SUSPECTED,
    (7.0, "update", "confirmed", "critical"),  # the pile from 6 s, seen for confirm_s
    (LEFT, "update", "vehicle_left", "critical"),
    (15.4, "end", "closed", "critical"),  # gone for clear_after_s
]
DELIVERY = [
    SUSPECTED,
    (LEFT, "update", "vehicle_left", "warning"),
    (15.4, "end", "cleared", "warning"),  # it left and nothing was found: not a dumping
]


def test_dumping_in_stages_while_the_truck_is_there() -> None:
    objs = [truck(3.0, 12.0), Obj(7, 3, lambda t: PILE(t) if t >= 6.0 else None)]
    assert staged(dump_rule(), objs, 20) == DUMPING


def test_without_a_suspected_stage_the_incident_starts_confirmed() -> None:
    objs = [truck(3.0, 12.0), Obj(7, 3, lambda t: PILE(t) if t >= 6.0 else None)]
    assert staged(dump_rule(suspect_after_s=None), objs, 20) == [
        (7.0, "start", "confirmed", "critical"),
        (LEFT, "update", "vehicle_left", "critical"),
        (15.4, "end", "closed", "critical"),
    ]


def test_suspected_waits_for_its_own_threshold() -> None:
    events = staged(dump_rule(suspect_after_s=5.0), [truck(3.0, 12.0)], 20)
    assert events[0] == (7.8, "start", "suspected", "warning")  # 5 s after the stop at 2.8 s


def test_vehicle_left_says_when_and_which_way() -> None:
    objs = [truck(3.0, 12.0), Obj(7, 3, lambda t: PILE(t) if t >= 6.0 else None)]
    events = step_through(dump_rule(), objs, 20)
    first, left = events[0], next(e for e in events if e.stage == "vehicle_left")
    assert first.attributes["vehicle_heading_deg"] == 90.0  # it came in from the left
    assert first.attributes["stopped_pts_s"] == pytest.approx(2.8)
    assert first.snapshot is not None and first.attributes["vehicle_track_id"] == 1
    assert left.attributes["departure_heading_deg"] == 90.0  # and drove off to the right
    assert 12.0 <= left.attributes["departed_pts_s"] <= 12.6


def test_a_truck_hidden_for_a_while_has_not_left() -> None:
    stands = truck(3.0, 12.0).box
    hidden = Obj(1, 2, lambda t: None if 5.0 <= t < 6.6 else stands(t))  # a bus passes in front
    events = staged(dump_rule(), [hidden], 20)  # one incident (staged checks the event id)
    assert events[0] == SUSPECTED
    assert events[-1] == (15.4, "end", "cleared", "warning")  # 3 s after it really drove off
    assert [e[2] for e in events].count(
        "vehicle_left"
    ) == 2  # one while the bus hid it, then the real one


@pytest.mark.parametrize(
    "objs",
    [
        [truck(3.0, 12.0)],  # stops and leaves, nothing left
        [Obj(7, 3, PILE), truck(3.0, 12.0)],  # the pile was there before the truck came
        [truck(3.0, 12.0), Obj(7, 3, lambda t: PILE(t) if 6.0 <= t < 6.2 else None)],  # a blip
        [truck(3.0, 12.0), Obj(7, 3, lambda t: (560, 420, 600, 445) if t >= 6 else None)],  # far
    ],
    ids=["no-pile", "pile-before", "one-frame-blip", "pile-elsewhere"],
)
def test_a_stop_without_a_new_pile_is_cleared(objs: list[Obj]) -> None:
    assert staged(dump_rule(), objs, 20) == DELIVERY


@pytest.mark.parametrize(
    "objs",
    [
        [
            Obj(1, 2, moving(0, 200, 80, 0, 120, 60)),
            Obj(7, 3, lambda t: PILE(t) if t > 2 else None),
        ],
        # a "truck" that never moved (a kiosk seen as one), and a pile appears beside it
        [Obj(1, 2, still(300, 200, 120, 60)), Obj(7, 3, lambda t: PILE(t) if t >= 6.0 else None)],
    ],
    ids=["passing-truck", "parked-never-moved"],
)
def test_no_dumping(objs: list[Obj]) -> None:
    assert play(dump_rule(), objs, 20) == []


def test_dumping_seen_from_a_moving_drone_needs_the_view_offset() -> None:
    objs = [truck(3.0, 12.0), Obj(7, 3, lambda t: PILE(t) if t >= 6.0 else None)]
    drift = lambda t: (-30.0 * t, 0.0)  # noqa: E731  the image slides 30 px/s
    assert [e[2] for e in staged(dump_rule(), objs, 20, offset=drift)] == [
        "suspected",
        "confirmed",
        "vehicle_left",
        "closed",
    ]
    blind = play(dump_rule(), objs, 20, offset=drift, view=lambda t: View())
    assert blind == []  # without compensation the truck never looks stopped


def test_a_pile_hidden_behind_the_truck_confirms_once_it_has_left() -> None:
    objs = [truck(3.0, 12.0)]
    region = np.array([[255, 242, 290, 262]], np.float32)

    def view(t: float) -> View:
        if t < 6.0:
            return View()
        return View(static_xyxy=region, static_age_s=np.array([t - 6.0], np.float32))

    cfg = DumpingRuleConfig(id="d", zone="z", stop_s=2, confirm_s=1, clear_after_s=3)
    # a static region may be the truck's shadow: it counts once the truck has left (12 s)
    assert staged(DumpingRule(cfg, ZONE, NAMES), objs, 20, view) == [
        SUSPECTED,
        (LEFT, "update", "confirmed", "critical"),
        (LEFT, "update", "vehicle_left", "critical"),
        (16.6, "end", "closed", "critical"),  # clear_after_s after the confirmation
    ]


def test_a_patrolling_drone_confirms_a_pile_on_its_next_pass() -> None:
    # the drone flew on while the truck unloaded and saw no pile; it comes back at 30 s
    objs = [truck(3.0, 12.0), Obj(7, 3, lambda t: PILE(t) if t >= 30.0 else None)]
    # the image slides 10 px/s one way, and from 20 s back
    patrol = lambda t: (-10.0 * (t if t < 20 else 40 - t), 0.0)  # noqa: E731
    assert staged(dump_rule(), objs, 40, offset=patrol) == [
        SUSPECTED,
        (LEFT, "update", "vehicle_left", "warning"),
        (31.0, "update", "confirmed", "critical"),
        (34.0, "end", "closed", "critical"),
    ]
    # a fixed camera would have seen the pile: it clears the stop, and a pile 18 s later is
    # no longer this truck's
    assert staged(dump_rule(), objs, 40) == DELIVERY
    # nor does a drone wait for ever: revisit_s
    assert staged(dump_rule(revisit_s=10.0), objs, 40, offset=patrol)[-1][1:3] == ("end", "cleared")


# --- abandoned objects -----------------------------------------------------------------------


def abandon_rule(**kw: object) -> AbandonedObjectRule:
    cfg = AbandonedObjectRuleConfig(
        id="a",
        zone="z",
        object_classes=["bag"],
        unattended_s=5,
        owner_radius=3,
        clear_after_s=2,
        **kw,
    )
    return AbandonedObjectRule(cfg, ZONE, NAMES)


BAG = Obj(9, 4, lambda t: (300, 300, 320, 315) if t >= 2.0 else None)


def test_abandoned_after_the_owner_walks_away() -> None:
    walk = moving(310, 250, 80, 0, 20, 60, 4.0)
    owner = Obj(1, 0, lambda t: (310, 250, 330, 310) if t < 4 else walk(t))
    events = play(abandon_rule(), [owner, BAG], 15)
    assert events[0][1:] == ("abandoned_object", "start")
    assert 9.0 <= events[0][0] <= 10.0  # owner out of reach at ~4.5 s, + 5 s


def test_not_abandoned_while_the_owner_stays_or_when_picked_up() -> None:
    owner = Obj(1, 0, still(310, 250, 20, 60))
    assert play(abandon_rule(), [owner, BAG], 15) == []
    picked = Obj(9, 4, lambda t: (300, 300, 320, 315) if 2.0 <= t < 6.0 else None)
    assert play(abandon_rule(), [picked], 15) == []


def test_a_passer_by_does_not_attend_a_left_bag_but_someone_standing_by_it_does() -> None:
    walk = moving(310, 250, 80, 0, 20, 60, 4.0)
    owner = Obj(1, 0, lambda t: (310, 250, 330, 310) if t < 4 else walk(t))
    alone = play(abandon_rule(), [owner, BAG], 15)[0][:2]
    assert alone == (9.4, "abandoned_object")
    # someone walks past the bag at 6-9 s (under attend_s within reach): not delayed; it was
    # when anyone near counted
    passer = Obj(2, 0, moving(190, 250, 80, 0, 20, 60, 6.0, 9.0))
    assert play(abandon_rule(), [owner, passer, BAG], 15)[0][:2] == alone
    assert play(abandon_rule(attend_s=0), [owner, passer, BAG], 15)[0][0] == 13.0
    # someone stands by it 6-10 s: they attend it, the clock starts again when they go
    stander = Obj(2, 0, still(300, 250, 20, 60, 6.0, 10.0))
    assert play(abandon_rule(), [owner, stander, BAG], 18)[0][:2] == (14.8, "abandoned_object")


class WithGroundSpeed:
    """A rule fed tracks whose ground speed (m/s) is known, as on a calibrated camera."""

    def __init__(self, rule: AbandonedObjectRule, speed_mps: dict[int, float]) -> None:
        self.rule, self.speed = rule, speed_mps

    def step(self, tracks: Tracks, frame: object, view: View | None = None) -> list[Event]:
        v = np.array([self.speed.get(int(t), np.nan) for t in tracks.track_id], np.float32)
        return self.rule.step(dataclasses.replace(tracks, speed_mps=v), frame, view)  # type: ignore[arg-type]

    def forget(self, track_ids: list[int]) -> None:
        self.rule.forget(track_ids)

    def close(self, frame: object) -> list[Event]:
        return self.rule.close(frame)  # type: ignore[arg-type]


def test_someone_walking_past_slowly_by_the_bag_does_not_attend_it() -> None:
    walk = moving(310, 250, 80, 0, 20, 60, 4.0)
    owner = Obj(1, 0, lambda t: (310, 250, 330, 310) if t < 4 else walk(t))
    alone = play(abandon_rule(), [owner, BAG], 15)[0][:2]
    # within reach 6-10 s (longer than attend_s): in the image they could be standing about
    passer = Obj(2, 0, moving(250, 250, 25, 0, 20, 60, 6.0, 10.0))
    assert play(abandon_rule(), [owner, passer, BAG], 18)[0][0] > alone[0] + 3
    # on the ground they walk on at 1.2 m/s: the bag's clock runs on
    fed = WithGroundSpeed(abandon_rule(), {2: 1.2})
    assert play(fed, [owner, passer, BAG], 18)[0][:2] == alone
    # at 0.3 m/s they are lingering by it: they attend it
    fed = WithGroundSpeed(abandon_rule(), {2: 0.3})
    assert play(fed, [owner, passer, BAG], 18)[0][0] > alone[0] + 3
    # the owner, by the bag as it showed, attends it until out of reach, walking off or not
    fed = WithGroundSpeed(abandon_rule(), {1: 1.2})
    assert play(fed, [owner, BAG], 15)[0][:2] == alone


def test_an_owner_the_detector_keeps_missing_still_attends_the_bag() -> None:
    # the owner stands by the bag; every 2 s the detector misses them for one frame
    flicker = Obj(1, 0, lambda t: None if (t % 2.0) < 0.2 else (310, 250, 330, 310))
    assert play(abandon_rule(), [flicker, BAG], 15) == []


def test_abandoned_by_the_background_model_for_an_unknown_class() -> None:
    rule = AbandonedObjectRule(
        AbandonedObjectRuleConfig(id="a", zone="z", unattended_s=5, clear_after_s=2), ZONE, NAMES
    )
    region = np.array([[300, 300, 318, 316]], np.float32)

    def view(t: float) -> View:
        return (
            View(static_xyxy=region, static_age_s=np.array([t - 2], np.float32))
            if 2 <= t < 12
            else View()
        )

    events = play(rule, [], 16, view)
    assert [(e[1], e[2]) for e in events] == [
        ("abandoned_object", "start"),
        ("abandoned_object", "end"),
    ]
    assert events[0][0] == pytest.approx(7.0)


def test_an_object_seen_two_ways_and_by_two_tracks_is_one_incident() -> None:
    # the detector sees the bag 2-6 s (track 9), misses it, then sees it again as track 10; the
    # background model sees a new still region there from 3 s, whenever no box covers it
    bag = [
        Obj(9, 4, lambda t: (300, 300, 320, 315) if 2.0 <= t < 6.0 else None),
        Obj(10, 4, lambda t: (301, 300, 321, 315) if 9.0 <= t < 18.0 else None),
    ]
    region = np.array([[300, 300, 318, 316]], np.float32)

    def view(t: float) -> View:
        if 3 <= t < 18:
            return View(static_xyxy=region, static_age_s=np.array([t - 3], np.float32))
        return View()

    cfg = AbandonedObjectRuleConfig(
        id="a", zone="z", object_classes=["bag"], unattended_s=5, clear_after_s=2
    )
    events = step_through(AbandonedObjectRule(cfg, ZONE, NAMES), bag, 24, view)
    assert [e.phase for e in events] == ["start", "end"]
    assert events[0].pts_s == pytest.approx(7.0)  # still since 2 s, + unattended_s
    assert events[-1].attributes["evidence"] == "background_model+detector"
    assert events[-1].pts_s == pytest.approx(19.8)  # last seen at 17.8 s, + clear_after_s


def arrive_stand(x: float, y: float, w: float, h: float, t_stop: float, t_go: float) -> Callable:
    """A vehicle driving in from the left (100 px/s), standing at (x, y) from t_stop to t_go,
    then gone."""

    def f(t: float) -> tuple[float, float, float, float] | None:
        if t >= t_go:
            return None
        dx = -100.0 * max(0.0, t_stop - t)
        return (x + dx, y, x + dx + w, y + h)

    return f


@pytest.mark.parametrize(
    ("name", "vehicle", "expected"),
    [
        # a truck drives in, stands 2-12 s and the region shows by its tail from 5 s: its load
        # (the dumping rule's pile), not an abandoned object, also after it has gone
        ("truck's load", Obj(5, 2, arrive_stand(260, 200, 120, 100, 2.0, 12.0)), []),
        # the region shows at 5 s while the truck is still pulling up (it stands from 5.5 s)
        ("load before the stop", Obj(5, 2, arrive_stand(260, 200, 120, 100, 5.5, 14.0)), []),
        # a car drove in, stood there 1-6 s and drove off; the region is where it was (a
        # ghost, or what its driver left: the dumping rule's business)
        ("car's place", Obj(5, 1, arrive_stand(280, 260, 60, 50, 1.0, 6.0)), []),
        # a car parked there all along (never seen driving) leaves no footprint: a bag left
        # beside it is abandoned
        (
            "parked car",
            Obj(5, 1, still(235, 260, 60, 50)),
            [("abandoned_object", "start"), ("abandoned_object", "end")],
        ),
        # a car driving past while the region shows: no footprint, the object is abandoned
        (
            "car driving past",
            Obj(5, 1, moving(0, 280, 100, 0, 60, 50)),
            [("abandoned_object", "start"), ("abandoned_object", "end")],
        ),
        # a truck that stood still, but far from the object
        (
            "truck far away",
            Obj(5, 2, still(10, 10, 120, 100, 2.0, 12.0)),
            [("abandoned_object", "start"), ("abandoned_object", "end")],
        ),
    ],
)
def test_an_object_where_a_vehicle_stood_is_the_vehicles(
    name: str, vehicle: Obj, expected: list[tuple[str, str]]
) -> None:
    rule = AbandonedObjectRule(
        AbandonedObjectRuleConfig(id="a", zone="z", unattended_s=5, clear_after_s=2), ZONE, NAMES
    )
    region = np.array([[300, 300, 318, 316]], np.float32)

    def view(t: float) -> View:
        if 5 <= t < 25:
            return View(static_xyxy=region, static_age_s=np.array([t - 5], np.float32))
        return View()

    assert [(e[1], e[2]) for e in play(rule, [vehicle], 30, view)] == expected, name


def test_loitering_can_require_moving_about() -> None:
    frozen = [Obj(1, 0, still(250, 250, 20, 60, 1.0, 16.0))]  # a box on a barrier, say
    assert play(loiter_rule(min_movement=0.5), frozen, 20) == []
    shuffling = [
        Obj(
            1,
            0,
            lambda t: (
                (250 + 20 * (int(t) % 3), 250, 270 + 20 * (int(t) % 3), 310)
                if 1.0 <= t < 16.0
                else None
            ),
        )
    ]
    assert phases(play(loiter_rule(min_movement=0.5), shuffling, 20)) == ["start", "end"]


def shuffle(x: float, t0: float, t1: float) -> Callable:
    """Someone moving about by a third of their height every second from t0 to t1."""
    return lambda t: (
        (x + 20 * (int(t) % 3), 250, x + 20 + 20 * (int(t) % 3), 310) if t0 <= t < t1 else None
    )


def test_loitering_is_not_pieced_together_from_stray_detections() -> None:
    # a box seen for a second now and then, each time a new track at about the same place
    strays = [Obj(k, 0, still(250 + 3 * k, 250, 20, 60, 4.0 * k, 4.0 * k + 1.0)) for k in range(5)]
    assert play(loiter_rule(), strays, 20) == []  # seen 4 s of a 17 s "stay"
    assert phases(play(loiter_rule(min_seen=0.0), strays, 20))[:1] == ["start"]


def test_a_box_fixed_on_a_structure_is_not_continued_by_whoever_comes_by() -> None:
    # a false detection on a barrier for 12 s, then someone moving about beside it: their own
    # clock (20 s from 12.5 s), not the barrier's (from 0 s)
    barrier = Obj(1, 0, still(250, 250, 20, 60, 0.0, 12.0))
    person = Obj(2, 0, shuffle(255, 12.5, 40.0))
    events = play(loiter_rule(min_movement=0.5, dwell_s=20), [barrier, person], 40)
    assert events and events[0][1:] == ("loitering", "start") and events[0][0] >= 32.4


def test_a_reported_loiterer_who_then_stands_still_is_one_incident() -> None:
    tout = Obj(
        1, 0, lambda t: shuffle(250, 1.0, 12.0)(t) or ((250, 250, 270, 310) if t < 30 else None)
    )
    events = play(loiter_rule(min_movement=0.5), [tout], 40)
    assert [e[2] for e in events] == ["start", "end"] and events[-1][0] >= 30.0
    # ... and so is one whose track switches while they stand still
    switched = [
        Obj(
            1, 0, lambda t: shuffle(250, 1.0, 12.0)(t) or ((250, 250, 270, 310) if t < 26 else None)
        ),
        Obj(2, 0, still(252, 250, 20, 60, 26.4, 35.0)),
    ]
    events = play(loiter_rule(min_movement=0.5), switched, 45)
    assert [e[2] for e in events] == ["start", "end"] and events[-1][0] >= 35.0


def test_a_tall_box_does_not_stretch_the_reach_of_an_identity_switch() -> None:
    # a box over two people (120 px tall) is lost; 1.5 s later a new one-person box (60 px)
    # shows 110 px away: within reach of the tall box, not of the person's
    tall = Obj(1, 0, still(250, 250, 40, 120, 0.0, 8.0))
    other = Obj(2, 0, still(250 + 110, 310, 20, 60, 9.5, 16.0))
    assert play(loiter_rule(), [tall, other], 16) == []


ALL_RULES_YAML = """
sources: [{id: cam1, type: file, path: x.mp4}]
detector: {model: m.onnx}
zones: [{id: z, source: cam1, polygon: [[0, 0], [640, 0], [640, 480], [0, 480]]}]
rules:
  - {id: a, type: intrusion, zone: z}
  - {id: b, type: line_crossing, source: cam1, line: [[300, 0], [300, 480]], direction: in}
  - {id: c, type: loitering, zone: z, dwell_s: 60}
  - {id: d, type: crowd, zone: z, min_count: 12, area_m2: 400, min_density: 0.5}
  - {id: e, type: dumping, zone: z}
  - {id: f, type: abandoned_object, zone: z, unattended_s: 30}
"""


def test_every_rule_type_builds_from_a_config() -> None:
    from engine.config import parse_config
    from engine.rules import build_rules

    cfg = parse_config(ALL_RULES_YAML)
    rules = build_rules(cfg, NAMES)["cam1"]
    assert [type(r).__name__ for r in rules] == [
        "ZonePresenceRule",
        "LineCrossingRule",
        "LoiteringRule",
        "CrowdRule",
        "DumpingRule",
        "AbandonedObjectRule",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("line: [[300, 0], [300, 0]]", "two distinct points"),
        ("source: cam9", "expected one of the source ids"),
        ("direction: sideways", "direction"),
    ],
)
def test_bad_line_configs_are_refused(change: str, message: str) -> None:
    from engine.config import parse_config
    from engine.errors import ConfigError

    key = change.split(":")[0]
    line = "  - {id: b, type: line_crossing, source: cam1, line: [[300, 0], [300, 480]]}"
    fields = {"line": "line: [[300, 0], [300, 480]]", "source": "source: cam1"}
    bad = line.replace(fields[key], change) if key in fields else line.replace("}", f", {change}}}")
    text = ALL_RULES_YAML.split("rules:")[0] + "rules:\n" + bad + "\n"
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_density_needs_an_area_and_unknown_classes_are_refused() -> None:
    from engine.config import parse_config
    from engine.errors import ConfigError
    from engine.rules import build_rules

    head = ALL_RULES_YAML.split("rules:")[0] + "rules:\n"
    with pytest.raises(ConfigError, match="expected area_m2 too"):
        parse_config(head + "  - {id: d, type: crowd, zone: z, min_density: 0.5}\n")
    cfg = parse_config(head + "  - {id: e, type: dumping, zone: z, debris_classes: [rubble]}\n")
    with pytest.raises(ConfigError, match=r"classes \['rubble'\] are not known"):
        build_rules(cfg, NAMES)


def test_passing_beyond_the_end_of_a_line_is_no_crossing() -> None:
    short = {**LINE, "line": [(300, 0), (300, 100)]}  # a gate 100 px long at the top
    rule = LineCrossingRule(LineCrossingRuleConfig(**short), NAMES)
    assert play(rule, [Obj(1, 0, moving(200, 200, 50, 0, 20, 60))], 8) == []  # feet at y=260
