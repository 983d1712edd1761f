"""ByteTrack invariants under arbitrary detection streams: unique ids, every reported track backed
by a detection in that frame, state bounded over a very long run."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.track import ByteTracker, iou_matrix
from engine.types import Detections

NAMES = ("person", "car")


@st.composite
def frames(draw: st.DrawFn) -> list[Detections]:
    out = []
    for _ in range(draw(st.integers(1, 40))):
        n = draw(st.integers(0, 12))
        xy = np.array(
            draw(st.lists(st.tuples(st.floats(0, 600), st.floats(0, 400)), min_size=n, max_size=n)),
            np.float32,
        ).reshape(n, 2)
        wh = np.array(
            draw(st.lists(st.tuples(st.floats(2, 80), st.floats(2, 80)), min_size=n, max_size=n)),
            np.float32,
        ).reshape(n, 2)
        score = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)), np.float32)
        cls = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), np.int32)
        out.append(Detections(np.concatenate([xy, xy + wh], 1), score, cls, NAMES))
    return out


@settings(max_examples=150, deadline=None)
@given(frames(), st.floats(0.01, 0.2))
def test_ids_unique_and_every_track_backed_by_a_detection(seq: list[Detections], dt: float) -> None:
    tracker = ByteTracker(class_names=NAMES)
    ended: set[int] = set()
    for k, dets in enumerate(seq):
        out = tracker.update(dets, k * dt)
        ids = out.track_id.tolist()
        assert len(ids) == len(set(ids))  # unique within a frame
        assert not set(ids) & ended  # an ended id never comes back
        ended |= set(tracker.ended)
        if len(out):
            # every reported track was matched to a detection of its class in this frame
            iou = iou_matrix(out.xyxy, dets.xyxy)
            same = out.class_id[:, None] == dets.class_id[None, :]
            assert ((iou > 0) & same).any(axis=1).all()
            assert (out.score >= 0.1).all()


def test_state_stays_bounded_over_100k_frames() -> None:
    rng = np.random.default_rng(1)
    tracker = ByteTracker(class_names=NAMES)
    most = 0
    pos = rng.uniform(0, 1000, (8, 2))
    for k in range(100_000):
        if k % 500 == 0:  # the crowd changes: old objects leave, new ones come
            pos = rng.uniform(0, 1000, (8, 2))
        pos += rng.normal(0, 2, pos.shape)
        shown = rng.random(8) > 0.2
        c = pos[shown]
        dets = Detections(
            np.concatenate([c, c + 40], 1).astype(np.float32),
            rng.uniform(0.2, 1.0, len(c)).astype(np.float32),
            np.zeros(len(c), np.int32),
            NAMES,
        )
        tracker.update(dets, k / 30)
        most = max(most, len(tracker))
    assert most <= 40  # live tracks only: the dead are dropped with their state
    assert tracker._state.mean.shape[0] == len(tracker) <= 40
