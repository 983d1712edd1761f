"""`lookout console --web ENDPOINT`: a web page of live alerts (list, snapshot, map)."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

from engine.alerts.security import secure_client
from engine.cli.shutdown import stop_on_signals
from engine.console import WebConsole
from engine.errors import EngineError

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the subcommand."""
    p = sub.add_parser("console", help="serve a web page showing live alerts")
    p.add_argument("endpoint", help="the engine's alert endpoint, e.g. tcp://127.0.0.1:5556")
    p.add_argument("--web", action="store_true", required=True, help="serve the web console")
    p.add_argument("--replay", help="the engine's replay endpoint (fills gaps)")
    p.add_argument("--topic", action="append", default=[], help="topic prefix (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default loopback)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080; 0: any)")
    p.add_argument("--server-key", type=Path, help="the engine's public key (CURVE)")
    p.add_argument("--key", type=Path, help="this console's .key_secret file (CURVE)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM."""
    if bool(args.server_key) != bool(args.key):
        raise EngineError("--server-key and --key go together (CURVE)")
    secure = secure_client(args.server_key, args.key) if args.key else None
    console = WebConsole(args.endpoint, args.replay, args.topic, secure, args.host, args.port)
    stop = threading.Event()
    stop_on_signals(stop)

    def stop_when_asked() -> None:
        stop.wait()
        console.stop()

    threading.Thread(target=stop_when_asked, daemon=True).start()
    try:
        console.run()
    except OSError as exc:
        raise EngineError(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from None
    return 0
