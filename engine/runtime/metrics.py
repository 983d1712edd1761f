"""Runtime metrics: per source and per stage, in Prometheus text format and in the heartbeat.

Each `RuntimeMetrics` owns its own `CollectorRegistry` (no process-global state: two runners in
one process, as in the tests, do not mix their numbers). Counters and latency histograms are
updated by the stages as frames pass; gauges that other objects already keep (queue depths,
drops counted by the sources' buffers) are read when scraped, through callbacks. Latency is
measured from a frame's capture (`Frame.capture_ns`) to the end of each stage: `detect`,
`track`, `rules` (the moment its events are handed to the publisher) and `alert` (published).

`summary()` is what the heartbeat carries: per source fps in and out over the last interval,
drops, latency p50/p99 over a recent window, restarts; and the process's CPU, RSS, threads and
open file descriptors.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["STAGES", "RuntimeMetrics", "SourceProbe", "process_stats"]

STAGES = ("detect", "track", "rules", "alert")
LATENCY_BUCKETS_S = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.4,
    0.6,
    1.0,
    2.0,
    5.0,
    10.0,
)
WINDOW = 4096  # recent latencies kept per source for percentiles


@dataclass
class SourceProbe:
    """Callbacks reading what a source keeps itself (set by the runner)."""

    dropped: Callable[[], int] = lambda: 0
    queued: Callable[[], int] = lambda: 0


@dataclass
class _Window:
    """One source's recent figures (for the heartbeat and benchmarks)."""

    latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    frames_in: int = 0
    frames_out: int = 0
    inferences: int = 0
    restarts: int = 0
    last_in: int = 0
    last_out: int = 0


def process_stats(proc: psutil.Process | None = None) -> dict[str, float]:
    """This process's RSS (MB), CPU seconds, threads and open file descriptors."""
    p = proc or psutil.Process()
    with p.oneshot():
        cpu = p.cpu_times()
        return {
            "rss_mb": p.memory_info().rss / 2**20,
            "cpu_s": cpu.user + cpu.system,
            "threads": p.num_threads(),
            "fds": p.num_fds() if hasattr(p, "num_fds") else 0,
        }


