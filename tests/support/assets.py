"""Where the shared test assets (real models, clips, COCO128) are: the one setting for all.

`LOOKOUT_ASSETS` names the folder; by default `../shared/assets` beside the repository. They are
never part of the project (licenses): benchmarks and tests that need them say so when absent.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["assets_dir", "missing_reason"]

REPO = Path(__file__).resolve().parents[2]


def assets_dir() -> Path:
    """The assets folder (it may not exist)."""
    env = os.environ.get("LOOKOUT_ASSETS")
    return Path(env) if env else (REPO.parent / "shared" / "assets")


def missing_reason(*relative: str) -> str | None:
    """Why the named assets cannot be used, or None when all exist."""
    root = assets_dir()
    for rel in relative:
        if not (root / rel).exists():
            return f"asset {rel} not found under {root} (set LOOKOUT_ASSETS to the assets folder)"
    return None
