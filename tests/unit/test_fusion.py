"""Fusion: global tracks across sensors, and incidents merged into one alert."""

import dataclasses

import numpy as np

from engine.config import FusionConfig, TrackingConfig
from engine.fusion import IncidentMerger, WorldTracker
from engine.rules.base import make_event
from engine.types import Frame, GroundPosition, Tracks

NAMES = ("person", "car", "truck")
FUSION = FusionConfig()  # the defaults a deployment gets
GROUPS = tuple(tuple(g) for g in TrackingConfig().class_groups)


def tracks(
    ids: list[int], ground: list[tuple[float, float]], cls: list[int] | None = None
) -> Tracks:
    n = len(ids)
    boxes = np.tile(np.array([0, 0, 1, 1], np.float32), (n, 1))
    return Tracks(
        boxes,
        np.full(n, 0.9, np.float32),
        np.array(cls or [0] * n, np.int32),
        np.array(ids, np.int64),
        NAMES,
        ground_m=np.array(ground, np.float32).reshape(n, 2),
    )


def test_same_objects_seen_by_two_sensors_share_global_ids() -> None:
    w = WorldTracker(2.0, FUSION.lost_s, GROUPS)
    rng = np.random.default_rng(0)
    truth = {1: (0.0, 0.0), 2: (10.0, 0.0), 3: (20.0, 5.0)}
    seen_a, seen_b = {}, {}
    for k in range(20):
        t = k * 0.1
        pos = {i: (x + 1.0 * t, y) for i, (x, y) in truth.items()}  # all walk east at 1 m/s
        a = w.update("cam", tracks([11, 12, 13], [pos[i] for i in (1, 2, 3)]), t)
        noisy = [
            (x + rng.normal(0, 0.3), y + rng.normal(0, 0.3))
            for x, y in (pos[1], pos[2], (50.0, 50.0))
        ]
        b = w.update("drone", tracks([7, 8, 9], noisy), t + 0.03)
        for obj, g in zip((1, 2, 3), a, strict=True):
            seen_a.setdefault(obj, set()).add(int(g))
        for obj, g in zip((1, 2, "extra"), b, strict=True):
            seen_b.setdefault(obj, set()).add(int(g))
    assert all(len(v) == 1 for v in [*seen_a.values(), *seen_b.values()])
    assert seen_a[1] == seen_b[1] and seen_a[2] == seen_b[2]
    assert seen_b["extra"].isdisjoint(seen_a[1] | seen_a[2] | seen_a[3])
    assert len(w) == 4
    g1 = next(g for g in w.tracks if g.global_id in seen_a[1])
    assert set(g1.sensors) == {"cam", "drone"}


def test_a_local_id_switch_is_bridged_and_classes_in_a_group_match() -> None:
    w = WorldTracker(2.0, FUSION.lost_s, GROUPS)
    first = w.update("cam", tracks([1], [(0.0, 0.0)], [2]), 0.0)  # a truck
    w.update("drone", tracks([5], [(0.3, 0.1)], [1]), 0.05)  # seen as a car from above
    w.forget("cam", [1])  # the camera's tracker lost it ...
    again = w.update("cam", tracks([2], [(0.4, 0.0)], [2]), 0.1)  # ... and gave a new id
    assert again[0] == first[0]
    person = w.update("cam", tracks([3], [(0.2, 0.2)], [0]), 0.1)
    assert person[0] != first[0]  # a person is never that truck


def test_global_tracks_end_when_unseen() -> None:
    w = WorldTracker(FUSION.gate_m, 1.0, GROUPS)
    w.update("cam", tracks([1], [(0.0, 0.0)]), 0.0)
    w.update("cam", tracks([], []), 2.0)
    assert len(w) == 0 and w.ended


def event(
    source: str, eid: str, phase: str, east: float | None, t_ns: int = 0, stage: str | None = None
):
    frame = Frame(source, 0, 1.0, t_ns, np.zeros((4, 4, 3), np.uint8))
    e = make_event(
        rule_id="r",
        kind="dumping",
        phase=phase,  # type: ignore[arg-type]
        event_id=eid,
        frame=frame,
        severity="critical",
        stage=stage,  # type: ignore[arg-type]
    )
    if east is not None:
        e = dataclasses.replace(e, position=GroundPosition(0.0, 0.0, 1.0, east, 0.0))
    return e


def test_incident_seen_by_two_sensors_is_one_alert() -> None:
    m = IncidentMerger(10, FUSION.merge_s)
    out = [
        m(event("cam", "a1", "start", 0.0)),
        m(event("drone", "b1", "start", 3.0)),
        m(event("drone", "b1", "end", 3.0)),
        m(event("cam", "a1", "end", 0.0)),
    ]
    assert [(e.event_id, e.phase) for e in out] == [
        ("a1", "start"),
        ("a1", "update"),
        ("a1", "update"),
        ("a1", "end"),
    ]
    assert out[1].sensors == ("cam", "drone")
    assert out[1].sensor_event_id == "b1"
    assert m.merged == 1 and len(m) == 0


def test_a_merged_staged_incident_stands_where_its_furthest_sensor_took_it() -> None:
    m = IncidentMerger(10, FUSION.merge_s)
    out = [
        m(event("drone", "b1", "start", 3.0, stage="suspected")),
        m(event("cam", "a1", "start", 0.0, stage="suspected")),
        m(event("cam", "a1", "update", 0.0, stage="confirmed")),
        m(event("drone", "b1", "end", 3.0, stage="cleared")),  # the drone flew on, saw no pile
        m(event("cam", "a1", "end", 0.0, stage="closed")),
    ]
    assert [(e.event_id, e.phase, e.stage) for e in out] == [
        ("b1", "start", "suspected"),
        ("b1", "update", "suspected"),
        ("b1", "update", "confirmed"),
        ("b1", "update", "confirmed"),  # not cleared: the camera confirmed it
        ("b1", "end", "closed"),
    ]
    m = IncidentMerger(10, FUSION.merge_s)
    m(event("drone", "b1", "start", 3.0, stage="suspected"))
    m(event("cam", "a1", "start", 0.0, stage="suspected"))
    first_end = m(event("drone", "b1", "end", 3.0, stage="cleared"))
    last_end = m(event("cam", "a1", "end", 0.0, stage="cleared"))
    assert (first_end.phase, first_end.stage) == ("update", "suspected")
    assert (last_end.phase, last_end.stage) == ("end", "cleared")  # nobody found a pile


def test_far_apart_or_unplaced_incidents_stay_apart() -> None:
    m = IncidentMerger(10, FUSION.merge_s)
    a = m(event("cam", "a1", "start", 0.0))
    b = m(event("drone", "b1", "start", 50.0))
    c = m(event("drone", "c1", "start", None))
    assert (a.event_id, b.event_id, c.event_id) == ("a1", "b1", "c1")
    assert b.phase == c.phase == "start"


def test_a_start_long_after_the_incident_went_quiet_is_a_new_incident() -> None:
    m = IncidentMerger(10, 30)
    m(event("cam", "a1", "start", 0.0, t_ns=0))
    late = m(event("drone", "b1", "start", 1.0, t_ns=int(60e9)))
    assert (late.event_id, late.phase) == ("b1", "start")
