"""The alert stream under load: nothing lost, rate sustained, publish-to-receive latency.

Every run is real processes on 127.0.0.1 (tests/support/alert_load.py): the engine's publisher
(journal, then send) and consoles with the gap-filling client.
- `killed console`: N alerts flat out; the console (`lookout subscribe --replay --out`) is
  SIGKILLed at 20 % and restarted; its file must end with every alert once, in order.
- `1 console` / `10 consoles`: N alerts flat out to each; sustained rate = alerts over the span
  the slowest console needed; lost = what a console never got.
- `paced`: 1000 alerts/s for a few seconds: publish-to-receive latency p50/p99 without queueing.
- reference: a bare PUB/SUB with ZeroMQ's defaults (SNDHWM 1000, no journal, no replay).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.alert_load import COMMAND as LOAD
from tests.support.rtsp_process import free_port

__all__ = ["add_arguments", "run"]

LOOKOUT = [sys.executable, "-m", "engine.cli.main"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench alerts`."""
    p.add_argument("--count", type=int, default=100_000, help="alerts per run")
    p.add_argument("--consoles", type=int, nargs="+", default=[1, 10], help="console counts")
    p.add_argument("--paced-seconds", type=float, default=5.0)


def _endpoints() -> tuple[str, str]:
    return f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"


def _publisher(
    tmp: Path,
    endpoint: str,
    replay: str,
    count: int,
    subscribers: int,
    raw: bool = False,
    rate: float = 0.0,
    hold: float = 60.0,
) -> subprocess.Popen[str]:
    cmd = [
        *LOAD,
        "publish",
        "--endpoint",
        endpoint,
        "--count",
        str(count),
        "--rate",
        str(rate),
        "--wait-subscribers",
        str(subscribers),
        "--hold",
        str(hold),
    ]
    if raw:
        cmd += ["--raw", "--settle", "1.0"]
    else:
        cmd += ["--replay", replay, "--journal", str(tmp / f"j{free_port()}.db")]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def _consoles(
    tmp: Path, endpoint: str, replay: str, n: int, expect: int, raw: bool = False
) -> list[dict[str, Any]]:
    reports = [tmp / f"c{free_port()}_{k}.json" for k in range(n)]
    procs = []
    for rep in reports:
        cmd = [
            *LOAD,
            "consume",
            "--endpoint",
            endpoint,
            "--expect",
            str(expect),
            "--report",
            str(rep),
            "--timeout",
            "300",
        ]
        cmd += ["--raw"] if raw else ["--replay", replay]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    for p in procs:
        assert p.stdout is not None
        p.stdout.readline()  # READY
    return [{"proc": p, "report": r} for p, r in zip(procs, reports, strict=True)]


