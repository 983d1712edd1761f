"""ByteTrack's behaviours that rules rely on: stationary objects keep their id through long gaps,
moving ones do not; velocity in px/s; ended ids reported."""

from __future__ import annotations

import numpy as np

from engine.config import TrackingConfig
from engine.track import ByteTracker
from engine.types import Detections

NAMES = ("truck", "debris")


def _dets(boxes: list[list[float]], cls: int = 1, score: float = 0.9) -> Detections:
    b = np.array(boxes, np.float32).reshape(-1, 4)
    return Detections(b, np.full(len(b), score, np.float32), np.full(len(b), cls, np.int32), NAMES)


def test_a_pile_keeps_its_id_through_a_long_gap_and_is_stationary() -> None:
    tr = ByteTracker(class_names=NAMES)
    pile = [[400, 300, 460, 340]]
    t = 0.0
    for _ in range(90):  # 3 s still at 30 fps
        out = tr.update(_dets(pile), t)
        t += 1 / 30
    assert out.stationary.tolist() == [True]
    first_id = int(out.track_id[0])
    for _ in range(300):  # 10 s unseen (a truck parked in front of it, say)
        tr.update(_dets([]), t)
        t += 1 / 30
    out = tr.update(_dets(pile), t)
    assert out.track_id.tolist() == [first_id]


def test_a_moving_object_gone_for_two_seconds_comes_back_as_a_new_track() -> None:
    tr = ByteTracker(class_names=NAMES)
    t, x = 0.0, 100.0
    ids = set()
    for _ in range(30):
        out = tr.update(_dets([[x, 200, x + 80, 260]], cls=0), t)
        ids |= set(out.track_id.tolist())
        x += 10
        t += 1 / 30
    ended = []
    for _ in range(60):
        tr.update(_dets([]), t)
        ended += tr.ended
        t += 1 / 30
    assert ended == list(ids)  # its end was reported, once
    for _ in range(2):
        out = tr.update(_dets([[x, 200, x + 80, 260]], cls=0), t)
        t += 1 / 30
    assert len(out) == 1 and int(out.track_id[0]) not in ids


def test_velocity_is_in_pixels_per_second() -> None:
    tr = ByteTracker(class_names=NAMES)
    for k in range(60):  # 6 px per frame at 30 fps: 180 px/s to the right
        out = tr.update(_dets([[100 + 6 * k, 200, 160 + 6 * k, 240]], cls=0), k / 30)
    vx, vy = out.velocity[0]
    assert abs(vx - 180) < 10 and abs(vy) < 5 and not out.stationary[0]


def _confirmed_after(tracker: ByteTracker, score: float) -> int:
    """Tracks confirmed after two frames of one still box scored `score`."""
    box = [[100, 100, 160, 180]]
    tracker.update(_dets(box, score=score), 0.0)
    return len(tracker.update(_dets(box, score=score), 1 / 30))


def test_the_tracking_section_sets_the_tracker_and_none_means_its_defaults() -> None:
    assert ByteTracker(None, NAMES).config == TrackingConfig()
    defaults = TrackingConfig().new_track_score  # 0.6: a 0.7 box starts a track, a 0.5 one not
    assert _confirmed_after(ByteTracker(class_names=NAMES), defaults + 0.1) == 1
    assert _confirmed_after(ByteTracker(class_names=NAMES), defaults - 0.1) == 0
    strict = TrackingConfig(new_track_score=0.95)
    assert _confirmed_after(ByteTracker(strict, NAMES), defaults + 0.1) == 0
