"""`lookout bench SUITE ... --json OUT`: run a benchmark suite from bench/."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the subcommand with one sub-subcommand per suite."""
    from bench import SUITES

    p = sub.add_parser("bench", help="run a benchmark suite")
    suites = p.add_subparsers(dest="suite", required=True, metavar="SUITE")
    for name, module_name in SUITES.items():
        module = importlib.import_module(module_name)
        sp = suites.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sp)
        sp.add_argument("--json", type=Path, help="write the result as JSON here")
        sp.set_defaults(func=run, module=module)


def run(args: argparse.Namespace) -> int:
    """Run the suite, print its table, write its JSON."""
    from bench.report import format_table, machine, write_json

    result = args.module.run(args)
    result["machine"] = machine()
    print(format_table(result.get("table", [])))
    print("summary: " + ", ".join(f"{k}={_fmt(v)}" for k, v in result["summary"].items()))
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}")
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)