def _collect(consoles: list[dict[str, Any]], pub: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out = []
    for c in consoles:
        c["proc"].wait(320)
        out.append(json.loads(Path(c["report"]).read_text()))
    pub.send_signal(signal.SIGTERM)
    pub.wait(30)
    return out


def fan_out(
    tmp: Path, n_consoles: int, count: int, raw: bool = False, rate: float = 0.0
) -> dict[str, Any]:
    """N consoles on one publisher; their reports combined."""
    endpoint, replay = _endpoints()
    consoles = _consoles(tmp, endpoint, replay, n_consoles, count, raw=raw)  # connected first
    pub = _publisher(tmp, endpoint, replay, count, n_consoles, raw=raw, rate=rate)
    reports = _collect(consoles, pub)
    rates = [r["rate_per_s"] for r in reports if r["rate_per_s"]]
    p50 = [r["latency_p50_ms"] for r in reports if r["latency_p50_ms"] is not None]
    p99 = [r["latency_p99_ms"] for r in reports if r["latency_p99_ms"] is not None]
    return {
        "consoles": n_consoles,
        "alerts": count,
        "lost": sum(r["lost"] for r in reports),
        "duplicates": sum(r["duplicates"] for r in reports),
        "in_order": all(r["in_order"] for r in reports),
        "rate_per_s": min(rates) if rates else None,
        "latency_p50_ms": max(p50) if p50 else None,
        "latency_p99_ms": max(p99) if p99 else None,
    }


def killed_console(tmp: Path, count: int) -> dict[str, Any]:
    """The console SIGKILLed at 20 % and restarted; what its file holds at the end."""
    endpoint, replay = _endpoints()
    out = tmp / "console.jsonl"
    console = [*LOOKOUT, "subscribe", endpoint, "--replay", replay, "--out", str(out), "--json"]
    pub = _publisher(tmp, endpoint, replay, count, 1, hold=300)
    t0 = time.monotonic()
    first = subprocess.Popen(console, stdout=subprocess.DEVNULL)
    while _lines(out) < count // 5 and time.monotonic() - t0 < 120:
        time.sleep(0.02)
    first.kill()
    first.wait(10)
    killed_at = _lines(out)
    time.sleep(1.0)
    second = subprocess.Popen(console, stdout=subprocess.DEVNULL)
    while _lines(out) < count and time.monotonic() - t0 < 300:
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    time.sleep(1.0)
    second.send_signal(signal.SIGTERM)
    second.wait(10)
    pub.send_signal(signal.SIGTERM)
    pub.wait(30)
    seqs = [json.loads(line)["seq"] for line in out.read_text().splitlines()]
    return {
        "alerts": count,
        "killed_at": killed_at,
        "received": len(seqs),
        "lost": count - len(set(seqs)),
        "duplicates": len(seqs) - len(set(seqs)),
        "in_order": seqs == sorted(seqs),
        "seconds": round(elapsed, 2),
    }


COLUMNS = (
    "consoles",
    "alerts",
    "lost",
    "duplicates",
    "in_order",
    "rate_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
)


def _round(v: Any) -> Any:
    return round(v, 2) if isinstance(v, float) else v


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every scenario, one after the other."""
    with tempfile.TemporaryDirectory(prefix="lookout-bench-alerts-") as d:
        tmp = Path(d)
        killed = killed_console(tmp, args.count)
        fans = {n: fan_out(tmp, n, args.count) for n in args.consoles}
        paced_n = int(1000 * args.paced_seconds)
        paced = fan_out(tmp, 1, paced_n, rate=1000.0)
        ref = fan_out(tmp, 1, args.count, raw=True)
        ref_paced = fan_out(tmp, 1, paced_n, raw=True, rate=1000.0)
    rows = [("killed console", {**killed, "consoles": 1})]
    rows += [(f"{n} consoles", f) for n, f in fans.items()]
    rows += [("paced 1000/s", paced), ("reference PUB/SUB", ref), ("reference paced", ref_paced)]
    table = [{"run": name, **{c: _round(row.get(c)) for c in COLUMNS}} for name, row in rows]
    one = fans.get(1) or next(iter(fans.values()))
    summary = {
        "lost": killed["lost"] + sum(f["lost"] for f in fans.values()) + paced["lost"],
        "duplicates": killed["duplicates"] + sum(f["duplicates"] for f in fans.values()),
        "in_order": killed["in_order"] and all(f["in_order"] for f in fans.values()),
        **{f"rate_per_s_{n}_consoles": f["rate_per_s"] for n, f in fans.items()},
        "latency_p50_ms": paced["latency_p50_ms"],
        "latency_p99_ms": paced["latency_p99_ms"],
        "reference_lost": ref["lost"],
        "reference_lost_pct": 100 * ref["lost"] / args.count,
        "reference_rate_per_s": ref["rate_per_s"],
        "ratio_rate_1_console": (
            one["rate_per_s"] / ref["rate_per_s"]
            if one["rate_per_s"] and ref["rate_per_s"]
            else None
        ),
        "reference_latency_p50_ms": ref_paced["latency_p50_ms"],
        "reference_latency_p99_ms": ref_paced["latency_p99_ms"],
    }
    return {"suite": "alerts", "summary": summary, "table": table}
