"""`lookout subscribe ENDPOINT`: print alerts from a publisher as they arrive."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import zmq

from engine.alerts import AlertSubscriber
from engine.cli.shutdown import stop_on_signals
from engine.errors import EngineError

__all__ = ["format_alert_line", "register"]


def register(sub: Any) -> None:
    """Add the subcommand."""
    p = sub.add_parser("subscribe", help="print alerts from a Lookout publisher")
    p.add_argument("endpoint", help="publisher endpoint, e.g. tcp://127.0.0.1:5556")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--count", type=int, help="exit after this many alerts")
    p.add_argument(
        "--topic", action="append", default=[], help="topic prefix to receive (repeatable)"
    )
    p.add_argument("--timeout", type=float, help="fail if no alert arrives for this many seconds")
    p.set_defaults(func=run)


def format_alert_line(msg: dict[str, Any]) -> str:
    """One human-readable line for an alert."""
    d = msg.get("data", {})
    if str(d.get("kind", "")).startswith("source."):  # a source's health
        return (
            f"#{msg.get('seq')} {msg.get('time')} {d.get('site')}/{','.join(d.get('sensors', []))} "
            f"{d.get('kind')} [{d.get('severity')}] {d.get('reason')}"
        )
    labels: dict[str, int] = {}
    for obj in d.get("objects", []):
        labels[obj["label"]] = labels.get(obj["label"], 0) + 1
    what = ", ".join(f"{n}x {label}" for label, n in labels.items()) or "-"
    return (
        f"#{msg.get('seq')} {msg.get('time')} {d.get('site')}/{','.join(d.get('sensors', []))} "
        f"{d.get('kind')} {d.get('phase')} [{d.get('severity')}] zone={d.get('zone')} "
        f"t={d.get('stream_pts_s', 0):.2f}s objects: {what}"
    )


def run(args: argparse.Namespace) -> int:
    """Receive and print until --count alerts, Ctrl-C/SIGTERM, or --timeout."""
    if args.count is not None and args.count < 1:
        raise EngineError(f"--count: expected a positive number, got {args.count}")
    stop = threading.Event()
    stop_on_signals(stop)
    context = zmq.Context()
    try:
        sub = AlertSubscriber(args.endpoint, args.topic, context)
    except zmq.ZMQError as exc:
        context.term()
        raise EngineError(f"cannot subscribe to {args.endpoint}: {exc.strerror}") from None
    received = 0
    last = time.monotonic()
    try:
        while not stop.is_set():
            got = sub.recv(0.2)
            if got is None:
                if args.timeout is not None and time.monotonic() - last > args.timeout:
                    raise EngineError(f"no alert from {args.endpoint} within {args.timeout} s")
                continue
            last = time.monotonic()
            _topic, msg = got
            line = json.dumps(msg, separators=(",", ":")) if args.json else format_alert_line(msg)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            received += 1
            if args.count is not None and received >= args.count:
                break
    finally:
        sub.close()
        context.term()
    return 0
