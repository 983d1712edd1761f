"""Live feeds that survive outages: RTSP cameras and drone feeds (MPEG-TS with KLV, or SRT).

A capture thread connects with PyAV (open and read timeouts always set, so no call hangs),
decodes, and hands frames to a small buffer. When the engine is slower than the camera the oldest
frame is dropped and counted (latest-frame policy), so latency never grows. When the feed fails
the thread reconnects forever with exponential backoff and jitter, also when the very first
connect fails. A watchdog thread tells a silent camera (connected, no packets for the read
timeout: `source.stalled`) from a slow engine (frames dropped: `source.lagging`); connection loss
is `source.offline`, the first frames `source.online`, frames after an outage `source.recovered`.
Credentials are redacted from every log line and message.

Drone feeds carry telemetry (KLV in the stream, or a DJI SRT sidecar): each frame gets the
telemetry at its timestamp (`engine.sources.frame_telemetry`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.error

from engine.config import DroneSourceConfig, RtspSourceConfig
from engine.errors import SourceError
from engine.redact import redact
from engine.sources.backoff import Backoff
from engine.sources.buffer import FrameBuffer
from engine.sources.damage import PacketDamage
from engine.sources.file import decode_or_skip
from engine.sources.frame_telemetry import Captured, FrameTelemetry
from engine.sources.lag import LagReporter
from engine.types import Frame, HealthEvent, HealthKind

__all__ = ["HealthCallback", "LiveSource", "LiveStats"]

log = logging.getLogger(__name__)

HealthCallback = Callable[[HealthEvent], None]
WATCHDOG_PERIOD_S = 0.1
LiveConfig = RtspSourceConfig | DroneSourceConfig


@dataclass(slots=True)
class LiveStats:
    """Counters of one live source, for health reports and benchmarks."""

    frames: int = 0  # delivered to the engine
    captured: int = 0  # decoded from the feed
    dropped: int = 0  # dropped because the engine was behind
    connects: int = 0
    failed_connects: int = 0
    corrupt_packets: int = 0
    telemetry_packets: int = 0
    telemetry_errors: int = 0  # packets rejected (checksum, truncation, ...)
    telemetry_unknown_tags: int = 0
    telemetry_damaged_items: int = 0
    state: str = "connecting"


class LiveSource:
    """A live RTSP camera or drone feed (or a recorded drone file with its telemetry).

    Args:
        cfg: the source's configuration.
        on_health: called (from the source's threads) with each health event.
        start_frame: the `position` this stream resumes at (a source moved to another node:
            a live feed simply goes on, counting from there).

    Raises:
        SourceError: (from `open`) only for what retrying cannot fix: a missing recorded file.

    Example:
        >>> cfg = RtspSourceConfig(type="rtsp", id="gate", url="rtsp://cam/1")
        >>> src = LiveSource(cfg)
        >>> src.open(); frame = src.read()  # doctest: +SKIP
    """

    def __init__(
        self, cfg: LiveConfig, on_health: HealthCallback | None = None, start_frame: int = 0
    ) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.start_frame = start_frame
        self.stats = LiveStats()
        self.fps: float = 0.0
        self.size: tuple[int, int] = (0, 0)
        self.url = redact(cfg.url)  # for messages
        self._on_health = on_health
        self._is_file = isinstance(cfg, DroneSourceConfig) and cfg.is_file
        self._buffer: FrameBuffer[Captured] = FrameBuffer(
            cfg.buffer_frames if not self._is_file else 8, drop_oldest=not self._is_file
        )
        self._closed = threading.Event()
        self._ended = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._last_packet_ns = 0
        self._outage_since_ns: int | None = None
        self._ever_online = False
        self._seq = 0
        self._pts_offset = 0.0
        self._last_pts_s = -1.0
        self._lag = LagReporter(cfg.id, None)  # reported through _emit (logged, guarded)
        self._damage = PacketDamage(cfg.id)  # corrupt packets: logged at a bounded rate
        self._t_open = time.monotonic()

    # --- public API ---------------------------------------------------------------------------

    def open(self) -> None:
        """Start capturing in the background; returns at once (the feed may still be away)."""
        if self._is_file and not Path(self.cfg.url).is_file():
            raise SourceError(f"source {self.id}: video file not found: {self.cfg.url}")
        if isinstance(self.cfg, DroneSourceConfig) and self.cfg.srt and not self.cfg.srt.is_file():
            raise SourceError(f"source {self.id}: SRT sidecar not found: {self.cfg.srt}")
        self._t_open = time.monotonic()
        for target, name in ((self._capture_loop, "capture"), (self._watchdog, "watchdog")):
            t = threading.Thread(target=target, name=f"lookout-{name}-{self.id}", daemon=True)
            t.start()
            self._threads.append(t)

    def read(self) -> Frame | None:
        """The next frame (waiting while the feed is away); None once closed, or at the end of
        a recorded file."""
        while True:
            item = self._buffer.get(0.2)
            if item is not None:
                break
            if self._closed.is_set() or (self._ended.is_set() and not len(self._buffer)):
                return None
        pts_s = self._monotonic_pts(item.pts_s)
        frame = Frame(self.id, self._seq, pts_s, item.capture_ns, item.image, item.telemetry)
        self._seq += 1
        self.stats.frames = self._seq
        return frame

    @property
    def position(self) -> int:
        """Of the last frame read, counted from `start_frame` (start_frame - 1 before any)."""
        return self.start_frame + self._seq - 1

    def close(self, join_timeout_s: float = 0.0) -> None:
        """Stop capturing; a waiting `read` returns None. Safe from any thread."""
        self._closed.set()
        self._buffer.close()
        for t in self._threads:
            t.join(join_timeout_s)

    @property
    def queued(self) -> int:
        """Frames captured and waiting for the engine."""
        return len(self._buffer)

    @property
    def dropped(self) -> int:
        """Frames dropped because the engine was behind."""
        return self._buffer.dropped

    # --- capture ------------------------------------------------------------------------------

    def _capture_loop(self) -> None:
        cfg = self.cfg
        backoff = Backoff(cfg.backoff_initial_s, cfg.backoff_max_s)
        while not self._closed.is_set():
            try:
                container = self._connect()
            except (av.error.FFmpegError, OSError) as exc:
                self.stats.failed_connects += 1
                self._lost("source.offline", f"cannot connect to {self.url}: {_why(exc)}")
                self._closed.wait(backoff.next_delay())
                continue
            self.stats.connects += 1
            delivered_before = self.stats.captured
            reason = "end of stream"
            try:
                self._session(container)
            except (av.error.ExitError, TimeoutError):  # connected, but silent
                self._lost(
                    "source.stalled", f"no packets from {self.url} for {cfg.read_timeout_s:g} s"
                )
                reason = f"no packets for {cfg.read_timeout_s:g} s"
            except (av.error.FFmpegError, OSError) as exc:
                reason = f"stream error: {_why(exc)}"
            except Exception:  # a bug must not end capture for good: log and reconnect
                log.exception("source %s: capture failed", self.id)
                reason = "internal error"
            finally:
                container.close()
            if self._is_file:
                break
            if self.stats.captured > delivered_before:
                backoff.reset()
            if not self._closed.is_set():
                self._lost("source.offline", f"lost {self.url}: {reason}")
                self._closed.wait(backoff.next_delay())
        self._ended.set()

    def _connect(self) -> av.container.InputContainer:
        cfg = self.cfg
        options: dict[str, str] = {}
        url = cfg.url
        # FFmpeg's socket timeout fires twice on a silent feed: the first releases the frame
        # its parser holds, the second fails the read. Half the read timeout each keeps the
        # failure within it; PyAV's own timeout is the backstop for any other blocking call.
        socket_us = str(int(cfg.read_timeout_s * 0.45e6))
        if url.startswith(("rtsp://", "rtsps://")):
            options = {"rtsp_transport": cfg.transport, "timeout": socket_us}
        elif url.startswith("udp://"):  # MPEG-TS: probe briefly, and find the KLV stream
            options = {
                "timeout": socket_us,
                "overrun_nonfatal": "1",
                "fifo_size": "1000000",
                "probesize": "1000000",
                "analyzeduration": "1500000",
            }
        if self._is_file:
            return av.open(url, mode="r")
        return av.open(
            url, mode="r", options=options, timeout=(cfg.open_timeout_s, cfg.read_timeout_s + 1.0)
        )

    def _session(self, container: av.container.InputContainer) -> None:
        """Read one connection until it ends; frames go to the buffer."""
        if not container.streams.video:
            raise av.error.InvalidDataError(0, "no video stream")
        video = container.streams.video[0]
        rate = video.average_rate or video.guessed_rate
        self.fps = float(rate) if rate else self.fps
        self.size = (video.codec_context.width, video.codec_context.height)
        klv = [s for s in container.streams.data]
        cfg = self.cfg
        drone = isinstance(cfg, DroneSourceConfig)
        telemetry = FrameTelemetry(
            self.id,
            self.stats,
            bool(klv) if drone else None,
            cfg.telemetry_max_gap_s if isinstance(cfg, DroneSourceConfig) else 1.0,
            cfg.srt if isinstance(cfg, DroneSourceConfig) else None,
        )
        start_pts: float | None = None
        t0_wall: float | None = None
        self._last_packet_ns = time.monotonic_ns()
        for packet in container.demux(video, *klv):
            if self._closed.is_set():
                return
            self._last_packet_ns = time.monotonic_ns()
            if packet.stream.type == "data":
                if packet.size and packet.pts is not None and packet.time_base is not None:
                    telemetry.add_klv(float(packet.pts * packet.time_base), bytes(packet))
                    self._deliver_ready(telemetry)
                continue
            for vf in decode_or_skip(packet, self.id, self.stats, self._damage):
                assert isinstance(vf, av.VideoFrame)
                t_abs = vf.time if vf.time is not None else 0.0
                if start_pts is None:
                    start_pts = t_abs
                t = t_abs - start_pts
                if self._is_file and self.cfg.rate == "native":  # type: ignore[union-attr]
                    t0_wall = t0_wall if t0_wall is not None else time.monotonic() - t
                    delay = t - (time.monotonic() - t0_wall)
                    if delay > 0 and self._closed.wait(delay):
                        return
                image = vf.to_ndarray(format="bgr24")
                telemetry.add_frame(Captured(t, t_abs, time.monotonic_ns(), image, {}))  # type: ignore[arg-type]
                self.stats.captured += 1
                self._deliver_ready(telemetry)
        self._deliver_ready(telemetry, final=True)

    def _deliver_ready(self, telemetry: FrameTelemetry, final: bool = False) -> None:
        for item in telemetry.ready(final):
            self._deliver(item)

    def _deliver(self, item: Captured) -> None:
        if self._is_file:
            while not self._buffer.put(item, timeout_s=0.5):
                if self._closed.is_set():
                    return
        else:
            self._buffer.put(item)
        self._online()
        self._maybe_lagging()

    # --- health -------------------------------------------------------------------------------

    def _emit(self, kind: HealthKind, reason: str, **attributes: Any) -> None:
        event = HealthEvent(kind, self.id, time.monotonic_ns(), redact(reason), attributes)
        level = logging.WARNING if kind in ("source.offline", "source.stalled") else logging.INFO
        log.log(level, "source %s: %s: %s", self.id, kind, event.reason)
        if self._on_health is not None:
            try:
                self._on_health(event)
            except Exception:
                log.exception("source %s: health callback failed", self.id)

    def _online(self) -> None:
        with self._lock:
            state = self.stats.state
            if state == "online":
                return
            self.stats.state = "online"
            outage = self._outage_since_ns
            self._outage_since_ns = None
            first = not self._ever_online
            self._ever_online = True
        if first:
            self._emit(
                "source.online",
                f"frames from {self.url}",
                fps=self.fps,
                width=self.size[0],
                height=self.size[1],
            )
        else:
            outage_s = (time.monotonic_ns() - outage) / 1e9 if outage else 0.0
            self._emit(
                "source.recovered",
                f"frames again from {self.url} after {outage_s:.1f} s",
                outage_s=round(outage_s, 3),
                was=state,
            )

    def _lost(self, kind: HealthKind, reason: str) -> None:
        with self._lock:
            if self.stats.state == kind.removeprefix("source."):
                return
            # after a stall, losing that connection is no news; failing to reconnect is
            stalled = self.stats.state == "stalled" and kind == "source.offline"
            if stalled and not reason.startswith("cannot connect"):
                return
            self.stats.state = kind.removeprefix("source.")
            if self._outage_since_ns is None:
                self._outage_since_ns = time.monotonic_ns()
        self._emit(kind, reason, read_timeout_s=self.cfg.read_timeout_s)

    def _watchdog(self) -> None:
        timeout_ns = int(self.cfg.read_timeout_s * 1e9)
        while not self._closed.wait(WATCHDOG_PERIOD_S):
            if self._ended.is_set():
                return
            if self.stats.state != "online":
                continue
            silent_ns = time.monotonic_ns() - self._last_packet_ns
            if silent_ns >= timeout_ns:
                self._lost(
                    "source.stalled", f"no packets from {self.url} for {silent_ns / 1e9:.1f} s"
                )

    def _maybe_lagging(self) -> None:
        dropped = self._buffer.dropped
        self.stats.dropped = dropped
        if (event := self._lag.update(dropped, "engine behind the camera")) is not None:
            self._emit(event.kind, event.reason, **event.attributes)

    def _monotonic_pts(self, session_pts: float) -> float:
        """Stream time that never goes back, across reconnects (each session restarts at 0)."""
        pts = session_pts + self._pts_offset
        if pts <= self._last_pts_s:
            step = 1.0 / self.fps if self.fps else 0.04
            self._pts_offset = max(self._last_pts_s + step, time.monotonic() - self._t_open)
            self._pts_offset -= session_pts
            pts = session_pts + self._pts_offset
        self._last_pts_s = pts
        return pts


def _why(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return redact(str(text))
