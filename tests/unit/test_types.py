"""The stage contracts reject malformed data at construction, saying what was expected."""

import numpy as np
import pytest

from engine.types import Detections, Event, Frame, Tracks
from tests.conftest import make_detections


def test_detections_reject_wrong_dtype() -> None:
    with pytest.raises(ValueError, match=r"Detections.xyxy: expected dtype float32, got float64"):
        Detections(np.zeros((1, 4)), np.zeros(1, np.float32), np.zeros(1, np.int32))


def test_detections_reject_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"expected shape \[n,4\], got \[2, 5\]"):
        Detections(np.zeros((2, 5), np.float32), np.zeros(2, np.float32), np.zeros(2, np.int32))


def test_detections_reject_length_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in length: xyxy 2, score 1"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(1, np.float32), np.zeros(2, np.int32))


def test_frame_rejects_non_bgr_image() -> None:
    with pytest.raises(ValueError, match=r"expected shape \[h,w,3\]"):
        Frame("cam", 0, 0.0, 0, np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="expected uint8"):
        Frame("cam", 0, 0.0, 0, np.zeros((4, 4, 3), np.float32))


def test_labels_and_select() -> None:
    d = make_detections([[0, 0, 1, 1], [1, 1, 2, 2]], classes=[0, 2])
    assert d.labels() == ["person", "truck"]
    assert d.select(np.array([False, True])).labels() == ["truck"]
    assert Tracks.untracked(d).track_id.tolist() == [-1, -1]


def test_event_checks_per_object_lengths() -> None:
    with pytest.raises(ValueError, match="labels 0"):
        Event(
            "e",
            "k",
            "start",
            "cam",
            "r",
            0.0,
            0,
            np.zeros((1, 4), np.float32),
            np.zeros(1, np.float32),
            (),
            np.zeros(1, np.int64),
        )
    with pytest.raises(ValueError, match="phase"):
        Event(
            "e",
            "k",
            "begin",
            "cam",
            "r",
            0.0,
            0,
            np.zeros((0, 4), np.float32),  # type: ignore[arg-type]
            np.zeros(0, np.float32),
            (),
            np.zeros(0, np.int64),
        )
