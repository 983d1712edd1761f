"""Many streams on one box: per-stream fps, drops and capture-to-alert latency at 1, 2, 4 and 8
streams, with the engine's latest-frame policy against a queue-everything reference.

Recorded footage (the shared clips, 10 and 12.5 fps, alternating) is replayed at its native rate
in a loop, like cameras, through the whole engine (`Runner`): ingest threads, the shared
inference batcher with yolo11n@320 (dynamic batch), per-source tracking and a zone rule per
source, the publisher with its SQLite journal and ZeroMQ socket. Each configuration runs for a
warm-up and then `--seconds` measured.

Latency is measured from when a camera would have produced the frame (its stream time on the
replay's clock: the first frame's capture plus its pts offset) to when its events were handed
to the publisher (the frame hook, after the rules), per frame, so a frame that waited in a
queue counts its wait. The reference runs the largest count with `when_behind: wait` (every
frame processed, nothing dropped): what an engine without a drop policy does when overloaded.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import Config
from engine.errors import EngineError
from engine.runtime import Runner
from engine.runtime.metrics import process_stats
from engine.types import Event, Frame, Tracks
from tests.support.assets import assets_dir, missing_reason
from tests.support.rtsp_process import free_port

__all__ = ["CLIPS", "MODEL", "Probe", "add_arguments", "run", "stream_config", "watch_whole_frame"]

CLIPS = ("footage/intel_one-by-one-person-detection.mp4", "footage/intel_car-detection.mp4")
MODEL = "models/yolo11n_coco_320_dynbatch.onnx"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench streams`."""
    p.add_argument(
        "--counts", default="1,2,4,8,16", help="stream counts to run (16 overloads 2 cores)"
    )
    p.add_argument("--seconds", type=float, default=30.0, help="measured time per count")
    p.add_argument("--warmup", type=float, default=5.0, help="unmeasured start per count")
    p.add_argument("--no-reference", action="store_true", help="skip the queue-everything run")


def watch_whole_frame(
    source_ids: list[str], classes: list[str], **rule: Any
) -> dict[str, list[dict[str, Any]]]:
    """Config `zones` and `rules`: per source, a zone over the whole (768x432) clip and a
    zone_presence rule on it for `classes` (more rule settings as keywords)."""
    frame = [[0, 0], [768, 0], [768, 432], [0, 432]]
    return {
        "zones": [{"id": f"z-{sid}", "source": sid, "polygon": frame} for sid in source_ids],
        "rules": [
            {
                "id": f"r-{sid}",
                "type": "zone_presence",
                "zone": f"z-{sid}",
                "classes": classes,
                **rule,
            }
            for sid in source_ids
        ],
    }


def stream_config(n: int, out_dir: Path, when_behind: str = "auto", batch_max: int = 8) -> Config:
    """`n` looping native-rate replays of the shared clips through yolo11n@320, a zone rule per
    source, alerts journaled and published on a free port of 127.0.0.1."""
    root = assets_dir()
    sources = [
        {
            "id": f"cam{i + 1}",
            "type": "file",
            "path": str(root / CLIPS[i % 2]),
            "rate": "native",
            "loop": True,
            "buffer_frames": 2,
            "when_behind": when_behind,
        }
        for i in range(n)
    ]
    return Config.model_validate(
        {
            "site": "bench",
            "sources": sources,
            **watch_whole_frame([str(s["id"]) for s in sources], ["person", "car"]),
            "detector": {"model": str(root / MODEL), "batch_max": batch_max, "batch_wait_ms": 5},
            "outputs": [
                {
                    "type": "zmq",
                    "endpoint": f"tcp://127.0.0.1:{free_port()}",
                    "journal": str(out_dir / "journal.db"),
                    "heartbeat_s": 1.0,
                }
            ],
        }
    )


@dataclass
class Probe:
    """Per-source latencies and counts from the frame hook, after the warm-up."""

    measuring: bool = False
    first: dict[str, tuple[int, float]] = field(default_factory=dict)  # capture ns, pts
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)

    def __call__(self, frame: Frame, _tracks: Tracks, _events: list[Event]) -> None:
        now = time.monotonic_ns()
        sid = frame.source_id
        if sid not in self.first:
            self.first[sid] = (frame.capture_ns, frame.pts_s)
        if not self.measuring:
            return
        c0, p0 = self.first[sid]
        due_ns = c0 + (frame.pts_s - p0) * 1e9  # when a camera would have produced it
        self.latency_ms.setdefault(sid, []).append((now - due_ns) / 1e6)
        self.frames[sid] = self.frames.get(sid, 0) + 1


