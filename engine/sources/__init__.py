"""Video sources: each yields `Frame`s with stream timestamps. One source kind per module."""

from __future__ import annotations

from engine.config import FileSourceConfig
from engine.sources.file import FileSource, SourceStats

__all__ = ["SOURCES", "FileSource", "SourceStats", "build_source"]

SOURCES: dict[str, type[FileSource]] = {"file": FileSource}


def build_source(cfg: FileSourceConfig) -> FileSource:
    """The source a config names (`type` -> class); not opened yet."""
    return SOURCES[cfg.type](cfg)
