"""GPU providers against the CPU: same detections, latency per batch size (`bench/gpu_check`).

Runs the dynamic-batch model with each execution provider this onnxruntime build offers
(TensorRT fp16, CUDA with IO binding, CPU), on real frames (the shared footage, else rendered
scenes), and checks every provider's detections against the CPU's: a CPU box counts as matched
when the provider has a box of the same class with IoU >= 0.9 and a score within 0.05 (fp16
moves scores a little). Providers that are not in the build are listed as such, so the script
also runs (CPU only) on machines without a GPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from engine.config import DetectorConfig
from engine.detect import OnnxDetector
from engine.errors import ModelError
from engine.types import Detections
from tests.support.assets import assets_dir

__all__ = ["add_arguments", "frames", "match_fraction", "run"]

VARIANTS: dict[str, dict[str, Any]] = {
    "cpu": {"providers": ["cpu"]},
    "cuda": {"providers": ["cuda"], "io_binding": "on"},
    "tensorrt-fp16": {"providers": ["tensorrt"], "fp16": True, "io_binding": "on"},
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench gpu-check`."""
    default = assets_dir() / "models" / "yolo11n_coco_320_dynbatch.onnx"
    p.add_argument("--model", type=Path, default=default, help="dynamic-batch ONNX model")
    p.add_argument("--frames", type=int, default=64, help="frames to compare")
    p.add_argument("--batches", default="1,2,4,8", help="batch sizes to time")
    p.add_argument("--runs", type=int, default=30, help="timed runs per batch size")


def frames(n: int) -> list[npt.NDArray[np.uint8]]:
    """n real frames from the shared footage, or rendered scenes where it is absent."""
    clip = assets_dir() / "footage" / "intel_one-by-one-person-detection.mp4"
    out: list[npt.NDArray[np.uint8]] = []
    if clip.is_file():
        cap = cv2.VideoCapture(str(clip))
        index = 0
        while len(out) < n:
            ok, image = cap.read()
            if not ok:
                break
            if index % 10 == 0:  # spread over the clip: people come and go
                out.append(np.asarray(image, np.uint8))
            index += 1
        cap.release()
    if len(out) < n:
        from engine.sim import Simulation
        from engine.sim.randomize import random_scenario

        sim = Simulation(random_scenario(7))
        out += [sim.frame(i * 5)[0] for i in range(n - len(out))]
    return out


def match_fraction(
    ref: list[Detections], got: list[Detections], min_iou: float = 0.9, max_score_diff: float = 0.05
) -> float:
    """Fraction of `ref` boxes that `got` reproduces (same class, IoU, score within a margin)."""
    total = matched = 0
    for a, b in zip(ref, got, strict=True):
        for box, score, cls in zip(a.xyxy, a.score, a.class_id, strict=True):
            total += 1
            same = (b.class_id == cls) & (np.abs(b.score - score) <= max_score_diff)
            if not same.any():
                continue
            c = b.xyxy[same]
            iw = np.clip(np.minimum(box[2], c[:, 2]) - np.maximum(box[0], c[:, 0]), 0, None)
            ih = np.clip(np.minimum(box[3], c[:, 3]) - np.maximum(box[1], c[:, 1]), 0, None)
            inter = iw * ih
            union = (
                (box[2] - box[0]) * (box[3] - box[1])
                + (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])
                - inter
            )
            matched += int((inter / np.maximum(union, 1e-9)).max() >= min_iou)
    return matched / total if total else 1.0


def _latency(
    det: OnnxDetector, images: list[npt.NDArray[np.uint8]], batch: int, runs: int
) -> float:
    chunk = (images * batch)[:batch]
    det.detect_images(chunk)
    t0 = time.perf_counter()
    for _ in range(runs):
        det.detect_images(chunk)
    return 1000 * (time.perf_counter() - t0) / runs


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every provider variant: availability, agreement with the CPU, latency per batch."""
    batches = [int(b) for b in str(args.batches).split(",")]
    images = frames(args.frames)
    rows: list[dict[str, Any]] = []
    reference: list[Detections] | None = None
    for name, options in VARIANTS.items():
        cfg = DetectorConfig.model_validate(
            {"model": args.model, "batch_max": max(batches), "conf": 0.25, **options}
        )
        try:
            det = OnnxDetector(cfg)
        except ModelError as exc:
            rows.append({"variant": name, "provider": f"failed: {exc}"})
            continue
        wanted = cfg.providers[0]
        if det.provider != wanted:
            rows.append({"variant": name, "provider": f"{wanted} not available (ran nothing)"})
            continue
        dets = [d for i in range(0, len(images), 8) for d in det.detect_images(images[i : i + 8])]
        if name == "cpu":
            reference = dets
        row: dict[str, Any] = {
            "variant": name,
            "provider": det.provider,
            "boxes": sum(len(d) for d in dets),
            "match_vs_cpu": match_fraction(reference, dets) if reference else None,
        }
        for b in batches:
            ms = _latency(det, images, b, args.runs)
            row[f"ms_b{b}"] = ms
            row[f"ms_per_image_b{b}"] = ms / b
        rows.append(row)
    ran = [r for r in rows if "boxes" in r]
    gpu = [r for r in ran if r["variant"] != "cpu"]
    summary = {
        "model": args.model.name,
        "providers_run": [r["provider"] for r in ran],
        "min_match_vs_cpu": min((r["match_vs_cpu"] for r in gpu), default=None),
        **{
            f"{r['variant']}_ms_per_image_b{max(batches)}": r[f"ms_per_image_b{max(batches)}"]
            for r in ran
        },
    }
    keys = ["variant", "provider", "boxes", "match_vs_cpu"] + [f"ms_b{b}" for b in batches]
    table = [{k: r.get(k) for k in keys} for r in rows]
    return {"suite": "gpu-check", "summary": summary, "rows": rows, "table": table}
