"""H.264 video files written frame by frame from BGR images: the one encoder setup that clips,
annotated videos and the simulator's footage share (PyAV's libx264, yuv420p, even sizes)."""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.video.stream
import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["H264Writer"]


class H264Writer:
    """An H.264 stream in a container file (MP4 unless `container_format` says otherwise).

    Frames are numbered in the stream's time base, 1/fps, unless `time_base` is given and each
    `write` passes its own `pts` (the simulator's MPEG-TS clock, beside a KLV data stream that
    the caller adds to `container`). A frame of another size than the stream's is resized.

    Args:
        path: the file (written as it goes; the caller renames it if it wants).
        fps: frames per second (a Fraction keeps 30000/1001 exact).
        size: (width, height) in pixels, even (H.264 with 4:2:0 chroma).
        container_format: e.g. "mp4", "mpegts" (None: from the file name).
        options: libx264 options, e.g. {"preset": "veryfast", "crf": "23"}.
        time_base: the time base of `pts` passed to `write` (None: 1/fps, frames counted).

    Raises:
        av.FFmpegError, OSError: the file cannot be created or the encoder opened.

    Example:
        with contextlib.closing(H264Writer(Path("out.mp4"), 15, (640, 360))) as video:
            video.write(image)
    """

    def __init__(
        self,
        path: Path,
        fps: float | Fraction,
        size: tuple[int, int],
        container_format: str | None = None,
        options: dict[str, str] | None = None,
        time_base: Fraction | None = None,
    ) -> None:
        self.path = path
        self.rate = Fraction(fps).limit_denominator(1001)
        self.container: av.container.OutputContainer = av.open(
            str(path), "w", format=container_format
        )
        try:
            self.stream: av.video.stream.VideoStream = self.container.add_stream(
                "libx264", rate=self.rate
            )
            self.stream.width, self.stream.height = size
            self.stream.pix_fmt = "yuv420p"
            if options:
                self.stream.options = {str(k): v for k, v in options.items()}
        except BaseException:
            self.abort()
            raise
        self.time_base = time_base or Fraction(1, 1) / self.rate
        self.frames = 0
        self._closed = False

    def write(self, image: npt.NDArray[np.uint8], pts: int | None = None) -> None:
        """Encode one BGR frame (`pts` in `time_base`; None: the frame's number)."""
        w, h = self.stream.width, self.stream.height
        if image.shape[1] != w or image.shape[0] != h:
            image = np.asarray(cv2.resize(image, (w, h)), np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = self.frames if pts is None else pts
        frame.time_base = self.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()

    def abort(self) -> None:
        """Close the file without flushing, ignoring errors (a write already failed)."""
        self._closed = True
        with contextlib.suppress(Exception):
            self.container.close()
