"""Non-maximum suppression (greedy, class-aware or agnostic).

`nms` is a numba kernel; `nms_numpy` is its plain NumPy twin, kept as the reference the property
tests and the preprocess bench compare it with. Both keep the same boxes in the same order: highest
score first, ties broken by input order.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = ["box_iou_one_to_many", "nms", "nms_numpy"]


@nb.njit(cache=True, nogil=True)
def _nms_kernel(
    xyxy: npt.NDArray[np.float32],
    order: npt.NDArray[np.int64],
    class_id: npt.NDArray[np.int32],
    class_aware: bool,
    iou_threshold: float,
    max_det: int,
) -> npt.NDArray[np.int64]:  # pragma: no cover - compiled
    n = order.shape[0]
    keep = np.empty(min(n, max_det), np.int64)
    suppressed = np.zeros(n, np.bool_)
    kept = 0
    for a in range(n):
        if kept >= max_det:
            break
        if suppressed[a]:
            continue
        i = order[a]
        keep[kept] = i
        kept += 1
        ax1, ay1, ax2, ay2 = xyxy[i, 0], xyxy[i, 1], xyxy[i, 2], xyxy[i, 3]
        area_a = (ax2 - ax1) * (ay2 - ay1)
        for b in range(a + 1, n):
            if suppressed[b]:
                continue
            j = order[b]
            if class_aware and class_id[i] != class_id[j]:
                continue
            iw = min(ax2, xyxy[j, 2]) - max(ax1, xyxy[j, 0])
            ih = min(ay2, xyxy[j, 3]) - max(ay1, xyxy[j, 1])
            if iw <= 0.0 or ih <= 0.0:
                continue
            inter = iw * ih
            union = area_a + (xyxy[j, 2] - xyxy[j, 0]) * (xyxy[j, 3] - xyxy[j, 1]) - inter
            if union > 0.0 and inter / union > iou_threshold:
                suppressed[b] = True
    return keep[:kept]


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
    if len(xyxy) == 0 or max_det <= 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-score, kind="stable").astype(np.int64)
    aware = class_id is not None
    classes = np.ascontiguousarray(class_id if aware else np.zeros(len(score)), np.int32)
    return _nms_kernel(
        np.ascontiguousarray(xyxy, np.float32),
        order,
        classes,
        aware,
        float(iou_threshold),
        int(max_det),
    )


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


def nms_numpy(
    xyxy: npt.NDArray[np.float32],
    score: npt.NDArray[np.float32],
    class_id: npt.NDArray[np.int32] | None,
    iou_threshold: float,
    max_det: int,
) -> npt.NDArray[np.int64]:
    """The NumPy twin of `nms` (same arguments, same result), vectorised per kept box."""
    if len(xyxy) == 0 or max_det <= 0:
        return np.zeros(0, np.int64)
    order = np.argsort(-score, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        drop = box_iou_one_to_many(xyxy[i], xyxy[rest]) > iou_threshold
        if class_id is not None:
            drop &= class_id[rest] == class_id[i]
        order = rest[~drop]
    return np.asarray(keep, np.int64)
