"""The alert journal under faults: a full disk, a damaged or foreign file, a crash mid-incident.

Real faults only: a tmpfs that fills up, bytes overwritten in a real SQLite file, a real engine
process killed with SIGKILL; real XPUB/SUB sockets on 127.0.0.1 see what a console would.
"""

from __future__ import annotations

import json
import os
from contextlib import closing
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from engine.alerts.journal import Journal, JournalRow
from engine.alerts.schema import validate_message
from engine.config import Config
from engine.errors import PublishError
from engine.runtime.outlet import AlertOutlet
from engine.types import Event
from tests.conftest import LOOKOUT, free_port, make_video, make_yolox_model, moving_square_frames


def _config(outputs: list[dict[str, Any]]) -> Config:
    return Config.model_validate(
        {
            "site": "site",
            "sources": [{"type": "file", "id": "cam1", "path": "unused.mp4"}],
            "detector": {"model": "unused.onnx"},
            "outputs": outputs,
        }
    )


def _event(k: int, snapshot_bytes: int = 0) -> Event:
    rng = np.random.default_rng(k)
    return Event(
        event_id=f"inc-{k}",
        kind="zone_presence",
        phase="start",
        source_id="cam1",
        rule_id="presence",
        pts_s=k / 10,
        capture_ns=time.monotonic_ns(),
        xyxy=np.array([[10, 20, 110, 220]], np.float32),
        score=np.array([0.9], np.float32),
        labels=("person",),
        track_id=np.array([k], np.int64),
        zone_id="zone",
        frame_size=(640, 480),
        snapshot=rng.bytes(snapshot_bytes) if snapshot_bytes else None,
    )


class _Console:
    """A SUB socket subscribed to everything, as `lookout subscribe` would be."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.alerts: list[dict[str, Any]] = []
        self.beats: list[dict[str, Any]] = []

    def drain(self, idle_s: float = 1.0) -> None:
        while self.sock.poll(int(idle_s * 1000)):
            frames = self.sock.recv_multipart()
            msg = json.loads(frames[1])
            validate_message(msg)
            if msg["type"] == "lookout.engine.heartbeat":
                self.beats.append(msg["data"])
            else:
                self.alerts.append(msg)

    def kinds(self) -> list[str]:
        return [a["data"]["kind"] for a in self.alerts]

    def close(self) -> None:
        self.sock.close(0)


def test_full_journal_disk_still_publishes_every_alert_and_says_so(
    small_disk: Callable[[int], Path],
) -> None:
    disk = small_disk(1_000_000)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * 300_000)  # freed later: a disk that gets space again
    log_disk = small_disk(16_384)  # the alerts file fills up too, and fails alone
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    cfg = _config(
        [
            {"type": "zmq", "endpoint": endpoint, "journal": str(disk / "j.db"),
             "heartbeat_s": 0.05, "wait_subscribers": 1},
            {"type": "jsonl", "path": str(log_disk / "alerts.jsonl")},
        ]
    )  # fmt: skip
    ctx = zmq.Context()
    outlet = AlertOutlet(cfg, ctx, merge=False)
    console = _Console(ctx, endpoint)
    try:
        outlet.wait_for_subscribers()
        k = 0

        def batch() -> None:
            nonlocal k
            outlet.publish([_event(k + i, snapshot_bytes=8000) for i in range(4)])
            k += 4
            console.drain(0.05)

        while "journal.failing" not in console.kinds() and k < 400:
            batch()
        assert "journal.failing" in console.kinds(), "the journal never filled: no test"
        for _ in range(5):
            batch()  # still failing: said once, not per batch
        filler.unlink()
        for _ in range(3):
            batch()
        time.sleep(0.1)
        outlet.tick()
        console.drain()
        head = outlet.stamper.seq
    finally:
        console.close()
        outlet.close()
        ctx.term()
    seqs = [a["seq"] for a in console.alerts]
    assert seqs == list(range(1, head + 1))  # every alert produced reached the live console
    kinds = console.kinds()
    assert kinds.count("journal.failing") == 1 and kinds.count("journal.recovered") == 1
    assert kinds.index("journal.failing") < kinds.index("journal.recovered")
    failing = console.alerts[kinds.index("journal.failing")]
    assert failing["data"]["severity"] == "critical" and "full" in failing["data"]["reason"]
    not_durable = [a["seq"] for a in console.alerts if not a["durable"]]
    assert not_durable and all(a["durable"] for a in console.alerts[: not_durable[0] - 1])
    assert console.alerts[-1]["durable"], "writes succeed again once the disk has space"
    assert console.beats[-1]["head_seq"] == head and console.beats[-1]["journal_ok"]
    # the journal holds exactly the durable alerts
    with closing(_reader(disk / "j.db")) as db:
        kept = {int(r[0]) for r in db.execute("SELECT seq FROM alerts")}
    assert kept == {a["seq"] for a in console.alerts if a["durable"]}
    # the alerts file failed alone: a health event, whole lines only, the stream went on
    assert kinds.count("sink.failing") == 1
    lines = (log_disk / "alerts.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])


def _reader(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
