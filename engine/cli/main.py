"""The `lookout` command: parses arguments and turns user errors into one clear line.

User errors (EngineError) print `lookout: error: ...` on stderr and exit non-zero without a
traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from engine import __version__
from engine.cli import (
    bench_cmd,
    calibrate_cmd,
    check_cmd,
    console_cmd,
    demo_cmd,
    keys_cmd,
    models_cmd,
    run_cmd,
    sim_cmd,
    subscribe_cmd,
)
from engine.errors import EngineError
from engine.redact import RedactingFilter, redact

__all__ = ["build_parser", "main"]

COMMANDS = (
    demo_cmd,
    run_cmd,
    check_cmd,
    subscribe_cmd,
    console_cmd,
    keys_cmd,
    models_cmd,
    sim_cmd,
    calibrate_cmd,
    bench_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="lookout",
        description="Streaming sensor-fusion engine for camera and drone analytics.",
    )
    parser.add_argument("--version", action="version", version=f"lookout {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log on stderr (default INFO)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lookout` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:  # every record, whatever logger made it
        handler.addFilter(RedactingFilter())
    try:
        return int(args.func(args))
    except EngineError as exc:
        first, *rest = redact(str(exc)).splitlines() or [type(exc).__name__]
        print(f"lookout: error: {first}", file=sys.stderr)
        for line in rest:
            print(f"lookout: error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (`lookout subscribe ... | head`): not an error of ours.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
