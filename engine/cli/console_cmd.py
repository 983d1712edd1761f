"""`lookout console --web ENDPOINT`: a web page of live alerts (list, snapshot, map).

    lookout console hash-password > console.pass      # asks for the password (or reads stdin)
    lookout console --web tcp://127.0.0.1:5556 --password-file console.pass

Only a browser that logged in with that password sees alerts. Off loopback (`--host`) the page
is served over TLS (`--tls-cert`, `--tls-key`); `--insecure-http` serves it in clear anyway.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import threading
from pathlib import Path
from typing import Any

from engine.alerts.security import secure_client
from engine.cli.shutdown import stop_on_signals
from engine.console import WebConsole
from engine.console.auth import hash_password, load_password_hash
from engine.console.web import WebAccess, is_loopback, tls_context
from engine.errors import ConfigError, EngineError

__all__ = ["register"]

HASH_VERB = "hash-password"
MIN_PASSWORD = 8


def register(sub: Any) -> None:
    """Add the subcommand."""
    p = sub.add_parser(
        "console",
        help="serve a web page showing live alerts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "endpoint",
        help=f"the engine's alert endpoint, e.g. tcp://127.0.0.1:5556; or '{HASH_VERB}' to "
        "print the hash of a password for --password-file",
    )
    p.add_argument("--web", action="store_true", help="serve the web console")
    p.add_argument("--replay", help="the engine's replay endpoint (fills gaps)")
    p.add_argument("--topic", action="append", default=[], help="topic prefix (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default loopback)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080; 0: any)")
    p.add_argument("--server-key", type=Path, help="the engine's public key (CURVE)")
    p.add_argument("--key", type=Path, help="this console's .key_secret file (CURVE)")
    p.add_argument(
        "--password-file",
        type=Path,
        help=f"file holding the login password's hash (`lookout console {HASH_VERB}`)",
    )
    p.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve HTTPS")
    p.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        help="another name browsers reach this console by (repeatable; DNS-rebinding check)",
    )
    p.add_argument(
        "--session-hours", type=float, default=12.0, help="a login lasts this long (default 12)"
    )
    p.add_argument(
        "--insecure-http",
        action="store_true",
        help="serve plain HTTP off loopback anyway (the password and alerts cross in clear)",
    )
    p.set_defaults(func=run)


def _hash_password() -> int:
    """Ask for a password twice (or read one line from stdin) and print its hash."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise EngineError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise EngineError(f"password: expected at least {MIN_PASSWORD} characters")
    print(hash_password(password))
    return 0


def _access(args: argparse.Namespace) -> WebAccess:
    if args.password_file is None:
        raise ConfigError(
            f"--password-file: required (make one with `lookout console {HASH_VERB} > FILE`)"
        )
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    if not 0.01 <= args.session_hours <= 24 * 30:
        raise ConfigError(f"--session-hours: expected 0.01..720, got {args.session_hours}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port: expected 0..65535, got {args.port}")
    tls = tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    if tls is None and not is_loopback(args.host) and not args.insecure_http:
        raise ConfigError(
            f"--host {args.host} is reachable from other machines: serve over TLS "
            "(--tls-cert and --tls-key), bind to 127.0.0.1, or accept clear text with "
            "--insecure-http"
        )
    return WebAccess(
        password_hash=load_password_hash(args.password_file),
        tls=tls,
        allow_hosts=tuple(args.allow_host),
        session_ttl_s=args.session_hours * 3600.0,
        insecure_http=args.insecure_http,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM (or print a password hash)."""
    if args.endpoint == HASH_VERB:
        return _hash_password()
    if not args.web:
        raise EngineError("console: give --web (the web console is the only one so far)")
    if bool(args.server_key) != bool(args.key):
        raise EngineError("--server-key and --key go together (CURVE)")
    access = _access(args)
    secure = secure_client(args.server_key, args.key) if args.key else None
    console = WebConsole(
        args.endpoint, args.replay, args.topic, secure, args.host, args.port, access=access
    )
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        console.start()
    except OSError as exc:
        raise EngineError(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from None
    try:
        while not stop.wait(0.5) and not console.wait(0):
            pass
    finally:
        console.close()
    if console.failure is not None:
        raise EngineError(f"the web console stopped: {console.failure}")
    return 0
