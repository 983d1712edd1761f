"""`lookout subscribe ENDPOINT`: print alerts from a publisher as they arrive.

With `--replay`, gaps (a slow or restarted console, a late start) are filled from the engine's
journal, so every alert arrives exactly once and in order. With `--out FILE`, alerts are
appended to FILE as JSON lines and a restarted console resumes after the last one in it.
Exit status 3 when alerts were lost to this console (the journal no longer held them; each
range was logged as found and is summarised at exit).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from engine.alerts.client import AlertClient
from engine.alerts.security import secure_client
from engine.cli.shutdown import stop_on_signals
from engine.errors import EngineError

__all__ = ["format_alert_line", "register"]


SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def register(sub: Any) -> None:
    """Add the subcommand."""
    p = sub.add_parser("subscribe", help="print alerts from a Lookout publisher")
    p.add_argument("endpoint", help="publisher endpoint, e.g. tcp://127.0.0.1:5556")
    p.add_argument("--replay", help="the engine's replay endpoint: fill every gap from it")
    p.add_argument(
        "--out",
        type=Path,
        help="append alerts to this JSON-lines file; resume after its last alert when restarted",
    )
    p.add_argument(
        "--from-start", action="store_true", help="with --replay: the whole journal first"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--count", type=int, help="exit after this many alerts")
    p.add_argument("--topic", action="append", default=[], help="topic prefix (repeatable)")
    p.add_argument(
        "--kind", action="append", default=[], help="event kind, e.g. dumping (repeatable)"
    )
    p.add_argument("--agency", help="only what this agency is responsible for (config routing)")
    p.add_argument("--sensor", action="append", default=[], help="source id (repeatable)")
    p.add_argument("--severity", choices=list(SEVERITY_RANK), help="at least this severe")
    p.add_argument("--server-key", type=Path, help="the engine's public key (CURVE)")
    p.add_argument("--key", type=Path, help="this console's .key_secret file (CURVE)")
    p.add_argument("--timeout", type=float, help="fail if no alert arrives for this many seconds")
    p.add_argument(
        "--replay-timeout",
        type=float,
        default=5.0,
        help="seconds one replay request may take before it is asked again (default 5)",
    )
    p.set_defaults(func=run)


def topics_for(args: argparse.Namespace) -> list[str]:
    """Topic prefixes from --topic, --agency and --kind (server-side filtering)."""
    head = f"@{args.agency}." if args.agency else ""
    topics = [f"{head}{k}." for k in args.kind] or ([head] if head else [])
    return [*args.topic, *topics]


def wanted(msg: dict[str, Any], args: argparse.Namespace) -> bool:
    """--sensor and --severity (filtered here: topics cannot express them)."""
    d = msg.get("data", {})
    if args.sensor and not set(args.sensor) & set(d.get("sensors", [])):
        return False
    rank = SEVERITY_RANK.get(str(d.get("severity")), 0)
    return not args.severity or rank >= SEVERITY_RANK[args.severity]


def resume_point(out: Path) -> tuple[str, int] | None:
    """(epoch, seq) of the last complete alert in `out`; a torn last line is cut off."""
    if not out.exists():
        return None
    data = out.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):  # killed mid-write: drop the partial line, it will be fetched again
        with out.open("r+b") as fh:
            fh.truncate(end)
    lines = data[:end].splitlines()
    if not lines:
        return None
    last = json.loads(lines[-1])
    return str(last["epoch"]), int(last["seq"])


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
    phase = f"{d.get('phase')}/{d['stage']}" if d.get("stage") else d.get("phase")
    pos = d.get("position")
    where = f" at {pos['lat']:.6f},{pos['lon']:.6f}" if pos else ""
    return (
        f"#{msg.get('seq')} {msg.get('time')} {d.get('site')}/{','.join(d.get('sensors', []))} "
        f"{d.get('kind')} {phase} [{d.get('severity')}] zone={d.get('zone')} "
        f"t={d.get('stream_pts_s', 0):.2f}s{where} objects: {what}"
    )


def run(args: argparse.Namespace) -> int:
    """Receive and print until --count alerts, Ctrl-C/SIGTERM, or --timeout."""
    if args.count is not None and args.count < 1:
        raise EngineError(f"--count: expected a positive number, got {args.count}")
    if bool(args.server_key) != bool(args.key):
        raise EngineError("--server-key and --key go together (CURVE)")
    after: tuple[str | None, int] | None = resume_point(args.out) if args.out else None
    if after is None and args.from_start:
        after = (None, 0)
    if after is not None and not args.replay:
        raise EngineError("resuming (--out with alerts in it, or --from-start) needs --replay")
    if not 0.1 <= args.replay_timeout <= 3600:
        raise EngineError(
            f"--replay-timeout: expected 0.1..3600 seconds, got {args.replay_timeout}"
        )
    stop = threading.Event()
    stop_on_signals(stop)
    secure = secure_client(args.server_key, args.key) if args.key else None
    try:
        client = AlertClient(
            args.endpoint,
            args.replay,
            topics_for(args),
            after=after,
            secure=secure,
            replay_timeout_s=args.replay_timeout,
        )
    except zmq.ZMQError as exc:
        raise EngineError(f"cannot subscribe to {args.endpoint}: {exc.strerror}") from None
    out = args.out.open("a", encoding="utf-8") if args.out else None
    received = 0
    last = time.monotonic()
    try:
        while not stop.is_set():
            got = client.recv(0.2)
            if got is None:
                if args.timeout is not None and time.monotonic() - last > args.timeout:
                    raise EngineError(f"no alert from {args.endpoint} within {args.timeout} s")
                continue
            last = time.monotonic()
            msg = got.alert
            if not wanted(msg, args):
                continue
            line = json.dumps(msg, separators=(",", ":"))
            if out is not None:
                out.write(line + "\n")
                out.flush()
            sys.stdout.write((line if args.json else format_alert_line(msg)) + "\n")
            sys.stdout.flush()
            received += 1
            if args.count is not None and received >= args.count:
                break
    finally:
        if out is not None:
            out.close()
        client.close()
        if client.lost:  # each was logged as it was found; the summary goes last
            sys.stderr.write(
                f"lookout subscribe: {client.unrecoverable} ranges of alerts lost to this "
                f"console (the journal no longer holds them): "
                f"{'; '.join(map(str, client.lost[-20:]))}\n"
            )
    return 3 if client.lost else 0  # a script sees that this console's record has a hole
