"""Recorded footage as a source: any file FFmpeg demuxes (MP4, MPEG-TS, MKV, GIF, ...).

Frames come with their stream timestamps. At `rate: native` the file is replayed at its own pace,
like a camera; at `rate: max` as fast as the consumer reads. With `loop`, timestamps keep counting
up across loops so that downstream time never goes back. A corrupt packet is counted, logged and
skipped; the stream goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import av.error
import numpy as np
import numpy.typing as npt

from engine.config import FileSourceConfig
from engine.errors import SourceError
from engine.types import Frame

__all__ = ["FileSource", "SourceStats", "decode_or_skip"]

log = logging.getLogger(__name__)


def decode_or_skip(packet: av.Packet, source_id: str, stats: Any) -> list[Any]:
    """The frames of one packet; a corrupt packet is counted (`stats.corrupt_packets`), logged
    and skipped: the stream goes on."""
    try:
        return list(packet.decode())
    except av.error.InvalidDataError as exc:
        stats.corrupt_packets += 1
        log.warning("source %s: corrupt packet skipped: %s", source_id, exc)
        return []


@dataclass(slots=True)
class SourceStats:
    """Counters of one source, for health reports."""

    frames: int = 0
    corrupt_packets: int = 0
    loops: int = 0


class FileSource:
    """Reads frames from a video file.

    Args:
        cfg: the source's configuration.

    Raises:
        SourceError: (from `open`) the file is missing, not a video, or has no video stream.

    Example:
        >>> src = FileSource(FileSourceConfig(id="cam1", path=Path("clip.mp4")))  # doctest: +SKIP
        >>> src.open(); frame = src.read()
    """

    def __init__(self, cfg: FileSourceConfig) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.stats = SourceStats()
        self._frames: Iterator[Frame] | None = None
        self._closed = threading.Event()
        self.fps: float = 0.0
        self.size: tuple[int, int] = (0, 0)

    def open(self) -> None:
        """Open the file and check it holds video; raises SourceError naming the file."""
        container = self._open_container()
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.size = (stream.codec_context.width, stream.codec_context.height)
        container.close()
        self._frames = self._generate()

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the file (or once closed)."""
        if self._frames is None:
            raise SourceError(f"source {self.id}: read() before open()")
        if self._closed.is_set():
            return None
        return next(self._frames, None)

    def close(self) -> None:
        """Stop: a `read` waiting for its frame's time returns None. Safe from any thread."""
        self._closed.set()

    @property
    def _nominal_step_s(self) -> float:
        """Seconds between frames by the stream's rate (25 fps if it states none)."""
        return 1.0 / self.fps if self.fps else 0.04

    def _open_container(self) -> av.container.InputContainer:
        path = self.cfg.path
        if not path.is_file():
            raise SourceError(f"source {self.id}: video file not found: {path}")
        try:
            container = av.open(str(path), mode="r")
        except av.error.FFmpegError as exc:
            raise SourceError(
                f"source {self.id}: cannot read video {path}: {exc.strerror or exc}"
            ) from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"source {self.id}: no video stream in {path}")
        return container

    def _generate(self) -> Iterator[Frame]:
        seq = 0
        offset_s = 0.0  # added to pts so that looped replays keep counting up
        t0_wall: float | None = None
        t0_pts = 0.0
        while not self._closed.is_set():
            last_pts, step = None, 0.0
            for pts, image in self._decode_once():
                if self._closed.is_set():
                    return
                stream_pts = pts + offset_s
                if self.cfg.rate == "native":
                    if t0_wall is None:
                        t0_wall, t0_pts = time.monotonic(), stream_pts
                    delay = (stream_pts - t0_pts) - (time.monotonic() - t0_wall)
                    if delay > 0 and self._closed.wait(delay):
                        return
                if last_pts is not None:
                    step = pts - last_pts
                last_pts = pts
                yield Frame(self.id, seq, stream_pts, time.monotonic_ns(), image)
                seq += 1
                self.stats.frames = seq
                if self.cfg.max_frames is not None and seq >= self.cfg.max_frames:
                    return
            if not self.cfg.loop or last_pts is None:
                return
            self.stats.loops += 1
            offset_s += last_pts + (step or self._nominal_step_s)

    def _decode_once(self) -> Iterator[tuple[float, npt.NDArray[np.uint8]]]:
        """(pts seconds from the file's start, BGR image) for each frame of one pass."""
        container = self._open_container()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start = None
            fallback_step = self._nominal_step_s
            last = -fallback_step
            for packet in container.demux(stream):
                for frame in decode_or_skip(packet, self.id, self.stats):
                    t = frame.time
                    if t is None:  # some containers leave gaps; keep time moving
                        t = last + fallback_step
                    if start is None:
                        start = t
                    last = t
                    image: npt.NDArray[np.uint8] = frame.to_ndarray(format="bgr24")
                    yield t - start, image
        except av.error.FFmpegError as exc:
            raise SourceError(f"source {self.id}: error reading {self.cfg.path}: {exc}") from None
        finally:
            container.close()
