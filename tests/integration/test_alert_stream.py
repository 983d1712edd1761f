"""The alert stream end to end: journal, replay, gap-filling console, routing, encryption."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import LOOKOUT, free_port

LOAD = [sys.executable, "-m", "bench.alert_load"]


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait_lines(path: Path, n: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _lines(path) < n:
        assert time.monotonic() < deadline, f"{_lines(path)} of {n} lines after {timeout_s} s"
        time.sleep(0.05)


def test_100k_alerts_survive_a_console_killed_and_restarted_mid_stream(tmp_path: Path) -> None:
    n = 100_000
    endpoint, replay = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "console.jsonl"
    console = [*LOOKOUT, "subscribe", endpoint, "--replay", replay, "--out", str(out), "--json"]
    pub = subprocess.Popen([*LOAD, "publish", "--endpoint", endpoint, "--replay", replay,
                            "--journal", str(tmp_path / "j.db"), "--count", str(n),
                            "--hold", "120"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    first = subprocess.Popen(console, stdout=subprocess.DEVNULL)
    try:
        _wait_lines(out, 20_000, 60)
        first.kill()  # SIGKILL mid-stream: maybe mid-line
        first.wait(10)
        killed_at = _lines(out)
        time.sleep(1.0)  # alerts go on without it
        second = subprocess.Popen(console, stdout=subprocess.DEVNULL)
        try:
            _wait_lines(out, n, 180)
            time.sleep(1.5)  # nothing more (no duplicates) may arrive
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(10)
    finally:
        pub.send_signal(signal.SIGTERM)
        pub.wait(30)
    assert killed_at < n, "the console was killed after the stream ended: no test"
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    seqs = [a["seq"] for a in alerts]
    assert seqs == list(range(1, n + 1))  # every alert exactly once, in order
    assert len({a["epoch"] for a in alerts}) == 1
