"""Annotated video: each frame with its boxes, zones and the alerts in progress, as H.264 MP4."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from engine.errors import PublishError
from engine.record.h264 import H264Writer
from engine.types import Event, Frame, Tracks

__all__ = ["AnnotatedVideo", "annotate"]

_PALETTE = [
    (80, 200, 255),
    (80, 255, 120),
    (255, 160, 60),
    (60, 80, 255),
    (255, 80, 200),
    (200, 200, 60),
]


def annotate(
    image: npt.NDArray[np.uint8],
    tracks: Tracks,
    zones: list[list[tuple[float, float]]],
    banners: list[str],
) -> npt.NDArray[np.uint8]:
    """A copy of `image` with zones, boxes with labels and scores, and alert banners on top."""
    out = image.copy()
    for poly in zones:
        pts = np.asarray(poly, np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [pts], True, (0, 215, 255), 2, cv2.LINE_AA)
    for (x1, y1, x2, y2), cls, score, label in zip(
        tracks.xyxy.astype(int).tolist(),
        tracks.class_id.tolist(),
        tracks.score.tolist(),
        tracks.labels(),
        strict=True,
    ):
        colour = _PALETTE[cls % len(_PALETTE)]
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        text = f"{label} {score:.2f}"
        cv2.putText(
            out, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA
        )
    for i, text in enumerate(banners[:4]):
        y = 28 + 26 * i
        cv2.rectangle(out, (8, y - 20), (16 + 9 * len(text), y + 6), (0, 0, 160), -1)
        cv2.putText(
            out, text, (12, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA
        )
    return out


class AnnotatedVideo:
    """Writes one source's annotated frames to an MP4 file.

    Call `add` from the source's thread (the runner's frame hook); open incidents are shown as
    banners from their start to their end.

    Raises:
        PublishError: the file cannot be written.
    """

    def __init__(self, path: Path, fps: float, zones: list[list[tuple[float, float]]]) -> None:
        self.path = path
        self.zones = zones
        self._fps = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(15)
        self._video: H264Writer | None = None
        self._open: dict[str, str] = {}  # event id -> banner text
        self._lock = threading.Lock()
        self.frames = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PublishError(f"cannot write video to {path}: {exc.strerror}") from None

    def add(self, frame: Frame, tracks: Tracks, events: list[Event]) -> None:
        """Draw and encode one frame."""
        with self._lock:
            for e in events:
                if e.phase == "end":
                    self._open.pop(e.event_id, None)
                else:
                    self._open[e.event_id] = f"ALERT {e.kind} [{e.rule_id}] {', '.join(e.labels)}"
            image = annotate(frame.image, tracks, self.zones, list(self._open.values()))
            image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]  # H.264: even
            if self._video is None:
                self._video = H264Writer(
                    self.path,
                    self._fps,
                    (image.shape[1], image.shape[0]),
                    options={"preset": "veryfast", "crf": "23"},
                )
            self._video.write(image)
            self.frames += 1

    def close(self) -> None:
        """Flush and close the file (nothing is written if no frame came)."""
        with self._lock:
            if self._video is not None:
                self._video.close()
                self._video = None
