"""Pre/post-event clips: a ring buffer of each source's recent frames, written out around the
start of every incident so that an operator sees what led to it and what followed.

Frames are kept scaled down and at a reduced rate (`clips.fps`); a clip is an H.264 MP4,
`<clips dir>/<source>/<event id>.mp4`, holding `pre_s` seconds before the start and `post_s`
after. Only the newest `keep` clips of each source are kept on disk. A clip that cannot be
written is logged and dropped; the stream goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from engine.config import ClipsConfig
from engine.state import state_dir
from engine.types import Event, Frame

__all__ = ["ClipRecorder", "with_clip"]

log = logging.getLogger(__name__)


@dataclass
class _Clip:
    path: Path
    until_pts: float
    container: av.container.OutputContainer
    stream: av.video.stream.VideoStream
    frames: int = 0


class ClipRecorder:
    """Ring buffer and clip writers for one source (used from that source's thread only).

    Args:
        cfg: clip settings.
        source_id: the source (part of each clip's name).
    """

    def __init__(self, cfg: ClipsConfig, source_id: str) -> None:
        self.cfg = cfg
        self.source_id = source_id
        self.dir = (cfg.dir or state_dir() / "clips") / source_id  # one folder per source
        self.dir.mkdir(parents=True, exist_ok=True)
        self._ring: deque[tuple[float, npt.NDArray[np.uint8]]] = deque()
        self._open: list[_Clip] = []
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
            except (OSError, av.FFmpegError, ValueError) as exc:
                log.error("clip %s cut short: %s", clip.path, exc)
                self._drop(clip)

    def name(self, event_id: str) -> str:
        """The clip's name relative to the clips folder: `<source>/<event id>.mp4`."""
        return f"{self.source_id}/{event_id}.mp4"

    def start(self, event_id: str, pts_s: float) -> str:
        """Begin a clip for an event starting at `pts_s`; returns the clip's name. A clip that
        cannot be written (disk full, no encoder) is logged and dropped; the stream goes on."""
        path = self.dir / f"{event_id}.mp4"
        try:
            container = av.open(str(path), "w")
            stream = container.add_stream(
                "libx264", rate=Fraction(self.cfg.fps).limit_denominator(1000)
            )
            h, w = self._ring[-1][1].shape[:2] if self._ring else (360, 640)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            clip = _Clip(path, pts_s + self.cfg.post_s, container, stream)
            for _, image in self._ring:
                self._write(clip, image)
        except (OSError, av.FFmpegError, ValueError) as exc:
            log.error("clip %s not recorded: %s", path, exc)
            return self.name(event_id)
        self._open.append(clip)
        return self.name(event_id)

    def _write(self, clip: _Clip, image: npt.NDArray[np.uint8]) -> None:
        if image.shape[1] != clip.stream.width or image.shape[0] != clip.stream.height:
            image = np.asarray(cv2.resize(image, (clip.stream.width, clip.stream.height)))
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        for packet in clip.stream.encode(frame):
            clip.container.mux(packet)
        clip.frames += 1

    def _finish(self, clip: _Clip) -> None:
        for packet in clip.stream.encode():
            clip.container.mux(packet)
        clip.container.close()
        self._open.remove(clip)
        self._prune()

    def _drop(self, clip: _Clip) -> None:
        self._open.remove(clip)
        with contextlib.suppress(OSError, av.FFmpegError, ValueError):
            clip.container.close()

    def _prune(self) -> None:
        def mtime(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except OSError:  # removed meanwhile
                return 0.0

        clips = sorted(self.dir.glob("*.mp4"), key=mtime)
        for old in clips[: max(0, len(clips) - self.cfg.keep)]:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        """Finish the clips being recorded (the stream ended: they are shorter)."""
        for clip in list(self._open):
            try:
                self._finish(clip)
            except (OSError, av.FFmpegError, ValueError) as exc:
                log.error("clip %s not finished: %s", clip.path, exc)
                self._drop(clip)


def with_clip(event: Event, clips: ClipRecorder) -> Event:
    """A start event gets a clip begun for it and names it (attribute `clip`); later phases
    of the incident name the same file."""
    name = clips.name(event.event_id)
    if event.phase == "start":
        name = clips.start(event.event_id, event.pts_s)
    clip = {"file": name, "pre_s": clips.cfg.pre_s, "post_s": clips.cfg.post_s}
    return dataclasses.replace(event, attributes={**event.attributes, "clip": clip})
