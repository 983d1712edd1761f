"""Zone presence as tables of frame sequences and the events they must (and must not) produce."""

import pytest

from engine.config import ZoneConfig, ZonePresenceRuleConfig
from engine.errors import ConfigError
from engine.rules import ZonePresenceRule
from engine.types import Tracks
from tests.conftest import make_frame, make_tracks

NAMES = ("person", "car", "truck")
ZONE = ZoneConfig(id="z", source="cam1", polygon=[(100, 100), (300, 100), (300, 300), (100, 300)])
IN = [150, 150, 200, 250]  # feet at (175, 250): inside
OUT = [400, 150, 450, 250]  # outside
HEAD_IN_FEET_OUT = [150, 230, 200, 350]  # centre (175, 290) inside, feet (175, 350) outside


def play(rule: ZonePresenceRule, seq: list[Tracks], fps: float = 10.0) -> list[tuple[int, str]]:
    """(frame index, phase) of every event over the sequence, then the stream's end."""
    out = []
    frame = make_frame(0.0)
    for i, tracks in enumerate(seq):
        frame = make_frame(i / fps, seq=i)
        out += [(i, e.phase) for e in rule.step(tracks, frame)]
    out += [(len(seq), e.phase) for e in rule.close(frame)]
    return out


def rule(**kw: object) -> ZonePresenceRule:
    cfg = ZonePresenceRuleConfig(id="r", zone="z", **kw)  # type: ignore[arg-type]
    return ZonePresenceRule(cfg, ZONE, NAMES)


P_IN = make_tracks([IN])
P_OUT = make_tracks([OUT])
CAR_IN = make_tracks([IN], classes=[1])
EMPTY = make_tracks([])


@pytest.mark.parametrize(
    ("kwargs", "seq", "expected"),
    [
        # arrives, stays, leaves: one start, one end after clear_after_s (1 s = 10 frames)
        ({"clear_after_s": 1.0}, [EMPTY, P_IN, P_IN, *[EMPTY] * 12], [(1, "start"), (12, "end")]),
        # a flicker shorter than clear_after_s is the same incident
        (
            {"clear_after_s": 1.0},
            [P_IN, EMPTY, EMPTY, P_IN, *[EMPTY] * 11],
            [(0, "start"), (13, "end")],
        ),
        # outside the zone: nothing
        ({}, [P_OUT] * 5, []),
        # wrong class: nothing; any class when classes is empty
        ({"classes": ["person"]}, [CAR_IN] * 5, []),
        ({}, [CAR_IN] * 2, [(0, "start"), (2, "end")]),
        # min_frames: a one-frame blip does not start an incident
        ({"min_frames": 3}, [P_IN, EMPTY, P_IN, P_IN, EMPTY], []),
        ({"min_frames": 3}, [P_IN, P_IN, P_IN], [(2, "start"), (3, "end")]),
        # updates every 0.5 s while present
        (
            {"update_every_s": 0.5},
            [P_IN] * 12,
            [(0, "start"), (5, "update"), (10, "update"), (12, "end")],
        ),
        # low scores are ignored
        ({"min_score": 0.95}, [P_IN] * 3, []),
    ],
)
def test_event_table(
    kwargs: dict[str, object], seq: list[Tracks], expected: list[tuple[int, str]]
) -> None:
    assert play(rule(**kwargs), seq) == expected


def test_anchor_feet_versus_centre() -> None:
    t = make_tracks([HEAD_IN_FEET_OUT])
    assert play(rule(anchor="bottom_center"), [t] * 3) == []
    assert play(rule(anchor="center"), [t] * 3)[0] == (0, "start")


def test_event_contents_and_one_id_per_incident() -> None:
    r = rule(classes=["person"], clear_after_s=0.0)
    two = make_tracks([IN, OUT], scores=[0.8, 0.7])
    (start,) = r.step(two, make_frame(1.0))
    assert start.kind == "zone_presence" and start.zone_id == "z" and start.rule_id == "r"
    assert start.labels == ("person",) and start.xyxy.tolist() == [IN]
    assert start.attributes["count"] == 1 and start.frame_size == (640, 480)
    (end,) = r.step(EMPTY, make_frame(1.5))
    assert end.event_id == start.event_id and end.attributes["duration_s"] == 0.0
    (again,) = r.step(two, make_frame(2.0))
    assert again.event_id != start.event_id


def test_unknown_class_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"rule r: classes \['bicycle'\] are not known"):
        rule(classes=["bicycle"])
