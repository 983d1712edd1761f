"""The benchmark's peers on the real person clip: onnxruntime alone on pre-letterboxed batches,
and Ultralytics' own predict, whose boxes must be the engine's detector's boxes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.peers import TRAIN_PYTHON, agreement, detections_of, ort_limit, run_ultralytics
from engine.config import DetectorConfig
from engine.detect import build_detector
from tests.conftest import make_video
from tests.support.assets import assets_dir, missing_reason

pytestmark = [pytest.mark.assets, pytest.mark.slow]

MODEL = "models/yolo11n_coco_320_dynbatch.onnx"
CLIP = "footage/intel_one-by-one-person-detection.mp4"
# nobody is in the first 60 frames; from 430 a person walks past a table with a cup, a chair,
# a laptop and a TV (up to 5 classes, several scores near the 0.25 threshold)
FIRST, FRAMES = 430, 20


def _skip_without_assets() -> None:
    reason = missing_reason(MODEL, CLIP)
    if reason:
        pytest.skip(reason)


def _frames(path: Path, n: int, first: int = 0) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, first)
    frames = []
    for _ in range(n):
        ok, frame = cap.read()
        assert ok, f"{path}: fewer than {first + n} frames"
        frames.append(frame)
    cap.release()
    return frames


def test_ort_limit_times_each_batch_size() -> None:
    _skip_without_assets()
    frames = _frames(assets_dir() / CLIP, 8)
    r = ort_limit(assets_dir() / MODEL, 320, frames, batches=(1, 2), seconds=0.5)
    print(f"\nonnxruntime alone: {r}")
    assert r["input_hw"] == [320, 320]  # H and W fixed in this graph: the engine's input too
    assert set(r["batches"]) == {1, 2} and r["skipped"] == []
    for b, row in r["batches"].items():
        assert row["images"] == row["calls"] * b and row["images_per_s"] > 0
    assert r["limit_fps"] == max(row["images_per_s"] for row in r["batches"].values())
    assert r["best_batch"] in (1, 2)


def test_ultralytics_predict_finds_the_engines_boxes(tmp_path: Path) -> None:
    _skip_without_assets()
    if not TRAIN_PYTHON.exists():
        pytest.skip(f"{TRAIN_PYTHON} missing: `make ultralytics-env` creates it")
    # both read the same short clip (Ultralytics' reader cannot start mid-file)
    clip = make_video(tmp_path / "people.mp4", _frames(assets_dir() / CLIP, FRAMES, FIRST))
    model = assets_dir() / MODEL

    result = run_ultralytics(model, 320, [clip], "predict", conf=0.25, max_frames=FRAMES)
    video = result["videos"][0]
    print(
        f"\nultralytics {result['ultralytics']}: {video['frames']} frames, "
        f"{video['fps']:.1f} frames/s after warm-up ({video['fps_all']:.1f} all), "
        f"split {video['speed_ms']}, rect={result['rect']}"
    )
    assert video["frames"] == FRAMES and len(video["detections"]) == FRAMES
    assert result["rect"] is False  # fixed 320x320 graph: square letterbox, as the engine's
    assert set(video["speed_ms"]) == {"preprocess", "inference", "postprocess"}

    # Ultralytics' NMS IoU default (0.7) so that settings agree and implementations are compared
    det = build_detector(DetectorConfig(model=model, conf=0.25, iou=0.7))
    engine = [
        np.column_stack([d.xyxy, d.score, d.class_id]).astype(np.float32)
        for d in det.detect_images(_frames(clip, FRAMES))
    ]
    peer = detections_of(video)
    r = agreement(engine, peer, iou=0.9)
    print(f"engine vs ultralytics at IoU 0.9: {r}")
    assert r["n_a"] >= FRAMES  # the person at least, in most frames
    assert r["frac_a"] >= 0.9 and r["frac_b"] >= 0.9
