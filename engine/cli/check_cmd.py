"""`lookout check CONFIG`: validate a config file and explain every problem."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.config import Config, DroneSourceConfig, FileSourceConfig, load_config
from engine.errors import ConfigError

__all__ = ["missing_files", "register"]


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


def run(args: argparse.Namespace) -> int:
    """Validate; print a one-line summary, or raise ConfigError listing the problems."""
    cfg = load_config(args.config)
    problems = missing_files(cfg)
    if problems:
        raise ConfigError("\n".join(f"{args.config}: {p}" for p in problems))
    print(
        f"{args.config}: OK ({len(cfg.sources)} sources, {len(cfg.zones)} zones, "
        f"{len(cfg.rules)} rules, {len(cfg.outputs)} outputs)"
    )
    return 0
