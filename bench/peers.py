"""The peers a pipeline benchmark measures Lookout against, and how far their outputs agree.

- `run_ultralytics`: Ultralytics' own `predict`/`track` on the same ONNX model and videos, in
  the interpreter that has torch (`make ultralytics-env`), through bench/peer_ultralytics.py.
- `ort_limit`: the ceiling for any pipeline on this machine: onnxruntime alone on pre-letterboxed
  batches, with the engine's session, input size and pre-processing.
- `agreement`: the share of one detector's boxes that the other found too (same class, IoU at
  least a threshold, one-to-one).

Example:
    >>> ref = ort_limit(Path("yolo11n.onnx"), 320, frames, batches=(1, 4))  # doctest: +SKIP
    >>> ref["limit_fps"], ref["best_batch"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lap
import numpy as np
import numpy.typing as npt

from engine.config import DetectorConfig
from engine.detect import OnnxDetector
from engine.detect.session import open_session
from engine.preprocess import letterbox_fused
from engine.track import iou_matrix

__all__ = ["agreement", "detections_of", "ort_limit", "run_ultralytics"]

REPO = Path(__file__).resolve().parents[1]
PEER_SCRIPT = Path(__file__).resolve().parent / "peer_ultralytics.py"
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"
WARMUP_RUNS = 3  # untimed session runs per batch size (first-run allocations)


# --- Ultralytics ----------------------------------------------------------------------------


def run_ultralytics(
    model: Path,
    imgsz: int,
    videos: Sequence[Path],
    mode: str = "predict",
    conf: float = 0.25,
    max_frames: int | None = None,
    python: Path | None = None,
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """Ultralytics' own pipeline (its video reader, letterbox, NMS, tracker) on the videos.

    Args:
        model: ONNX detector.
        imgsz: Ultralytics' `imgsz` (long side of the input).
        videos: video files, run one after another in one process.
        mode: "predict" or "track" (ByteTrack, Ultralytics' bytetrack.yaml).
        conf: score threshold.
        max_frames: stop each video after this many frames (None: the whole video).
        python: interpreter with ultralytics and onnxruntime (default `.venv-train/bin/python`).
        timeout_s: give up after this long.

    Returns:
        What bench/peer_ultralytics.py wrote: per video `frames`, `fps`, `fps_all`, `speed_ms`,
        `cpu_s`, `detections` (per frame [[x1, y1, x2, y2, score, cls(, id)]]); and
        `peak_rss_mb`, `cpu_s`, `rect` for the process.

    Raises:
        RuntimeError: no such interpreter, the peer failed (with the tail of its stderr), or it
            ran past `timeout_s`.
    """
    if mode not in ("predict", "track"):
        raise ValueError(f"mode must be 'predict' or 'track', got {mode!r}")
    python = python or TRAIN_PYTHON
    if not python.exists():
        raise RuntimeError(
            f"{python}: no interpreter with Ultralytics for the peer; create it with "
            "`make ultralytics-env` (or pass the python of an environment that has ultralytics "
            "and onnxruntime)"
        )
    job = {
        "model": str(Path(model).resolve()),
        "imgsz": imgsz,
        "videos": [str(Path(v).resolve()) for v in videos],
        "mode": mode,
        "conf": conf,
        "max_frames": max_frames,
    }
    # the peer is another project's interpreter: none of this one's import paths
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["YOLO_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory(prefix="lookout-peer-") as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        cmd = [str(python), str(PEER_SCRIPT), str(job_path), str(out_path)]
        try:
            run = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=tmp
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"ultralytics peer ran past {timeout_s:.0f} s") from None
        if run.returncode or not out_path.exists():
            tail = run.stderr.strip()[-2000:]
            raise RuntimeError(f"ultralytics peer failed (exit {run.returncode}):\n{tail}")
        result: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
    return result


def detections_of(video: dict[str, Any]) -> list[npt.NDArray[np.float32]]:
    """One video of `run_ultralytics`' result as per-frame f32 [n, 6] (x1, y1, x2, y2, score,
    cls) arrays (track ids dropped)."""
    out = []
    for rows in video["detections"]:
        width = len(rows[0]) if rows else 6
        out.append(np.asarray(rows, np.float32).reshape(-1, width)[:, :6])
    return out


# --- onnxruntime limit ----------------------------------------------------------------------


def _letterboxed(
    det: OnnxDetector, frames: Sequence[npt.NDArray[np.uint8]]
) -> npt.NDArray[np.floating[Any]]:
    """All frames letterboxed once, the way the engine does: [N, 3, H, W] at the input size the
    engine would pick for them (the model's, or the stride-aligned rectangle of a model with
    dynamic H and W), with the engine's fused kernel and the model's layout."""
    h, w = det.input_shape(frames)
    out = np.empty((len(frames), 3, h, w), det.info.input_dtype)
    for i, im in enumerate(frames):
        letterbox_fused(im, out[i], det.info.layout)
    return out


def _time_batch(
    session: Any, name: str, batches: list[npt.NDArray[Any]], seconds: float
) -> dict[str, float]:
    """Run the batches round-robin for about `seconds` after a warm-up: images/s and ms."""
    for k in range(WARMUP_RUNS):
        session.run(None, {name: batches[k % len(batches)]})
    calls: list[float] = []
    images = 0
    cpu0 = time.process_time()
    start = time.perf_counter()
    while not calls or time.perf_counter() - start < seconds:
        x = batches[len(calls) % len(batches)]
        t = time.perf_counter()
        session.run(None, {name: x})
        calls.append(time.perf_counter() - t)
        images += x.shape[0]
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    return {
        "calls": len(calls),
        "images": images,
        "seconds": wall,
        "images_per_s": images / wall,
        "ms_per_image": 1000 * sum(calls) / images,
        "ms_per_call_p50": 1000 * float(np.median(calls)),
        "cpu_pct": 100 * cpu / wall,
    }


def ort_limit(
    model: Path,
    imgsz: int | None,
    frames: Sequence[npt.NDArray[np.uint8]],
    batches: Sequence[int] = (1, 2, 4, 8),
    seconds: float = 5.0,
    threads: int = 0,
) -> dict[str, Any]:
    """Images/s of onnxruntime alone: the ceiling for any pipeline with this model here.

    Frames are letterboxed once up front exactly as the engine's detector would (same input
    size, kernel and layout) and stacked into batch tensors; only `session.run` is timed, on
    sessions opened by the engine's own `open_session` (same thread count and graph
    optimisation), CPU provider, with onnxruntime's threads spinning between runs and not: per
    batch size the better of the two counts (the limit is the best figure there is).

    Args:
        model: ONNX detector.
        imgsz: input size for a model with dynamic H and W (None: from its metadata).
        frames: decoded BGR uint8 [h, w, 3] frames; reused round-robin.
        batches: batch sizes to time; sizes above 1 are skipped for a fixed-batch model.
        seconds: timed seconds per batch size.
        threads: onnxruntime intra-op threads (0: onnxruntime decides, the engine's default).

    Returns:
        {"model", "input_hw", "threads", "batches": {b: {"images_per_s", "ms_per_image", ...}},
        "skipped": [b, ...], "limit_fps", "best_batch"}.
    """
    if not frames:
        raise ValueError("ort_limit needs at least one frame")
    cfg = DetectorConfig(model=Path(model), imgsz=imgsz, threads=threads, warmup_runs=0)
    # the detector answers how the engine prepares input; the timed sessions are plain ones,
    # with onnxruntime's threads spinning between runs (its default) and not (the engine's)
    det = OnnxDetector(cfg)
    stacked = _letterboxed(det, frames)
    results: dict[int, dict[str, Any]] = {}
    skipped = [b for b in batches if b > 1 and not det.info.batch_dynamic]
    for spin in (False, True):
        session, _ = open_session(cfg.model_copy(update={"spin": spin}))
        name = session.get_inputs()[0].name
        for b in batches:
            if b in skipped:
                continue
            n = max(1, -(-len(frames) // b))  # enough batches to use every frame once
            idx = np.arange(n * b) % len(frames)
            tensors = [np.ascontiguousarray(stacked[idx[i * b : (i + 1) * b]]) for i in range(n)]
            timed = {**_time_batch(session, name, tensors, seconds), "spin": spin}
            if b not in results or timed["images_per_s"] > results[b]["images_per_s"]:
                results[b] = timed
        del session
    best = max(results, key=lambda b: results[b]["images_per_s"])
    return {
        "model": Path(model).name,
        "input_hw": list(stacked.shape[2:]),
        "threads": threads,
        "batches": results,
        "skipped": skipped,
        "limit_fps": results[best]["images_per_s"],
        "best_batch": best,
    }


# --- agreement ------------------------------------------------------------------------------


def _match(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], iou: float
) -> list[tuple[int, int, float]]:
    """One-to-one pairs (i, j, IoU) of same-class boxes at IoU >= iou, by an optimal assignment
    (lap's Jonker-Volgenant solver) on 1 - IoU."""
    if len(a) == 0 or len(b) == 0:
        return []
    ious = iou_matrix(np.ascontiguousarray(a[:, :4]), np.ascontiguousarray(b[:, :4]))
    ious[a[:, 5, None] != b[None, :, 5]] = 0.0
    limit = 1.0 - iou + 1e-6
    cost = np.where(ious >= iou, 1.0 - ious, 2.0).astype(np.float64)
    _, x, _ = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    return [(i, int(j), float(ious[i, j])) for i, j in enumerate(x) if j >= 0 and ious[i, j] >= iou]


def _as_boxes(frame: npt.ArrayLike) -> npt.NDArray[np.float32]:
    arr = np.asarray(frame, np.float32)
    if arr.size == 0:
        return np.zeros((0, 6), np.float32)
    if arr.ndim != 2 or arr.shape[1] < 6:
        raise ValueError(f"expected [n, 6] boxes (x1, y1, x2, y2, score, cls), got {arr.shape}")
    return arr


def agreement(
    a: Sequence[npt.ArrayLike], b: Sequence[npt.ArrayLike], iou: float = 0.9
) -> dict[str, Any]:
    """How far two detectors' outputs on the same frames agree.

    Boxes of the same class are matched one-to-one per frame at IoU >= `iou`.

    Args:
        a, b: per frame [n, 6] arrays (x1, y1, x2, y2, score, cls), same number of frames.
        iou: the least IoU of a match.

    Returns:
        {"frames", "n_a", "n_b", "matched", "frac_a" (matched / n_a), "frac_b" (matched / n_b),
        "symmetric" (2 matched / (n_a + n_b)), "mean_iou" and "score_mad" (mean absolute score
        difference) over the matches}. A fraction over no boxes is 1.0 (nothing to miss).

    Raises:
        ValueError: the frame counts differ, or a frame is not [n, 6].

    Example:
        >>> box = np.array([[0, 0, 10, 10, 0.9, 0]], np.float32)
        >>> agreement([box], [box])["symmetric"]
        1.0
    """
    if len(a) != len(b):
        raise ValueError(f"frame counts differ: {len(a)} vs {len(b)}")
    n_a = n_b = 0
    ious: list[float] = []
    score_diffs: list[float] = []
    for fa, fb in zip(a, b, strict=True):
        ba, bb = _as_boxes(fa), _as_boxes(fb)
        n_a, n_b = n_a + len(ba), n_b + len(bb)
        for i, j, v in _match(ba, bb, iou):
            ious.append(v)
            score_diffs.append(abs(float(ba[i, 4]) - float(bb[j, 4])))
    m = len(ious)
    return {
        "frames": len(a),
        "iou": iou,
        "n_a": n_a,
        "n_b": n_b,
        "matched": m,
        "frac_a": m / n_a if n_a else 1.0,
        "frac_b": m / n_b if n_b else 1.0,
        "symmetric": 2 * m / (n_a + n_b) if n_a + n_b else 1.0,
        "mean_iou": float(np.mean(ious)) if ious else None,
        "score_mad": float(np.mean(score_diffs)) if score_diffs else None,
    }
