"""Motion gating, tiling and cross-stream batching: each does what it says, on real arrays and a
real (tiny, random-weight) ONNX model."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from engine.config import DetectorConfig, MotionConfig, TilingConfig
from engine.detect import OnnxDetector
from engine.detect.tiling import merge_tiles, tile_windows
from engine.preprocess.motion import MotionGate
from engine.runtime.batcher import InferenceBatcher
from engine.types import Detections
from tests.conftest import make_yolox_model


def _scene(k: int, moving: bool) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = (rng.integers(60, 70, (240, 320, 3))).astype(np.uint8)  # a still, slightly noisy scene
    img = np.clip(
        img.astype(np.int16) + np.random.default_rng(k).integers(-3, 4, img.shape), 0, 255
    ).astype(np.uint8)
    if moving:
        x = 20 + 6 * k
        img[100:140, x : x + 30] = 220
    return img


def test_still_scene_skips_inference_moving_one_runs_and_force_keeps_watch() -> None:
    gate = MotionGate(MotionConfig(hold_s=0.0, force_every_s=2.0))
    runs = [gate.should_detect(_scene(k, moving=False), k / 10) for k in range(50)]
    assert runs[0] and sum(runs) == 3  # the first frame, then forced at 2.0 s and 4.0 s
    moving = [gate.should_detect(_scene(k, moving=True), 5 + k / 10) for k in range(20)]
    assert sum(moving) >= 19  # the square moves on every frame


def test_motion_outside_the_zones_is_ignored_when_asked() -> None:
    zone = [(200.0, 0.0), (320.0, 0.0), (320.0, 240.0), (200.0, 240.0)]  # the square stays left
    gate = MotionGate(MotionConfig(hold_s=0.0, force_every_s=100.0, zones_only=True), [zone])
    runs = [gate.should_detect(_scene(k, moving=True), k / 10) for k in range(20)]
    assert sum(runs) == 1


def test_tiles_cover_the_frame_with_overlap_and_merge_removes_border_duplicates() -> None:
    cfg = TilingConfig(cols=3, rows=2, overlap=0.25)
    wins = tile_windows(1080, 1920, cfg)
    assert len(wins) == 6
    covered = np.zeros((1080, 1920), bool)
    for x0, y0, x1, y1 in wins:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert wins[0][2] > wins[1][0]  # neighbours overlap
    names = ("person",)
    # the same person seen by two overlapping tiles, plus one elsewhere
    a = Detections(
        np.array([[100, 50, 120, 90]], np.float32),
        np.array([0.9], np.float32),
        np.array([0], np.int32),
        names,
    )
    b = Detections(
        np.array(
            [[100 - wins[1][0] + 1, 50, 120 - wins[1][0] + 1, 91], [300, 300, 320, 340]], np.float32
        ),
        np.array([0.8, 0.7], np.float32),
        np.array([0, 0], np.int32),
        names,
    )
    merged = merge_tiles([a, b], wins[:2], max_det=300)
    assert len(merged) == 2 and merged.score.tolist() == [np.float32(0.9), np.float32(0.7)]


def test_batcher_groups_frames_of_several_sources_and_returns_each_its_own(tmp_path: Path) -> None:
    model = make_yolox_model(tmp_path / "m.onnx", size=64, dynamic_batch=True)
    det = OnnxDetector(DetectorConfig(model=model, class_names=["a", "b"], conf=0.01))
    assert det.info.batch_dynamic
    images = [np.random.default_rng(k).integers(0, 255, (48, 64, 3), np.uint8) for k in range(8)]
    direct = det.detect_images(images)
    batcher = InferenceBatcher(det, max_batch=8, max_wait_ms=200)
    batcher.start()
    got: dict[int, Detections] = {}
    go = threading.Barrier(8)

    def source(k: int) -> None:
        go.wait()
        got[k] = batcher.detect([images[k]])[0]

    threads = [threading.Thread(target=source, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    batcher.close()
    assert batcher.images == 8 and batcher.calls < 8  # batched
    for k in range(8):
        np.testing.assert_allclose(got[k].xyxy, direct[k].xyxy, atol=1e-3)
        np.testing.assert_allclose(got[k].score, direct[k].score, atol=1e-5)
