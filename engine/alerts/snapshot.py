"""Snapshots: the frame that caused an alert, as a small JPEG sent beside it."""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from engine.types import Event, Frame

__all__ = ["MAX_WIDTH", "jpeg_snapshot", "with_snapshot"]

MAX_WIDTH = 640
QUALITY = 80


def jpeg_snapshot(image: npt.NDArray[np.uint8], max_width: int = MAX_WIDTH) -> bytes:
    """The image scaled down to at most `max_width` pixels wide, as JPEG bytes."""
    h, w = image.shape[:2]
    small: npt.NDArray[Any] = image
    if w > max_width:
        small = cv2.resize(
            image, (max_width, round(h * max_width / w)), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    return buf.tobytes() if ok else b""


def with_snapshot(events: list[Event], frame: Frame) -> list[Event]:
    """The events, each carrying one shared JPEG of `frame` (encoded once); an event that
    brings its own snapshot (a before/after pair) keeps it."""
    if all(e.snapshot for e in events):
        return events
    jpeg = jpeg_snapshot(frame.image) or None
    return [e if e.snapshot else dataclasses.replace(e, snapshot=jpeg) for e in events]
