"""Video sources: each yields `Frame`s with stream timestamps. One source kind per module.

`file` replays recorded footage; `rtsp` reads a live camera and `drone` a drone feed with its
telemetry (both reconnect forever and report their health).
"""

from __future__ import annotations

from typing import Any, Protocol

from engine.config import FileSourceConfig, SourceConfig
from engine.sources.file import FileSource, SourceStats, TruncatedFile
from engine.sources.live import HealthCallback, LiveSource, LiveStats
from engine.types import Frame

__all__ = [
    "FileSource",
    "HealthCallback",
    "LiveSource",
    "LiveStats",
    "Source",
    "SourceStats",
    "TruncatedFile",
    "build_source",
]


class Source(Protocol):
    """What the runner needs of a source."""

    id: str
    cfg: Any

    @property
    def fps(self) -> float: ...
    @property
    def size(self) -> tuple[int, int]: ...

    def open(self) -> None: ...
    def read(self) -> Frame | None: ...
    def close(self) -> None: ...
    @property
    def dropped(self) -> int: ...
    @property
    def queued(self) -> int: ...


def build_source(cfg: SourceConfig, on_health: HealthCallback | None = None) -> Source:
    """The source a config names (not opened yet), reporting health (connection states,
    `source.lagging`) to `on_health`."""
    if isinstance(cfg, FileSourceConfig):
        return FileSource(cfg, on_health=on_health)
    return LiveSource(cfg, on_health)
