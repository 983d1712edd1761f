"""Does a model find on real footage what a COCO reference finds? Recall of the reference's boxes.

The reference (a COCO yolo11n at 640) runs on frames sampled evenly from each clip; its boxes
of the shared classes with score >= REF_SCORE are the targets. The model under test runs at its
operating threshold (the engine's default detector score); a target counts as found when a box
of the same group (person; vehicle = car or truck, which COCO and our classes split
differently) overlaps it at IoU >= IOU. No human truth is involved: the figure says how much of
what an off-the-shelf COCO model sees on real footage the model still sees.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from engine.config import DetectorConfig
from engine.detect import OnnxDetector
from engine.track.bytetrack import iou_matrix

__all__ = ["GROUPS", "real_recall", "sample_frames"]

GROUPS = {"person": "person", "car": "vehicle", "truck": "vehicle", "bus": "vehicle"}
REF_SCORE = 0.5
IOU = 0.5
OUR_SCORE = DetectorConfig.model_fields["conf"].default


def sample_frames(clip: Path, n: int) -> list[npt.NDArray[np.uint8]]:
    """Up to `n` BGR frames spread evenly over the clip."""
    # two passes: count, then decode only the frames taken (a long clip never sits in memory)
    cap = cv2.VideoCapture(str(clip))
    total = 0
    while cap.grab():
        total += 1
    cap.release()
    if not total:
        raise ValueError(f"{clip.name}: no frames could be decoded")
    step = max(1, total // n)
    cap = cv2.VideoCapture(str(clip))
    frames: list[npt.NDArray[np.uint8]] = []
    for i in range(total):
        if len(frames) == n or not cap.grab():
            break
        if i % step == 0:
            ok, frame = cap.retrieve()
            if ok:
                frames.append(np.asarray(frame, np.uint8))
    cap.release()
    return frames


def _grouped(det: OnnxDetector, image: npt.NDArray[np.uint8], score: float) -> dict[str, Any]:
    d = det.detect_images([image])[0]
    out: dict[str, list[list[float]]] = {}
    for box, s, c in zip(d.xyxy.tolist(), d.score.tolist(), d.class_id.tolist(), strict=True):
        group = GROUPS.get(det.class_names[c])
        if group is not None and s >= score:
            out.setdefault(group, []).append(box)
    return {g: np.asarray(b, np.float32) for g, b in out.items()}


def real_recall(
    model: Path,
    reference: Path,
    clips: list[Path],
    frames_per_clip: int = 40,
    imgsz: int | None = None,
) -> dict[str, Any]:
    """Recall of the reference's confident boxes by `model`, per clip and group and overall."""
    ours = OnnxDetector(DetectorConfig(model=model, conf=OUR_SCORE, imgsz=imgsz))
    ref = OnnxDetector(DetectorConfig(model=reference, conf=REF_SCORE))
    targets: Counter[str] = Counter()
    found: Counter[str] = Counter()
    per_clip: dict[str, dict[str, Any]] = {}
    for clip in clips:
        clip_targets: Counter[str] = Counter()
        clip_found: Counter[str] = Counter()
        for frame in sample_frames(clip, frames_per_clip):
            want = _grouped(ref, frame, REF_SCORE)
            got = _grouped(ours, frame, OUR_SCORE)
            for group, boxes in want.items():
                clip_targets[group] += len(boxes)
                mine = got.get(group)
                if mine is not None and len(mine):
                    clip_found[group] += int((iou_matrix(boxes, mine).max(axis=1) >= IOU).sum())
        targets.update(clip_targets)
        found.update(clip_found)
        per_clip[clip.name] = {
            "targets": dict(clip_targets),
            "recall": {g: clip_found[g] / n for g, n in clip_targets.items() if n},
        }
    total = sum(targets.values())
    return {
        "model": model.name,
        "reference": reference.name,
        "reference_score": REF_SCORE,
        "our_score": OUR_SCORE,
        "iou": IOU,
        "targets": dict(targets),
        "recall_per_group": {g: found[g] / n for g, n in targets.items() if n},
        "recall": sum(found.values()) / total if total else None,
        "clips": per_clip,
    }
