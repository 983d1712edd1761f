"""Where Lookout keeps state between runs (alert journals, TensorRT engine caches)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["state_dir"]


def state_dir() -> Path:
    """$LOOKOUT_STATE_DIR, else ~/.local/state/lookout (not created here)."""
    base = os.environ.get("LOOKOUT_STATE_DIR")
    return Path(base) if base else Path.home() / ".local/state/lookout"
