"""Decoders from raw detector outputs to candidate boxes in model-input pixels.

Each decoder takes the output of one image and returns (xyxy f32 [n,4], score f32 [n],
class_id i32 [n]) in input pixels; NMS and the mapping back to the frame happen in the detector.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "Candidates",
    "decode_ultralytics",
    "decode_ultralytics_end2end",
    "decode_yolox",
    "yolox_grid",
    "yolox_num_anchors",
]

Candidates = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int32]]

# Ultralytics' cap on boxes entering NMS: beyond it the rest cannot change the top results.
MAX_NMS_INPUT = 30_000
YOLOX_STRIDES = (8, 16, 32)


def _cxcywh_to_xyxy(b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out = np.empty_like(b)
    half_w = b[:, 2] / 2
    half_h = b[:, 3] / 2
    out[:, 0] = b[:, 0] - half_w
    out[:, 1] = b[:, 1] - half_h
    out[:, 2] = b[:, 0] + half_w
    out[:, 3] = b[:, 1] + half_h
    return out


def _top_candidates(
    boxes_cxcywh: npt.NDArray[np.float32],
    cls_scores: npt.NDArray[np.float32],
    conf: float,
) -> Candidates:
    """Best class per anchor, above `conf`, at most MAX_NMS_INPUT of them."""
    class_id = np.argmax(cls_scores, axis=1).astype(np.int32)
    score = np.take_along_axis(cls_scores, class_id[:, None], axis=1)[:, 0].astype(np.float32)
    keep = score > conf
    boxes, score, class_id = boxes_cxcywh[keep], score[keep], class_id[keep]
    if len(score) > MAX_NMS_INPUT:
        top = np.argsort(-score, kind="stable")[:MAX_NMS_INPUT]
        boxes, score, class_id = boxes[top], score[top], class_id[top]
    return _cxcywh_to_xyxy(boxes.astype(np.float32)), score, class_id


def decode_ultralytics(pred: npt.NDArray[np.floating], conf: float) -> Candidates:
    """Ultralytics detect head, one image: [4 + nc, N] with (cx, cy, w, h) then class scores."""
    p = np.ascontiguousarray(pred.T, dtype=np.float32)  # [N, 4 + nc]
    return _top_candidates(p[:, :4], p[:, 4:], conf)


def decode_ultralytics_end2end(pred: npt.NDArray[np.floating], conf: float) -> Candidates:
    """End-to-end export (NMS inside the model), one image: [K, 6] = x1, y1, x2, y2, score, cls."""
    p = np.asarray(pred, dtype=np.float32)
    keep = p[:, 4] > conf
    p = p[keep]
    return (
        np.ascontiguousarray(p[:, :4]),
        np.ascontiguousarray(p[:, 4]),
        p[:, 5].astype(np.int32),
    )


def yolox_num_anchors(h: int, w: int, strides: tuple[int, ...] = YOLOX_STRIDES) -> int:
    """Number of grid cells a YOLOX head emits for an h x w input."""
    return sum((h // s) * (w // s) for s in strides)


def yolox_grid(
    h: int, w: int, strides: tuple[int, ...] = YOLOX_STRIDES
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Cell offsets (f32 [N, 2], x then y) and strides (f32 [N, 1]) of a YOLOX head."""
    grids, expanded = [], []
    for s in strides:
        hs, ws = h // s, w // s
        yv, xv = np.meshgrid(np.arange(hs), np.arange(ws), indexing="ij")
        grids.append(np.stack((xv, yv), axis=2).reshape(-1, 2))
        expanded.append(np.full((hs * ws, 1), s))
    return (
        np.concatenate(grids).astype(np.float32),
        np.concatenate(expanded).astype(np.float32),
    )


def decode_yolox(
    pred: npt.NDArray[np.floating],
    grid: npt.NDArray[np.float32],
    stride: npt.NDArray[np.float32],
    conf: float,
) -> Candidates:
    """YOLOX raw grid, one image: [N, 5 + nc] = dx, dy, log w, log h, objectness, class scores.

    Centre = (cell + d) * stride, size = exp(log size) * stride, score = objectness * class.
    """
    p = np.asarray(pred, dtype=np.float32)
    boxes = np.empty((len(p), 4), np.float32)
    boxes[:, :2] = (p[:, :2] + grid) * stride
    with np.errstate(over="ignore"):  # junk cells far below `conf` may overflow; harmless
        boxes[:, 2:4] = np.exp(p[:, 2:4]) * stride
    cls_scores = p[:, 5:] * p[:, 4:5]
    return _top_candidates(boxes, cls_scores, conf)
