"""`lookout sim render SCENARIO -o DIR`: render a scenario to video, telemetry and ground truth."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add `sim render` and `sim check`."""
    p = sub.add_parser("sim", help="the scenario simulator")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    r = verbs.add_parser("render", help="render a scenario file")
    r.add_argument("scenario", type=Path, help="scenario YAML (see configs/scenarios/)")
    r.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    r.add_argument("--seed", type=int, help="override the scenario's seed")
    r.add_argument(
        "--frames",
        type=int,
        nargs="?",
        const=1,
        default=0,
        metavar="EVERY",
        help="also write every EVERY-th frame as an image with YOLO labels (default 1)",
    )
    r.add_argument("--max-frames", type=int, help="stop after this many frames")
    r.set_defaults(func=render)
    c = verbs.add_parser("check", help="validate scenario files")
    c.add_argument("scenario", type=Path, nargs="+")
    c.set_defaults(func=check)


def check(args: argparse.Namespace) -> int:
    """Validate each scenario; print one line per file."""
    from engine.sim import load_scenario

    for path in args.scenario:
        sc = load_scenario(path)
        print(f"{path}: OK ({sc.name}, {sc.sensor.type}, {len(sc.incidents)} incidents)")
    return 0


def render(args: argparse.Namespace) -> int:
    """Render and print where everything went."""
    from engine.sim import load_scenario, render_scenario

    if args.frames < 0 or (args.max_frames is not None and args.max_frames < 1):
        raise ConfigError("--frames and --max-frames must be positive")
    scenario = load_scenario(args.scenario)

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty() and (done % 15 == 0 or done == total):
            sys.stderr.write(f"\rrendering {scenario.name}: {done}/{total} frames")
            sys.stderr.flush()

    result = render_scenario(
        scenario,
        args.out,
        seed=args.seed,
        frames_every=args.frames,
        max_frames=args.max_frames,
        progress=progress,
    )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    print(
        f"{result.frames} frames in {result.seconds:.1f} s "
        f"({result.frames / max(result.seconds, 1e-9):.1f} frames/s)"
    )
    print(f"video: {result.video}")
    if result.srt:
        print(f"telemetry: KLV inside {result.video.name}, SRT {result.srt}")
    print(f"truth: {result.truth}")
    return 0
