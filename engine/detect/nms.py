"""Non-maximum suppression (greedy, class-aware or agnostic), vectorised with NumPy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["box_iou_one_to_many", "nms"]


def box_iou_one_to_many(
    box: npt.NDArray[np.float32], boxes: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """IoU of one xyxy box (f32 [4]) with each of `boxes` (f32 [n, 4]) -> f32 [n]."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def nms(
    xyxy: npt.NDArray[np.float32],
    score: npt.NDArray[np.float32],
    class_id: npt.NDArray[np.int32] | None,
    iou_threshold: float,
    max_det: int,
) -> npt.NDArray[np.int64]:
    """Greedy NMS; returns indices of the kept boxes, highest score first.

    Args:
        xyxy: f32 [n, 4] boxes.
        score: f32 [n] scores.
        class_id: i32 [n]; boxes of different classes never suppress each other. None: agnostic.
        iou_threshold: a box overlapping a kept one by more than this is dropped.
        max_det: stop after this many boxes are kept.
    """
    if len(xyxy) == 0:
        return np.zeros(0, np.int64)
    boxes = xyxy
    if class_id is not None:
        # Shift each class into its own region of the plane so classes cannot overlap.
        span = float(np.max(xyxy)) + 1.0
        boxes = xyxy + (class_id.astype(np.float32) * span)[:, None]
    order = np.argsort(-score, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou_one_to_many(boxes[i], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, np.int64)
