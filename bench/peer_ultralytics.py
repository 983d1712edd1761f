"""Ultralytics' own video pipeline on an ONNX detector, in an interpreter that has ultralytics.

    python bench/peer_ultralytics.py JOB.json OUT.json

Standalone (it runs where torch is, not Lookout). JOB:
    {"model": "m.onnx", "imgsz": 320, "videos": ["a.mp4"], "mode": "predict" | "track",
     "conf": 0.25, "max_frames": null | int, "warmup": 10 (optional), "rect": null (optional)}

Runs `YOLO(model, task="detect").predict(source=video, stream=True, ...)` (or `.track(...,
persist=True, tracker="bytetrack.yaml")`) with Ultralytics' own defaults for everything else (NMS
IoU 0.7, 300 boxes, its own video reader). One exception: Ultralytics letterboxes to the smallest
stride-aligned rectangle (`rect=True`) whenever the export says `dynamic=True`, even when the ONNX
graph has a fixed H and W (a dynamic-batch-only export), and onnxruntime then refuses the input.
With `"rect": null` the script reads the graph and passes `rect=False` for fixed H and W only;
OUT says which it used and why.

OUT, per video: frames, wall seconds (all frames, and after the first `warmup` frames), frames/s,
Ultralytics' own split (result.speed: preprocess / inference / postprocess ms, means over the
frames after warm-up), CPU seconds, and each frame's boxes [[x1, y1, x2, y2, score, cls(, id)]]
in the frame's pixels. Process-wide: model load time, CPU seconds, peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

WARMUP = 10  # frames not timed in the steady-state figures (session start, first allocations)


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _fixed_hw(model: str) -> bool:
    """The ONNX graph's image input has a fixed height and width."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    shape = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"]).get_inputs()[0]
    return all(isinstance(d, int) for d in shape.shape[2:])


def _rect(job: dict[str, Any]) -> tuple[bool | None, str]:
    """(rect to pass, or None for Ultralytics' default; why)."""
    if job.get("rect") is not None:
        return bool(job["rect"]), "set by the job"
    if _fixed_hw(job["model"]):
        return False, (
            "graph input H and W are fixed: Ultralytics' rect letterbox would feed "
            "a smaller rectangle that onnxruntime refuses"
        )
    return None, "Ultralytics' default (rect letterbox for dynamic exports)"


def _boxes(result: Any, with_ids: bool) -> list[list[float]]:
    b = result.boxes
    if b is None or len(b) == 0:
        return []
    cols = [b.xyxy.cpu().numpy(), b.conf.cpu().numpy()[:, None], b.cls.cpu().numpy()[:, None]]
    if with_ids:  # a box the tracker has not confirmed yet has no id: -1
        ids = b.id.cpu().numpy()[:, None] if b.id is not None else np.full((len(b), 1), -1.0)
        cols.append(ids)
    rows: list[list[float]] = np.concatenate(cols, 1).astype(np.float64).round(3).tolist()
    return rows


def _mean(rows: list[dict[str, float]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return sum(vals) / len(vals) if vals else None


def run_video(model: Any, video: str, job: dict[str, Any], rect: bool | None) -> dict[str, Any]:
    """Run one video through predict/track; its timings and boxes."""
    track = job["mode"] == "track"
    kwargs: dict[str, Any] = {
        "source": video,
        "stream": True,
        "imgsz": job["imgsz"],
        "conf": job["conf"],
        "verbose": False,
    }
    if rect is not None:
        kwargs["rect"] = rect
    if track:
        kwargs.update(persist=True, tracker="bytetrack.yaml")
    warmup = int(job.get("warmup", WARMUP))
    max_frames = job.get("max_frames")
    stamps: list[float] = []
    speeds: list[dict[str, float]] = []
    dets: list[list[list[float]]] = []
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    gen = model.track(**kwargs) if track else model.predict(**kwargs)
    try:
        for result in gen:
            stamps.append(time.perf_counter())
            speeds.append(dict(result.speed))
            dets.append(_boxes(result, track))
            if max_frames is not None and len(stamps) >= max_frames:
                break
    finally:
        gen.close()  # releases Ultralytics' video reader when we stop early
    cpu = _cpu_s() - cpu0
    n = len(stamps)
    wall = stamps[-1] - t0 if n else 0.0
    w = warmup if n > warmup + 1 else 0
    # steady state: from the end of the warm-up frame to the last frame
    steady_n = n - w
    steady_s = stamps[-1] - (stamps[w - 1] if w else t0) if n else 0.0
    steady = speeds[w:]
    return {
        "video": video,
        "frames": n,
        "wall_s": wall,
        "fps_all": n / wall if wall > 0 else None,
        "warmup_frames": w,
        "steady_frames": steady_n,
        "steady_s": steady_s,
        "fps": steady_n / steady_s if steady_s > 0 else None,
        "first_frame_s": stamps[0] - t0 if n else None,
        "speed_ms": {k: _mean(steady, k) for k in ("preprocess", "inference", "postprocess")},
        "cpu_s": cpu,
        "detections": dets,
    }


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    os.environ["YOLO_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory(prefix="yolo-config-") as cfg:
        # settings and fonts go to a throwaway folder, not the user's home
        os.environ["YOLO_CONFIG_DIR"] = cfg
        import ultralytics
        from ultralytics import YOLO

        rect, why = _rect(job)
        t0 = time.perf_counter()
        model = YOLO(job["model"], task="detect")
        load_s = time.perf_counter() - t0
        videos = [run_video(model, v, job, rect) for v in job["videos"]]
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out = {
            "ultralytics": ultralytics.__version__,
            "mode": job["mode"],
            "imgsz": job["imgsz"],
            "conf": job["conf"],
            "rect": rect,
            "rect_reason": why,
            "load_s": load_s,
            "videos": videos,
            "cpu_s": ru.ru_utime + ru.ru_stime,
            "peak_rss_mb": ru.ru_maxrss / 1024,  # Linux reports KiB
        }
    Path(sys.argv[2]).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
