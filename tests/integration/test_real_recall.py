"""Recall of a COCO reference's boxes on real footage (bench/real_recall.py), with real models
on a real clip: a model measured against itself finds everything; a different model less."""

from collections.abc import Callable
from pathlib import Path

from bench.real_recall import real_recall


def test_a_model_finds_all_its_own_confident_boxes_and_another_model_fewer(
    assets: Callable[..., Path],
) -> None:
    clip = assets("footage/intel_one-by-one-person-detection.mp4")
    ref = assets("models/yolo11n_coco_320.onnx")
    itself = real_recall(ref, ref, [clip], frames_per_clip=6)
    assert itself["targets"].get("person", 0) > 0
    assert itself["recall"] == 1.0
    other = real_recall(assets("models/yolov8n_coco_640.onnx"), ref, [clip], frames_per_clip=6)
    assert other["targets"] == itself["targets"]
    assert 0.0 <= other["recall"] <= 1.0
