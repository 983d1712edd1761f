"""Soak: the engine on 4 looping native-rate streams for a long time, watching for leaks.

The same streams as `lookout bench streams` run for `--minutes`; every `--every` seconds the
process's RSS, threads and open file descriptors are sampled. After the warm-up (`--warmup-min`:
numba, onnxruntime's arenas and the journal settle), the figures must stay flat: RSS growth is
the last tenth of the run against the first tenth after warm-up (medians, so a passing burst
does not count); threads and descriptors are compared at the same two points. The run also
exercises the paths where leaks hide: one source's worker is killed every `--fault-every`
seconds (the supervisor restarts it) and the rules are reloaded from the config file every
`--reload-every` seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.streams import CLIPS, MODEL, stream_config
from engine.config import load_config
from engine.errors import EngineError
from engine.runtime import Runner
from engine.runtime.metrics import process_stats
from engine.runtime.reload import ConfigWatcher
from engine.types import Event, Frame, Tracks
from tests.support.assets import missing_reason

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench soak`."""
    p.add_argument("--minutes", type=float, default=30.0, help="length of the run")
    p.add_argument("--warmup-min", type=float, default=3.0, help="not judged at the start")
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--fault-every", type=float, default=120.0, help="kill a worker this often")
    p.add_argument("--reload-every", type=float, default=180.0, help="reload rules this often")


class _Faults:
    """Frame hook that makes one source's worker fail when asked (round robin)."""

    def __init__(self, sources: list[str]) -> None:
        self.sources = sources
        self.next = 0
        self.armed: str | None = None
        self.injected = 0

    def arm(self) -> None:
        self.armed = self.sources[self.next % len(self.sources)]
        self.next += 1

    def __call__(self, frame: Frame, _tracks: Tracks, _events: list[Event]) -> None:
        if self.armed == frame.source_id:
            self.armed = None
            self.injected += 1
            raise RuntimeError("soak: injected fault")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run, sample, judge."""
    why = missing_reason(MODEL, *CLIPS)
    if why:
        raise EngineError(f"bench soak: {why}")
    with tempfile.TemporaryDirectory(prefix="lookout-soak-") as tmp:
        path = Path(tmp) / "soak.yaml"
        base = stream_config(args.streams, Path(tmp)).model_dump(mode="json")
        path.write_text(yaml.safe_dump(base))
        runner = Runner(load_config(path), watch=ConfigWatcher(path))
        faults = _Faults([s.id for s in runner.sources])
        stop = threading.Event()
        out: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: out.update(r=runner.run(stop, on_frame=faults)))
        samples: list[dict[str, float]] = []
        t0 = time.monotonic()
        next_fault, next_reload, reloads = args.fault_every, args.reload_every, 0
        thread.start()
        try:
            while (t := time.monotonic() - t0) < args.minutes * 60 and thread.is_alive():
                per_source = runner.metrics.summary(min_interval_s=0)["sources"].values()
                samples.append(
                    {
                        "t_s": round(t, 1),
                        **{k: round(v, 2) for k, v in process_stats().items()},
                        "frames": sum(x["frames"] for x in per_source),
                        "dropped": sum(x["dropped"] for x in per_source),
                    }
                )
                if t >= next_fault:
                    faults.arm()
                    next_fault += args.fault_every
                if t >= next_reload:
                    reloads += 1
                    classes = ["person", "car"] if reloads % 2 == 0 else ["person", "car", "truck"]
                    for rule in base["rules"]:
                        rule["classes"] = classes
                    path.write_text(yaml.safe_dump(base))
                    next_reload += args.reload_every
                time.sleep(args.every)
        finally:
            stop.set()
            thread.join(60)
    report = out.get("r")
    return _judge(samples, args, faults.injected, report)


def _judge(
    samples: list[dict[str, float]], args: argparse.Namespace, faults: int, report: Any
) -> dict[str, Any]:
    judged = [s for s in samples if s["t_s"] >= args.warmup_min * 60]
    if len(judged) < 4:
        raise EngineError("bench soak: too short to judge; give --minutes above --warmup-min")
    k = max(2, len(judged) // 10)
    head, tail = judged[:k], judged[-k:]

    def med(rows: list[dict[str, float]], key: str) -> float:
        return float(np.median([r[key] for r in rows]))

    rss0, rss1 = med(head, "rss_mb"), med(tail, "rss_mb")
    summary = {
        "minutes": args.minutes,
        "streams": args.streams,
        "rss_mb_after_warmup": round(rss0, 1),
        "rss_mb_end": round(rss1, 1),
        "rss_growth_pct": round((rss1 - rss0) / rss0 * 100, 2),
        "threads_after_warmup": int(med(head, "threads")),
        "threads_end": int(med(tail, "threads")),
        "threads_max": int(max(s["threads"] for s in judged)),
        "fds_after_warmup": int(med(head, "fds")),
        "fds_end": int(med(tail, "fds")),
        "fds_max": int(max(s["fds"] for s in judged)),
        "frames": int(samples[-1]["frames"]),
        "dropped": int(samples[-1]["dropped"]),
        "faults_injected": faults,
        "restarts": sum(report.restarts.values()) if report is not None else None,
        "reloads": report.reloads if report is not None else None,
        "errors": len(report.errors) if report is not None else None,
    }
    table = samples[:: max(1, len(samples) // 20)] + samples[-1:]
    return {"suite": "soak", "samples": samples, "table": table, "summary": summary}