class RuntimeMetrics:
    """Counters, histograms and gauges of one runner.

    Args:
        sources: the source ids (their series exist from the start, at zero).
    """

    def __init__(self, sources: list[str]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames_in = Counter(
            "lookout_frames_in",
            "Frames taken from the source by the engine",
            ["source"],
            registry=r,
        )
        self.frames_out = Counter(
            "lookout_frames_processed",
            "Frames through detection, tracking and rules",
            ["source"],
            registry=r,
        )
        self.inferences = Counter(
            "lookout_inferences",
            "Frames sent to the detector (below frames: motion gating)",
            ["source"],
            registry=r,
        )
        self.restarts = Counter(
            "lookout_stage_restarts",
            "Stages restarted after a failure",
            ["source", "stage"],
            registry=r,
        )
        self.alerts = Counter(
            "lookout_alerts_published", "Alerts published (health included)", ["kind"], registry=r
        )
        self.latency = Histogram(
            "lookout_latency_seconds",
            "Seconds from a frame's capture to the end of a stage",
            ["source", "stage"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._lock = threading.Lock()
        self._win: dict[str, _Window] = {s: _Window() for s in sources}
        self._probes: dict[str, SourceProbe] = {}
        self._queues: dict[str, Callable[[], int]] = {}
        self._proc = psutil.Process()
        self._last_summary = time.monotonic()
        self._last_cpu = process_stats(self._proc)["cpu_s"]
        self._summary: dict[str, Any] | None = None
        self._stage_sums: dict[str, list[float]] = {}  # stage: [seconds, frames], all sources
        for s in sources:
            self.frames_in.labels(s)
            self.frames_out.labels(s)
            self.inferences.labels(s)
        r.register(_Gauges(self))

    # --- what the stages call -----------------------------------------------------------------

    def probe(self, source: str, probe: SourceProbe) -> None:
        """Read this source's drops and queue depth through `probe` when asked."""
        self._probes[source] = probe

    def queue(self, name: str, depth: Callable[[], int]) -> None:
        """Report a shared queue's depth (the event queue, the inference batcher's)."""
        self._queues[name] = depth

    def frame_in(self, source: str) -> None:
        """A frame was taken from the source."""
        self.frames_in.labels(source).inc()
        with self._lock:
            self._win[source].frames_in += 1

    def stage_done(
        self, source: str, stage: str, capture_ns: int, now_ns: int | None = None
    ) -> None:
        """A stage finished a frame captured at `capture_ns` (monotonic ns)."""
        seconds = ((now_ns or time.monotonic_ns()) - capture_ns) / 1e9
        self.latency.labels(source, stage).observe(seconds)
        with self._lock:
            acc = self._stage_sums.setdefault(stage, [0.0, 0])
            acc[0] += seconds
            acc[1] += 1
        if stage == "rules":
            with self._lock:
                w = self._win[source]
                w.latency_ms.append(seconds * 1000)
                w.frames_out += 1
            self.frames_out.labels(source).inc()

    def inferred(self, source: str, count: int) -> None:
        """The source's inference counter reached `count`."""
        with self._lock:
            w = self._win[source]
            new, w.inferences = count - w.inferences, count
        if new > 0:
            self.inferences.labels(source).inc(new)

    def restarted(self, source: str, stage: str) -> None:
        """A stage of this source was restarted after a failure."""
        self.restarts.labels(source, stage).inc()
        with self._lock:
            self._win[source].restarts += 1

    def published(self, kind: str, count: int = 1) -> None:
        """Alerts of this kind went out."""
        self.alerts.labels(kind).inc(count)

    # --- what readers call --------------------------------------------------------------------

    def stage_means_ms(self) -> dict[str, float]:
        """Mean ms from capture to the end of each stage, over every frame of every source."""
        with self._lock:
            return {
                st: acc[0] / acc[1] * 1000
                for st in STAGES
                if (acc := self._stage_sums.get(st)) and acc[1]
            }

    def summary(self, min_interval_s: float = 1.0) -> dict[str, Any]:
        """Per-source and process figures since the last summary (for the heartbeat); within
        `min_interval_s` of it, that summary again (rates need a span of time)."""
        now = time.monotonic()
        if self._summary is not None and now - self._last_summary < min_interval_s:
            return self._summary
        dt = max(now - self._last_summary, 1e-6)
        proc = process_stats(self._proc)
        cpu_pct = (proc["cpu_s"] - self._last_cpu) / dt * 100
        self._last_summary, self._last_cpu = now, proc["cpu_s"]
        sources: dict[str, Any] = {}
        with self._lock:
            for sid, w in self._win.items():
                probe = self._probes.get(sid, SourceProbe())
                lat = np.asarray(w.latency_ms) if w.latency_ms else None
                sources[sid] = {
                    "fps_in": round((w.frames_in - w.last_in) / dt, 2),
                    "fps_out": round((w.frames_out - w.last_out) / dt, 2),
                    "frames": w.frames_out,
                    "inferences": w.inferences,
                    "dropped": probe.dropped(),
                    "queued": probe.queued(),
                    "restarts": w.restarts,
                    "latency_ms_p50": None
                    if lat is None
                    else round(float(np.percentile(lat, 50)), 1),
                    "latency_ms_p99": None
                    if lat is None
                    else round(float(np.percentile(lat, 99)), 1),
                }
                w.last_in, w.last_out = w.frames_in, w.frames_out
        self._summary = {
            "sources": sources,
            "queues": {name: depth() for name, depth in self._queues.items()},
            "process": {
                "cpu_pct": round(cpu_pct, 1),
                "rss_mb": round(proc["rss_mb"], 1),
                "threads": int(proc["threads"]),
                "fds": int(proc["fds"]),
            },
        }
        return self._summary


class _Gauges(Collector):
    """Gauges read at scrape time: drops, queue depths, and the process's resources."""

    def __init__(self, metrics: RuntimeMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Any]:
        m = self._m
        drops = CounterMetricFamily(
            "lookout_frames_dropped",
            "Frames dropped because the engine was behind",
            labels=["source", "stage"],
        )
        depth = GaugeMetricFamily(
            "lookout_queue_depth", "Items waiting in a queue", labels=["queue"]
        )
        for sid, probe in list(m._probes.items()):
            drops.add_metric([sid, "ingest"], probe.dropped())
            depth.add_metric([f"ingest:{sid}"], probe.queued())
        for name, fn in list(m._queues.items()):
            depth.add_metric([name], fn())
        yield drops
        yield depth
        proc = process_stats(m._proc)
        yield CounterMetricFamily(
            "lookout_process_cpu_seconds", "CPU time of the engine process", value=proc["cpu_s"]
        )
        for name, text, key, scale in (
            ("lookout_process_resident_memory_bytes", "Resident memory", "rss_mb", 2**20),
            ("lookout_process_threads", "Threads of the engine process", "threads", 1),
            ("lookout_process_open_fds", "Open file descriptors", "fds", 1),
        ):
            yield GaugeMetricFamily(name, text, value=proc[key] * scale)
