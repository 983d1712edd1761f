"""Video sources: each yields `Frame`s with stream timestamps. One source kind per module.

`file` replays recorded footage; `rtsp` reads a live camera and `drone` a drone feed with its
telemetry (both reconnect forever and report their health).
"""

from __future__ import annotations

from typing import Protocol

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
    """What the source loop needs of a source.

    `open` starts its ingest (the only place a source starts a thread); `read` waits for the
    next frame and returns None at its end or once closed; `close` may be called from any
    thread, at any time, more than once. A source reports its own lag (`source.lagging`, see
    `engine.sources.lag`) to the health callback it was built with. `position` is where the
    stream stands, so that a source built with `resume_from=position + 1` (a source moved to
    another node) goes on after its last frame: a file's frame index (dropped frames leave
    gaps), a live feed's count from where it was opened.
    """

    id: str

    @property
    def cfg(self) -> SourceConfig: ...

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
    @property
    def position(self) -> int: ...


def build_source(
    cfg: SourceConfig, on_health: HealthCallback | None = None, resume_from: int = 0
) -> Source:
    """The source a config names (not opened yet), reporting health (connection states,
    `source.lagging`) to `on_health`, resuming at position `resume_from` (a recorded file skips
    the frames before it; a live feed goes on, counting from there)."""
    if isinstance(cfg, FileSourceConfig):
        return FileSource(cfg, resume_from, on_health)
    return LiveSource(cfg, on_health, resume_from)
