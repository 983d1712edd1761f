"""Pre/post-event clips: a ring buffer of each source's recent frames, written out around the
start of every incident so that an operator sees what led to it and what followed.

Frames are kept scaled down and at a reduced rate (`clips.fps`); a clip is an H.264 MP4 named
after the event id, holding `pre_s` seconds before the start and `post_s` after. Only the newest
`keep` clips are kept on disk.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from dataclasses import dataclass
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
        self.dir = cfg.dir or state_dir() / "clips"
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
            self._write(clip, small)
            if frame.pts_s >= clip.until_pts:
                self._finish(clip)

    def start(self, event_id: str, pts_s: float) -> str:
        """Begin a clip for an event starting at `pts_s`; returns the clip's file name."""
        name = f"{self.source_id}-{event_id}.mp4"
        path = self.dir / name
        try:
            container = av.open(str(path), "w")
            stream = container.add_stream("libx264", rate=round(self.cfg.fps))
            h, w = self._ring[-1][1].shape[:2] if self._ring else (360, 640)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        except (OSError, av.FFmpegError) as exc:
            log.error("clip %s not recorded: %s", path, exc)
            return name
        clip = _Clip(path, pts_s + self.cfg.post_s, container, stream)
        for _, image in self._ring:
            self._write(clip, image)
        self._open.append(clip)
        return name

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

    def _prune(self) -> None:
        clips = sorted(self.dir.glob(f"{self.source_id}-*.mp4"), key=lambda p: p.stat().st_mtime)
        for old in clips[: max(0, len(clips) - self.cfg.keep)]:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        """Finish the clips being recorded (the stream ended: they are shorter)."""
        for clip in list(self._open):
            self._finish(clip)


def with_clip(event: Event, clips: ClipRecorder) -> Event:
    """A start event gets a clip begun for it and names it (attribute `clip`); later phases
    of the incident name the same file."""
    name = f"{clips.source_id}-{event.event_id}.mp4"
    if event.phase == "start":
        name = clips.start(event.event_id, event.pts_s)
    clip = {"file": name, "pre_s": clips.cfg.pre_s, "post_s": clips.cfg.post_s}
    return dataclasses.replace(event, attributes={**event.attributes, "clip": clip})
