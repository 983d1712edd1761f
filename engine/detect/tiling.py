"""Tiled inference for small objects: overlapping tiles, and their detections merged back.

A person 60 m below a drone is a few pixels wide once a 4K frame is shrunk to 640; cut into
overlapping tiles, each tile is shrunk far less. Tiles are views of the frame (the fused kernel
letterboxes each into its own batch slot); their boxes are shifted back into frame pixels,
pooled with the whole-frame detections (if asked), and duplicates along tile borders removed by
class-aware NMS.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.config import TilingConfig
from engine.detect.nms import nms
from engine.types import Detections

__all__ = ["merge_tiles", "tile_windows"]

MERGE_IOU = 0.5


def tile_windows(h: int, w: int, cfg: TilingConfig) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of `cfg.cols` x `cfg.rows` tiles covering h x w with the overlap."""

    def spans(size: int, n: int) -> list[tuple[int, int]]:
        if n == 1:
            return [(0, size)]
        tile = size / (n - (n - 1) * cfg.overlap)
        step = tile * (1 - cfg.overlap)
        out = []
        for k in range(n):
            a = round(k * step)
            out.append((a, min(size, round(a + tile))))
        out[-1] = (max(0, size - round(tile)), size)
        return out

    return [(x0, y0, x1, y1) for y0, y1 in spans(h, cfg.rows) for x0, x1 in spans(w, cfg.cols)]


def merge_tiles(
    parts: list[Detections],
    windows: list[tuple[int, int, int, int]],
    max_det: int,
    iou: float = MERGE_IOU,
) -> Detections:
    """One set of detections in frame pixels from per-window detections (window boxes are in
    that window's pixels; a full-frame window is (0, 0, w, h))."""
    if not parts:
        return Detections.empty()
    shifted = [
        d.xyxy + np.array([x0, y0, x0, y0], np.float32)
        for d, (x0, y0, _, _) in zip(parts, windows, strict=True)
    ]
    xyxy: npt.NDArray[np.float32] = np.concatenate(shifted).astype(np.float32)
    score = np.concatenate([d.score for d in parts])
    cls = np.concatenate([d.class_id for d in parts])
    keep = nms(xyxy, score, cls, iou, max_det)
    return Detections(xyxy[keep], score[keep], cls[keep], parts[0].class_names)
