"""One measured pass of recorded footage through the whole engine (`Runner`), as fast as it goes.

Each footage file becomes a source (`--streams N`: N copies of each), replayed at `rate: max`
with `when_behind: wait` (nothing dropped: every frame is processed, so runs are comparable).
Measured: frames/s from the first frame to the last (model loading excluded, as for the peers),
per-frame latency from decode to the end of the rules, the mean time from decode to the end of
each stage, drops, inferences (motion gating), CPU and RSS; optionally each frame's detections
of the first copy of every file (for agreement with a peer).
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.config import Config
from engine.errors import EngineError
from engine.runtime import Runner
from engine.runtime.metrics import process_stats
from engine.types import Alert, Event, Frame, Tracks

__all__ = ["PipelineRun", "RunSpec", "measure_pipeline", "source_id"]


def source_id(path: Path, copy: int) -> str:
    """The source id of copy `copy` of a footage file (the first copy: the file's stem)."""
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in path.stem)[:56] or "clip"
    return stem if copy == 0 else f"{stem}-{copy + 1}"


@dataclass(frozen=True)
class RunSpec:
    """What one pass runs."""

    name: str
    footage: tuple[Path, ...]
    model: Path
    imgsz: int | None = None
    streams: int = 1
    batch: int = 4
    tracking: bool = False
    motion: bool = False
    conf: float = 0.25
    iou: float = 0.7
    spin: bool = False
    rules: dict[str, Any] = field(default_factory=dict)  # zones/rules (config keys)
    keep_detections: bool = False

    def config(self) -> Config:
        """The engine config of this pass."""
        sources = []
        for path in self.footage:
            for k in range(self.streams):
                src: dict[str, Any] = {
                    "id": source_id(path, k),
                    "type": "file",
                    "path": str(path),
                    "rate": "max",
                    "when_behind": "wait",
                    "buffer_frames": max(4, 2 * self.batch),
                }
                if self.motion:
                    src["motion"] = {}
                sources.append(src)
        det: dict[str, Any] = {
            "model": str(self.model),
            "batch_max": self.batch,
            "conf": self.conf,
            "iou": self.iou,
            "spin": self.spin,
        }
        if self.imgsz:
            det["imgsz"] = self.imgsz
        return Config.model_validate(
            {
                "site": "bench",
                "sources": sources,
                "detector": det,
                "tracking": {"enabled": self.tracking},
                **self.rules,
            }
        )


@dataclass
class PipelineRun:
    """What a pass measured."""

    name: str
    frames: int
    seconds: float
    fps: float
    latency_ms: dict[str, float]
    stages_ms: dict[str, float]
    inferences: int
    drops: int
    cpu_pct: float
    rss_mb: float
    peak_rss_mb: float
    mean_batch: float
    detections: dict[str, list[npt.NDArray[np.float32]]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The figures (no detections) for tables, JSON and plots."""
        return {
            "name": self.name,
            "fps": round(self.fps, 2),
            "frames": self.frames,
            "seconds": round(self.seconds, 2),
            "latency_ms": self.latency_ms,
            "stages_ms": self.stages_ms,
            "inferences": self.inferences,
            "drops": self.drops,
            "cpu_pct": round(self.cpu_pct, 1),
            "rss_mb": round(self.rss_mb, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "mean_batch": round(self.mean_batch, 2),
        }


class _Hook:
    """Frame hook: timing of the first and last frame, latencies, detections, progress."""

    def __init__(self, keep: set[str], progress: Callable[[int], None] | None) -> None:
        self.keep = keep
        self.progress = progress
        self.first_ns: int | None = None
        self.last_ns = 0
        self.latency_ms: list[float] = []
        self.detections: dict[str, list[npt.NDArray[np.float32]]] = {s: [] for s in keep}
        self._lock = threading.Lock()

    def __call__(self, frame: Frame, tracks: Tracks, _events: list[Event]) -> None:
        now = time.monotonic_ns()
        with self._lock:
            if self.first_ns is None:
                self.first_ns = frame.capture_ns
            self.last_ns = now
            self.latency_ms.append((now - frame.capture_ns) / 1e6)
        if frame.source_id in self.keep:
            cls = tracks.class_id[:, None].astype(np.float32)
            rows = np.concatenate([tracks.xyxy, tracks.score[:, None], cls], axis=1)
            self.detections[frame.source_id].append(rows.astype(np.float32))
        if self.progress is not None:
            self.progress(1)


def measure_pipeline(spec: RunSpec, progress: Callable[[int], None] | None = None) -> PipelineRun:
    """Run one pass to the end of the footage and measure it.

    Raises:
        EngineError: the engine could not start, or a source failed.
    """
    runner = Runner(spec.config())
    keep = {source_id(p, 0) for p in spec.footage} if spec.keep_detections else set()
    hook = _Hook(keep, progress)
    alerts: list[dict[str, Any]] = []

    def on_alert(alert: Alert) -> None:
        e = alert.event
        if isinstance(e, Event) and (e.phase == "start" or e.stage is not None):
            alerts.append(
                {
                    "kind": e.kind,
                    "source": e.source_id,
                    "t": e.pts_s,
                    "stage": e.stage,
                    "id": e.event_id,
                }
            )

    cpu0 = process_stats()["cpu_s"]
    report = runner.run(threading.Event(), on_alert=on_alert, on_frame=hook)
    if report.errors:
        raise EngineError("; ".join(report.errors.values()))
    proc = process_stats()
    frames = sum(report.frames.values())
    seconds = max((hook.last_ns - (hook.first_ns or hook.last_ns)) / 1e9, 1e-9)
    lat = np.asarray(hook.latency_ms or [0.0])
    calls, images = runner.inference_calls, runner.inference_images
    stages = runner.metrics.stage_means_ms()
    return PipelineRun(
        name=spec.name,
        frames=frames,
        seconds=seconds,
        fps=frames / seconds,
        latency_ms={
            p: round(float(np.percentile(lat, q)), 1)
            for p, q in (("p50", 50), ("p90", 90), ("p99", 99))
        },
        stages_ms=_increments(stages),
        inferences=sum(report.inferences.values()),
        drops=sum(s.dropped for s in runner.sources),
        cpu_pct=(proc["cpu_s"] - cpu0) / report.elapsed_s * 100 if report.elapsed_s else 0.0,
        rss_mb=proc["rss_mb"],
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        mean_batch=images / calls if calls else 1.0,
        detections=hook.detections,
        alerts=alerts,
    )


def _increments(means: dict[str, float]) -> dict[str, float]:
    """Mean ms spent in each stage, from the cumulative capture-to-stage means."""
    names = {
        "detect": "decode queue + detect",
        "track": "track",
        "rules": "rules",
        "alert": "publish",
    }
    out: dict[str, float] = {}
    before = 0.0
    for stage in ("detect", "track", "rules", "alert"):
        if stage in means:
            out[names[stage]] = round(max(0.0, means[stage] - before), 2)
            before = means[stage]
    return out
