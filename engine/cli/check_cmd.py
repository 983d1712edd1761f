"""`lookout check CONFIG`: validate a config file and explain every problem.

Besides the schema, it runs what `lookout run` derives from the config before any frame is read
(calibration fits, the rules' class names when the config lists them), so a config `check`
passes is not refused by `run` at config level.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.config import Config, DroneSourceConfig, FileSourceConfig, load_config
from engine.errors import ConfigError

__all__ = ["derived_problems", "missing_files", "register"]


def register(sub: Any) -> None:
    """Add the subcommand."""
    p = sub.add_parser("check", help="validate a config file")
    p.add_argument("config", type=Path, help="YAML config file")
    p.set_defaults(func=run)


def missing_files(cfg: Config) -> list[str]:
    """Input files the config names that do not exist, as `field: path` lines."""
    problems = []
    if not cfg.detector.model.is_file():
        problems.append(f"detector.model: file not found: {cfg.detector.model}")
    for i, s in enumerate(cfg.sources):
        files = {"path": s.path} if isinstance(s, FileSourceConfig) else {}
        if isinstance(s, DroneSourceConfig):
            files = {"url": Path(s.url)} if s.is_file else {}
            files |= {"srt": s.srt} if s.srt else {}
        for field, path in files.items():
            if not path.is_file():
                problems.append(f"sources[{i}].{field}: file not found: {path}")
    return problems


def derived_problems(cfg: Config) -> list[str]:
    """What the runtime would refuse while building from `cfg` (no model, camera or socket
    involved): calibrations that fit no plane or lack the site origin, and rule classes unknown
    to a detector whose `class_names` the config gives."""
    from engine.geo.positions import build_locators
    from engine.rules import build_rules

    problems = []
    try:
        build_locators(cfg)
    except ConfigError as exc:
        problems.append(str(exc))
    if cfg.detector.class_names:
        try:
            build_rules(cfg, tuple(cfg.detector.class_names))
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def run(args: argparse.Namespace) -> int:
    """Validate; print a one-line summary, or raise ConfigError listing the problems."""
    cfg = load_config(args.config)
    problems = missing_files(cfg) + derived_problems(cfg)
    if problems:
        raise ConfigError("\n".join(f"{args.config}: {p}" for p in problems))
    print(
        f"{args.config}: OK ({len(cfg.sources)} sources, {len(cfg.zones)} zones, "
        f"{len(cfg.rules)} rules, {len(cfg.outputs)} outputs)"
    )
    return 0
