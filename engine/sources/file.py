"""Recorded footage as a source: any file FFmpeg demuxes (MP4, MPEG-TS, MKV, GIF, ...).

Frames come with their stream timestamps. An ingest thread decodes ahead into a small bounded
buffer, so decoding overlaps with inference. At `rate: native` the file is replayed at its own
pace, like a camera, and when the engine falls behind the oldest buffered frame is dropped and
counted (`when_behind: auto` = `drop_oldest`): latency stays bounded, as with a live camera. At
`rate: max` the reader waits for the engine and nothing is lost (`auto` = `wait`). With `loop`,
timestamps keep counting up across loops so that downstream time never goes back. A corrupt
packet is counted and skipped, and logged at a bounded rate (one line, then at most one per
10 s, and a summary per pass); the stream goes on. A file that ends before its header says it
should (cut short by a copy or a full disk) ends the source with `TruncatedFile`, naming the
frames read and expected: its frames are all processed, and the run says it was not whole.

Nothing is opened before `open`, which the runtime calls in the source's own thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import av
import av.error
import numpy as np
import numpy.typing as npt

from engine.config import FileSourceConfig
from engine.errors import SourceError
from engine.sources.buffer import FrameBuffer
from engine.sources.damage import PacketDamage
from engine.sources.lag import LagReporter
from engine.types import Frame, HealthEvent

__all__ = ["FileSource", "SourceStats", "TruncatedFile", "decode_or_skip"]

log = logging.getLogger(__name__)

LATE_FRAMES = 2  # at native rate, a frame decoded this many frame times late is dropped


class TruncatedFile(SourceError):
    """A file ended before its header said it would: `attributes` holds the frames read and
    expected."""

    def __init__(self, message: str, frames_read: int, frames_expected: int) -> None:
        super().__init__(message)
        self.attributes = {"frames_read": frames_read, "frames_expected": frames_expected}


def decode_or_skip(
    packet: av.Packet, source_id: str, stats: Any, damage: PacketDamage | None = None
) -> list[Any]:
    """The frames of one packet; a corrupt packet is counted (`stats.corrupt_packets`) and
    skipped, the stream goes on. It is logged through `damage` (rate-limited), or, without
    one, on a line of its own."""
    try:
        return list(packet.decode())
    except av.error.InvalidDataError as exc:
        stats.corrupt_packets += 1
        if damage is not None:
            damage.corrupt(exc)
        else:
            log.warning("source %s: corrupt packet skipped: %s", source_id, exc)
        return []


# position in the file (frames decoded before it, all loops), stream pts, capture ns, BGR image
_Decoded = tuple[int, float, int, "npt.NDArray[np.uint8]"]


@dataclass(slots=True)
class SourceStats:
    """Counters of one source, for health reports."""

    frames: int = 0  # delivered to the engine
    decoded: int = 0
    corrupt_packets: int = 0
    loops: int = 0


class FileSource:
    """Reads frames from a video file.

    Args:
        cfg: the source's configuration.
        start_frame: resume here (frames before it are decoded but not delivered; the first
            frame delivered has this `seq`), as a source moved to another node does.

    Raises:
        SourceError: (from `open`) the file is missing, not a video, or has no video stream.

    Example:
        >>> src = FileSource(FileSourceConfig(id="cam1", path=Path("clip.mp4")))  # doctest: +SKIP
        >>> src.open(); frame = src.read()
    """

    def __init__(
        self,
        cfg: FileSourceConfig,
        start_frame: int = 0,
        on_health: Callable[[HealthEvent], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self._lag = LagReporter(cfg.id, on_health)  # source.lagging when frames are dropped
        self.start_frame = start_frame
        self.stats = SourceStats()
        self._fps: float | None = None  # from the header, once read
        self._size: tuple[int, int] = (0, 0)
        self._damage = PacketDamage(cfg.id)
        policy = cfg.when_behind
        if policy == "auto":
            policy = "drop_oldest" if cfg.rate == "native" else "wait"
        self.drops_when_behind = policy == "drop_oldest"
        self._buffer: FrameBuffer[_Decoded] = FrameBuffer(cfg.buffer_frames, self.drops_when_behind)
        self._closed = threading.Event()
        self._ended = threading.Event()
        self._error: SourceError | None = None
        self._thread: threading.Thread | None = None
        self._seq = start_frame
        self._late = 0  # frames decoded too late to be shown at native rate
        self.position = start_frame - 1  # of the last frame read (frames dropped count too)

    def open(self) -> None:
        """Check the file holds video and start decoding ahead; raises SourceError naming it."""
        if self._thread is not None:
            raise SourceError(f"source {self.id}: opened twice")
        container = self._open_container()
        self._read_header(container)
        container.close()
        self._thread = threading.Thread(
            target=self._ingest, name=f"lookout-ingest-{self.id}", daemon=True
        )
        self._thread.start()

    @property
    def fps(self) -> float:
        """The file's frame rate by its header (0.0 if it states none or cannot be read);
        before `open`, the header is read for it."""
        if self._fps is None:
            try:
                container = self._open_container()
            except SourceError:
                return 0.0
            try:
                self._read_header(container)
            finally:
                container.close()
        return self._fps or 0.0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) by the header, once opened ((0, 0) before)."""
        return self._size

    def _read_header(self, container: av.container.InputContainer) -> None:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self._fps = float(rate) if rate else 0.0
        self._size = (stream.codec_context.width, stream.codec_context.height)

    def read(self) -> Frame | None:
        """The next frame; None at the end of the file (or once closed).

        Raises:
            SourceError: the file could not be read on (said once; then None).
        """
        if self._thread is None:
            raise SourceError(f"source {self.id}: read() before open()")
        while True:
            if self._closed.is_set():
                return None
            item = self._buffer.get(0.2)
            if item is not None:
                break
            if self._ended.is_set() and not len(self._buffer):
                error, self._error = self._error, None
                if error is not None:
                    raise error
                return None
        self.position, pts_s, capture_ns, image = item
        frame = Frame(self.id, self._seq, pts_s, capture_ns, image)
        self._seq += 1
        self.stats.frames = self._seq
        return frame

    def close(self, join_timeout_s: float = 2.0) -> None:
        """Stop decoding: a waiting `read` returns None. Safe from any thread."""
        self._closed.set()
        self._buffer.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(join_timeout_s)

    @property
    def dropped(self) -> int:
        """Frames dropped because the engine (or decoding) was behind (native rate only)."""
        return self._buffer.dropped + self._late

    @property
    def queued(self) -> int:
        """Frames decoded and waiting for the engine."""
        return len(self._buffer)

    def _ingest(self) -> None:
        """The ingest thread: decode (paced at native rate) into the buffer until the end."""
        try:
            for item in self._generate():
                self.stats.decoded += 1
                if not self._buffer.put(item):
                    return  # closed
                if self.drops_when_behind:
                    self._report_lag()
        except SourceError as exc:
            self._error = exc
            log.error("%s", exc)
        except Exception as exc:  # a bug: the stream ends with a clear error, not silently
            log.exception("source %s: ingest failed", self.id)
            self._error = SourceError(f"source {self.id}: ingest failed: {exc!r}")
        finally:
            self._ended.set()

    def _report_lag(self) -> None:
        try:
            self._lag.update(self.dropped, "engine behind the file's own pace")
        except Exception:  # a caller's callback must not end the stream
            log.exception("source %s: health callback failed", self.id)

    @property
    def _nominal_step_s(self) -> float:
        """Seconds between frames by the stream's rate (25 fps if it states none)."""
        return 1.0 / self.fps if self.fps else 0.04

    def _open_container(self) -> av.container.InputContainer:
        path = self.cfg.path
        try:
            found = path.is_file()
        except OSError as exc:  # not only "not found": a name too long, a folder not searchable
            raise SourceError(f"source {self.id}: cannot read video {path}: {exc}") from None
        if not found:
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

    def _generate(self) -> Iterator[_Decoded]:
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
                if last_pts is not None:
                    step = pts - last_pts
                last_pts = pts
                if seq < self.start_frame:  # resuming: decoded, not delivered, not paced
                    seq += 1
                    continue
                if self.cfg.rate == "native":
                    if t0_wall is None:
                        t0_wall, t0_pts = time.monotonic(), stream_pts
                    delay = (stream_pts - t0_pts) - (time.monotonic() - t0_wall)
                    if delay > 0 and self._closed.wait(delay):
                        return
                    if self.drops_when_behind and delay < -LATE_FRAMES * self._nominal_step_s:
                        self._late += 1  # decoding itself fell behind: a camera drops it too
                        seq += 1
                        continue
                yield seq, stream_pts, time.monotonic_ns(), image
                seq += 1
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
            packets, end_s = 0, 0.0  # read so far, and the stream time they reach
            for packet in container.demux(stream):
                if packet.size:
                    packets += 1
                    if packet.pts is not None and packet.time_base is not None:
                        end_s = max(
                            end_s, float((packet.pts + (packet.duration or 0)) * packet.time_base)
                        )
                for frame in decode_or_skip(packet, self.id, self.stats, self._damage):
                    t = frame.time
                    if t is None:  # some containers leave gaps; keep time moving
                        t = last + fallback_step
                    if start is None:
                        start = t
                    last = t
                    image: npt.NDArray[np.uint8] = frame.to_ndarray(format="bgr24")
                    yield t - start, image
            self._damage.summary(str(self.cfg.path))
            self._check_whole(stream, packets, end_s)
        except av.error.FFmpegError as exc:
            self._damage.summary(str(self.cfg.path))
            raise SourceError(f"source {self.id}: error reading {self.cfg.path}: {exc}") from None
        finally:
            container.close()

    def _check_whole(self, stream: av.video.stream.VideoStream, packets: int, end_s: float) -> None:
        """Raise TruncatedFile if one pass read fewer frames (or less time) than the header
        states; a file whose header states neither passes."""
        expected = stream.frames
        if not expected and stream.duration and stream.time_base is not None:
            duration_s = float(stream.duration * stream.time_base)
            start_s = float((stream.start_time or 0) * stream.time_base)
            if end_s < start_s + duration_s - max(2 * self._nominal_step_s, 0.5):
                expected = round(duration_s * self.fps) if self.fps else 0
                raise TruncatedFile(
                    f"source {self.id}: {self.cfg.path} ends early, at {end_s - start_s:.2f} s "
                    f"of {duration_s:.2f} s (the file is truncated)",
                    packets,
                    expected,
                )
            return
        if expected and packets < expected:
            raise TruncatedFile(
                f"source {self.id}: {self.cfg.path} ends early: {packets} of {expected} frames "
                "read (the file is truncated)",
                packets,
                expected,
            )