def measure(cfg: Config, seconds: float, warmup: float) -> dict[str, Any]:
    """Run a config for warm-up + seconds; per-stream figures of the measured part."""
    runner = Runner(cfg)
    probe = Probe()
    stop = threading.Event()
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(r=runner.run(stop, on_frame=probe)))
    thread.start()
    try:
        time.sleep(warmup)
        dropped0 = {s.id: s.dropped for s in runner.sources}
        cpu0, t0 = process_stats()["cpu_s"], time.monotonic()
        probe.measuring = True
        time.sleep(seconds)
        probe.measuring = False
        elapsed = time.monotonic() - t0
        proc = process_stats()
        dropped = {s.id: s.dropped - dropped0[s.id] for s in runner.sources}
        native = {s.id: s.fps for s in runner.sources}
        batcher = runner._batcher
        calls, images = (batcher.calls, batcher.images) if batcher is not None else (0, 0)
    finally:
        stop.set()
        thread.join(60)
    report = result.get("r")
    if report is not None and report.errors:
        raise EngineError("; ".join(report.errors.values()))
    lat = (
        np.concatenate([np.asarray(v) for v in probe.latency_ms.values()])
        if probe.latency_ms
        else np.zeros(1)
    )
    per_stream = {sid: probe.frames.get(sid, 0) / elapsed for sid in native}
    return {
        "streams": len(native),
        "native_fps": round(sum(native.values()) / len(native), 2),
        "fps_per_stream": round(float(np.mean(list(per_stream.values()))), 2),
        "fps_per_stream_min": round(min(per_stream.values()), 2),
        "fps_total": round(sum(per_stream.values()), 1),
        "dropped": int(sum(dropped.values())),
        "drop_fraction": round(
            sum(dropped.values()) / max(1, sum(dropped.values()) + sum(probe.frames.values())), 3
        ),
        "latency_p50_ms": round(float(np.percentile(lat, 50)), 1),
        "latency_p99_ms": round(float(np.percentile(lat, 99)), 1),
        "latency_max_ms": round(float(lat.max()), 1),
        "cpu_pct": round((proc["cpu_s"] - cpu0) / elapsed * 100, 1),
        "rss_mb": round(proc["rss_mb"], 1),
        "mean_batch": round(images / calls, 2) if calls else 1.0,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every stream count, then the reference; the table and summary."""
    why = missing_reason(MODEL, *CLIPS)
    if why:
        raise EngineError(f"bench streams: {why}")
    counts = [int(c) for c in str(args.counts).split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lookout-bench-") as tmp:
        for n in counts:
            row = measure(stream_config(n, Path(tmp) / f"n{n}"), args.seconds, args.warmup)
            rows.append({"policy": "drop_oldest", **row})
            print(
                f"  {n} streams: {row['fps_per_stream']} fps/stream, p99 {row['latency_p99_ms']} ms"
            )
        if not args.no_reference:
            n = max(counts)
            cfg = stream_config(n, Path(tmp) / "ref", when_behind="wait")
            rows.append({"policy": "wait (reference)", **measure(cfg, args.seconds, args.warmup)})
    by_n = {r["streams"]: r for r in rows if r["policy"] == "drop_oldest"}
    one, top = by_n[min(by_n)], by_n[max(by_n)]
    summary: dict[str, Any] = {}
    for n, r in by_n.items():
        summary[f"latency_p99_ms_{n}stream{'s' if n > 1 else ''}"] = r["latency_p99_ms"]
    for n, r in by_n.items():
        summary[f"fps_per_stream_{n}"] = r["fps_per_stream"]
        summary[f"drop_fraction_{n}"] = r["drop_fraction"]
    if 8 in by_n:
        summary["latency_p99_ratio_8_vs_1"] = round(
            by_n[8]["latency_p99_ms"] / one["latency_p99_ms"], 2
        )
    summary["latency_p99_ratio_max_vs_1"] = round(top["latency_p99_ms"] / one["latency_p99_ms"], 2)
    ref = [r for r in rows if r["policy"] != "drop_oldest"]
    if ref:
        summary["reference_wait_latency_p99_ms"] = ref[0]["latency_p99_ms"]
        summary["latency_p99_ratio_wait_vs_drop"] = round(
            ref[0]["latency_p99_ms"] / top["latency_p99_ms"], 2
        )
    return {
        "suite": "streams",
        "seconds": args.seconds,
        "warmup": args.warmup,
        "model": MODEL,
        "clips": list(CLIPS),
        "table": rows,
        "summary": summary,
    }
