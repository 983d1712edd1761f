"""Plane geometry that rules share: anchor points of boxes, point-in-polygon tests."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["anchor_points", "points_in_polygon"]


def anchor_points(
    xyxy: npt.NDArray[np.float32], anchor: Literal["bottom_center", "center"]
) -> npt.NDArray[np.float64]:
    """The point of each box (f32 [n, 4]) that stands for the object -> f64 [n, 2].

    "bottom_center" is where a standing person or a vehicle touches the ground.
    """
    x = (xyxy[:, 0] + xyxy[:, 2]) / 2.0
    y = xyxy[:, 3] if anchor == "bottom_center" else (xyxy[:, 1] + xyxy[:, 3]) / 2.0
    return np.stack([x, y], axis=1).astype(np.float64)


def points_in_polygon(
    points: npt.NDArray[np.float64], polygon: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """Even-odd rule: which points (f64 [n, 2]) lie inside the polygon (f64 [m, 2]) -> bool [n].

    Vectorised over points and edges; points exactly on an edge may fall either way.
    """
    if len(points) == 0:
        return np.zeros(0, bool)
    px = points[:, 0:1]
    py = points[:, 1:2]
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    hits = crosses & (px < x_at)
    return np.asarray(np.count_nonzero(hits, axis=1) % 2 == 1)
