"""Pre/post-event clips: a ring buffer of each source's recent frames, written out around the
start of every incident so that an operator sees what led to it and what followed.

Frames are kept scaled down and at a reduced rate (`clips.fps`); a clip is an H.264 MP4,
`<clips dir>/<source>/<event id>.mp4`, holding `pre_s` seconds before the start and `post_s`
after. Only the newest `keep` clips of each source are kept on disk.

Clips fail alone: a folder that cannot be made or written, a full disk or an encoder error never
stops the stream nor its alerts. A clip is written under a `.part` name and takes its real name
only once finished and not empty, so no file an alert names is ever a 0-byte or broken one; a
clip is not begun when the disk has no room for it. Each alert says what became of its clip
(`status`: `recording`, `written` or `failed` with the `reason`, and then no `file`). The first
failure is one `sink.failing` health event, the next clip written one `sink.recovered`; every
incident tries again, so a folder that becomes writable works again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from engine.config import ClipsConfig
from engine.record.h264 import H264Writer
from engine.record.output_health import OutputHealth
from engine.state import state_dir
from engine.types import ClipRef, Event, Frame, HealthEvent

__all__ = ["MIN_FREE_BYTES", "ClipRecorder", "with_clip"]

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 64 * 1024  # a clip is not begun with less room than this on its disk
ROOM_FACTOR = 2  # ... nor with less than this many times the largest clip written so far
STATES_KEPT = 1000  # clip states remembered for later phases of their incidents
_ERRORS = (OSError, av.FFmpegError, ValueError)


@dataclass
class _Clip:
    event_id: str
    part: Path  # written here, renamed to `path` once finished
    path: Path
    until_pts: float
    video: H264Writer
    frames: int = 0


class ClipRecorder:
    """Ring buffer and clip writers for one source (used from that source's thread only).

    Nothing is written, not even the folder, before the first clip: a constructor cannot fail.

    Args:
        cfg: clip settings.
        source_id: the source (part of each clip's name).
        on_health: receives `sink.failing` / `sink.recovered` (sink `clips`).
        min_free_bytes: a clip is not begun with less room on its disk.
    """

    def __init__(
        self,
        cfg: ClipsConfig,
        source_id: str,
        on_health: Callable[[HealthEvent], None] | None = None,
        min_free_bytes: int = MIN_FREE_BYTES,
    ) -> None:
        self.cfg = cfg
        self.source_id = source_id
        self.dir = (cfg.dir or state_dir() / "clips") / source_id  # one folder per source
        self.health = OutputHealth("clips", source_id, on_health)
        self._min_free = min_free_bytes
        self._largest = 0  # bytes of the largest clip written
        self._ring: deque[tuple[float, npt.NDArray[np.uint8]]] = deque()
        self._open: list[_Clip] = []
        self._states: OrderedDict[str, ClipRef] = OrderedDict()
        self._last_kept = -1e9

    def _small(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        h, w = image.shape[:2]
        width = min(self.cfg.max_width, w) // 2 * 2
        height = max(2, round(h * width / w) // 2 * 2)
        return np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))

    def add(self, frame: Frame) -> None:
        """Offer the next frame: kept at the clip rate, written to clips being recorded."""
        if frame.pts_s - self._last_kept < 1.0 / self.cfg.fps - 1e-6:
            return
        self._last_kept = frame.pts_s
        small = self._small(frame.image)
        self._ring.append((frame.pts_s, small))
        while self._ring and frame.pts_s - self._ring[0][0] > self.cfg.pre_s:
            self._ring.popleft()
        for clip in list(self._open):
            try:
                self._write(clip, small)
                if frame.pts_s >= clip.until_pts:
                    self._finish(clip)
            except _ERRORS as exc:
                self._fail(clip, f"cut short: {_why(exc)}")

    def name(self, event_id: str) -> str:
        """The clip's name relative to the clips folder: `<source>/<event id>.mp4`."""
        return f"{self.source_id}/{event_id}.mp4"

    def start(self, event_id: str, pts_s: float) -> str | None:
        """Begin a clip for an event starting at `pts_s`: its name, or None when it cannot be
        recorded (folder not writable, disk full, no encoder): logged, reported once per
        episode, and the stream goes on."""
        path = self.dir / f"{event_id}.mp4"
        part = path.with_name(path.name + ".part")
        h, w = self._ring[-1][1].shape[:2] if self._ring else (360, 640)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._check_room()
            video = H264Writer(part, self.cfg.fps, (w, h), "mp4")
        except _ERRORS as exc:
            self._failed_state(event_id, f"not recorded: {_why(exc)}")
            return None
        try:
            clip = _Clip(event_id, part, path, pts_s + self.cfg.post_s, video)
            for _, image in self._ring:
                self._write(clip, image)
        except _ERRORS as exc:
            video.abort()
            part.unlink(missing_ok=True)
            self._failed_state(event_id, f"not recorded: {_why(exc)}")
            return None
        self._open.append(clip)
        self._remember(event_id, ClipRef("recording"))
        return self.name(event_id)

    def state(self, event_id: str) -> ClipRef:
        """What became of an event's clip: status `recording` or `written` (with `file`), or
        `failed` (with `reason`, no `file`)."""
        pre_s, post_s = self.cfg.pre_s, self.cfg.post_s
        known = self._states.get(event_id)
        if known is None:  # begun before a worker restart, or long forgotten: ask the disk
            path = self.dir / f"{event_id}.mp4"
            if _size(path) > 0:
                return ClipRef("written", self.name(event_id), pre_s, post_s)
            return ClipRef("failed", None, pre_s, post_s, reason="no clip recorded")
        file = None if known.status == "failed" else self.name(event_id)
        return dataclasses.replace(known, file=file, pre_s=pre_s, post_s=post_s)

    def _check_room(self) -> None:
        need = max(self._min_free, ROOM_FACTOR * self._largest) * (len(self._open) + 1)
        free = shutil.disk_usage(self.dir).free
        if free < need:
            raise OSError(f"disk full: {free} bytes free, a clip needs about {need}")

    def _write(self, clip: _Clip, image: npt.NDArray[np.uint8]) -> None:
        clip.video.write(image)
        clip.frames += 1

    def _finish(self, clip: _Clip) -> None:
        """Flush and close the clip; it takes its name only if it was written whole."""
        clip.video.close()
        self._open.remove(clip)
        size = _size(clip.part)
        if size <= 0:
            clip.part.unlink(missing_ok=True)
            self._failed_state(clip.event_id, "cut short: nothing was written (disk full?)")
            return
        os.replace(clip.part, clip.path)
        self._largest = max(self._largest, size)
        self._remember(clip.event_id, ClipRef("written", size_bytes=size))
        self.health.ok()
        self._prune()

    def _fail(self, clip: _Clip, reason: str) -> None:
        if clip in self._open:
            self._open.remove(clip)
        clip.video.abort()
        with contextlib.suppress(OSError):
            clip.part.unlink(missing_ok=True)
        self._failed_state(clip.event_id, reason)

    def _failed_state(self, event_id: str, reason: str) -> None:
        log.debug("source %s: clip of %s %s", self.source_id, event_id, reason)
        self._remember(event_id, ClipRef("failed", reason=reason))
        self.health.failed(reason)

    def _remember(self, event_id: str, state: ClipRef) -> None:
        self._states[event_id] = state
        self._states.move_to_end(event_id)
        while len(self._states) > STATES_KEPT:
            self._states.popitem(last=False)

    def _prune(self) -> None:
        def mtime(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:  # removed meanwhile
                return 0.0

        try:
            clips = sorted(self.dir.glob("*.mp4"), key=mtime)
            for old in clips[: max(0, len(clips) - self.cfg.keep)]:
                old.unlink(missing_ok=True)
            # parts no recorder of ours is writing: a run or worker that died mid-clip
            writing = {clip.part for clip in self._open}
            for part in self.dir.glob("*.mp4.part"):
                if part not in writing:
                    part.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("source %s: old clips not pruned: %s", self.source_id, _why(exc))

    def close(self) -> None:
        """Finish the clips being recorded (the stream ended: they are shorter)."""
        for clip in list(self._open):
            try:
                self._finish(clip)
            except _ERRORS as exc:
                self._fail(clip, f"not finished: {_why(exc)}")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, av.FFmpegError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__


def with_clip(event: Event, clips: ClipRecorder) -> Event:
    """A start event gets a clip begun for it; every phase of the incident says what became of
    that clip (`Event.clip`: `file` when there is one, `status`, `pre_s`, `post_s`)."""
    if event.phase == "start":
        clips.start(event.event_id, event.pts_s)
    return dataclasses.replace(event, clip=clips.state(event.event_id))
