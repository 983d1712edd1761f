"""Load for the alert stream: a publisher of N alerts as fast as possible, and counting consoles.

    python tests/support/alert_load.py publish --endpoint E --replay R --count N --journal DB \
        [--hold]
    python tests/support/alert_load.py consume --endpoint E [--replay R] --expect N \
        --report OUT.json

(`COMMAND` is that command line for a subprocess, whatever the current folder.)

The publisher uses the engine's own stamper and ZeroMQ publisher (journal first, then send),
waits for `--wait-subscribers`, publishes, prints `DONE <n> <seconds>`, and with `--hold` keeps
serving replays and heartbeats until SIGTERM. A consumer counts what it receives with
`AlertClient`, measures publish-to-receive latency from the stamp each alert carries
(`attributes.sent_ns`, the publisher's monotonic clock: one clock per machine on Linux), and
writes a report. `--raw` runs both sides as a bare PUB/SUB with ZeroMQ defaults: the reference.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

__all__ = ["COMMAND", "load_event", "main"]

COMMAND = [sys.executable, str(Path(__file__).resolve())]
"""Runs this file as its own process (the engine must be importable there, as it is here)."""


def load_event(k: int) -> Any:
    """A small, valid alert event (one object) numbered k."""
    from engine.types import Event

    return Event(
        event_id=f"load-{k}",
        kind="load",
        phase="start",
        source_id="cam1",
        rule_id="load",
        pts_s=k / 30,
        capture_ns=time.monotonic_ns(),
        xyxy=np.array([[10, 20, 110, 220]], np.float32),
        score=np.array([0.9], np.float32),
        labels=("person",),
        track_id=np.array([k], np.int64),
        zone_id="zone",
        attributes={"sent_ns": time.monotonic_ns()},
    )


def _pace(t0: float, k: int, rate: float) -> None:
    """With a rate, wait until alert k is due (0: flat out)."""
    if rate:
        delay = t0 + k / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _publish(a: argparse.Namespace) -> None:
    from engine.alerts import AlertStamper, ZmqPublisher
    from engine.config import ZmqOutputConfig

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if a.raw:  # the same alerts, encoded the same way, on a bare PUB: no journal, no replay
        from engine.alerts.wire import alert_body

        ctx = zmq.Context()
        sock = ctx.socket(zmq.PUB)  # ZeroMQ defaults: SNDHWM 1000
        sock.bind(a.endpoint)
        time.sleep(a.settle)
        stamper = AlertStamper("site")
        t0 = time.monotonic()
        for k in range(1, a.count + 1):
            _pace(t0, k - 1, a.rate)
            alert = stamper.stamp(load_event(k))
            sock.send_multipart([alert.topic.encode(), alert_body(alert)])
        print(f"DONE {a.count} {time.monotonic() - t0:.3f}", flush=True)
        stop.wait(a.hold)
        sock.close(0)
        ctx.term()
        return
    ctx = zmq.Context()
    stamper = AlertStamper("site")
    cfg = ZmqOutputConfig(
        endpoint=a.endpoint,
        replay_endpoint=a.replay,
        journal=a.journal,
        wait_subscribers=a.wait_subscribers,
        wait_timeout_s=30,
        snapshots=False,
    )
    pub = ZmqPublisher(cfg, ctx, stamper.epoch, "site")
    pub.start()
    print(f"READY {stamper.epoch}", flush=True)
    pub.wait_for_subscribers()
    time.sleep(a.settle)
    t0 = time.monotonic()
    k = 0
    while k < a.count:
        _pace(t0, k, a.rate)
        size = 1 if a.rate else min(a.batch, a.count - k)
        batch = [stamper.stamp(load_event(k + i + 1)) for i in range(size)]
        pub.send_many(batch)
        k += len(batch)
        pub.tick()
    print(f"DONE {a.count} {time.monotonic() - t0:.3f}", flush=True)
    end = time.monotonic() + a.hold
    while not stop.is_set() and time.monotonic() < end:
        pub.tick()
        stop.wait(0.05)
    pub.close()
    ctx.term()


def _consume(a: argparse.Namespace) -> None:
    from engine.alerts.client import AlertClient

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ctx = zmq.Context()
    seqs: list[int] = []
    lat_us: list[float] = []
    first = last = None
    if a.raw:
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(a.endpoint)
        recv = lambda t: sock.recv_multipart() if sock.poll(int(t * 1000)) else None  # noqa: E731
        print("READY", flush=True)
        deadline = time.monotonic() + a.timeout
        while len(seqs) < a.expect and time.monotonic() < deadline and not stop.is_set():
            parts = recv(0.5)
            if parts is None:
                if seqs and time.monotonic() - (last or 0) > a.idle:
                    break
                continue
            now = time.monotonic_ns()
            msg = json.loads(parts[1])
            seqs.append(msg["seq"])
            lat_us.append((now - msg["data"]["attributes"]["sent_ns"]) / 1000)
            first = first or time.monotonic()
            last = time.monotonic()
        sock.close(0)
    else:
        client = AlertClient(a.endpoint, a.replay, context=ctx)
        print("READY", flush=True)
        deadline = time.monotonic() + a.timeout
        while len(seqs) < a.expect and time.monotonic() < deadline and not stop.is_set():
            got = client.recv(0.5)
            if got is None:
                continue
            now = time.monotonic_ns()
            seqs.append(got.alert["seq"])
            if not got.replayed:
                lat_us.append((now - got.alert["data"]["attributes"]["sent_ns"]) / 1000)
            first = first or time.monotonic()
            last = time.monotonic()
        client.close()
    ctx.term()
    span = (last - first) if first and last and last > first else float("nan")
    report = {
        "received": len(seqs),
        "unique": len(set(seqs)),
        "in_order": seqs == sorted(seqs),
        "lost": a.expect - len(set(seqs)),
        "duplicates": len(seqs) - len(set(seqs)),
        "rate_per_s": len(seqs) / span if span else None,
        "latency_p50_ms": float(np.percentile(lat_us, 50)) / 1000 if lat_us else None,
        "latency_p99_ms": float(np.percentile(lat_us, 99)) / 1000 if lat_us else None,
    }
    Path(a.report).write_text(json.dumps(report))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("publish")
    pp.add_argument("--endpoint", required=True)
    pp.add_argument("--replay")
    pp.add_argument("--journal", type=Path)
    pp.add_argument("--count", type=int, default=100_000)
    pp.add_argument("--batch", type=int, default=200)
    pp.add_argument("--rate", type=float, default=0.0, help="alerts per second (0: flat out)")
    pp.add_argument("--wait-subscribers", type=int, default=1)
    pp.add_argument("--settle", type=float, default=0.2, help="pause after subscribers joined")
    pp.add_argument("--hold", type=float, default=0.0, help="keep serving this long after")
    pp.add_argument("--raw", action="store_true")
    pc = sub.add_parser("consume")
    pc.add_argument("--endpoint", required=True)
    pc.add_argument("--replay")
    pc.add_argument("--expect", type=int, required=True)
    pc.add_argument("--report", required=True)
    pc.add_argument("--timeout", type=float, default=120)
    pc.add_argument("--idle", type=float, default=3.0, help="raw: stop after this long idle")
    pc.add_argument("--raw", action="store_true")
    a = p.parse_args(argv)
    (_publish if a.cmd == "publish" else _consume)(a)
    sys.exit(0)


if __name__ == "__main__":
    main()
