"""`lookout bench SUITE ... --json OUT`: run a benchmark suite from bench/ of a source checkout.

The benchmarks are not installed with the package: they need the repository (its tests/support,
footage, the peers' environments). The command finds the checkout beside the `engine` package it
was imported from (`engine.resources.source_checkout()`: the editable install of `make setup`,
or `PYTHONPATH` pointing at a clone) and imports `bench` from there; installed from a wheel, it
says in one line that it needs a source checkout.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.resources import source_checkout

__all__ = ["bench_checkout", "register"]


def bench_checkout() -> Path | None:
    """The source checkout whose bench/ the command runs, or None when there is none."""
    root = source_checkout()
    return root if root is not None and (root / "bench" / "__init__.py").is_file() else None


def register(sub: Any) -> None:
    """Add the subcommand with one sub-subcommand per suite (from a checkout)."""
    p = sub.add_parser("bench", help="run a benchmark suite (from a source checkout)")
    root = bench_checkout()
    if root is None:
        p.description = "The benchmarks run from a source checkout only; this is an install."
        p.add_argument("suite", nargs=argparse.REMAINDER, help="the suite and its options")
        p.set_defaults(func=_no_checkout)
        return
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # bench/ and tests/support/ of this checkout
    from bench import SUITES

    suites = p.add_subparsers(dest="suite", required=True, metavar="SUITE")
    for name, module_name in SUITES.items():
        module = importlib.import_module(module_name)
        sp = suites.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(sp)
        sp.add_argument("--json", type=Path, help="write the result as JSON here")
        sp.set_defaults(func=run, module=module)


def _no_checkout(args: argparse.Namespace) -> int:
    raise EngineError(
        "`lookout bench` needs a source checkout of Lookout (git clone, then `make setup`): "
        "the benchmarks in bench/ are not installed with the package"
    )


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
