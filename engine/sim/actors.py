"""Actors: things that exist on the ground for a while and move along timed waypoints.

An actor's motion is piecewise linear between keyframes (time, x, y); it faces the way it last
moved. Its look (sizes, colours) is drawn from the scenario's seed when it is created.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["DETECTOR_CLASSES", "Actor", "Trajectory"]

# Classes the ground truth labels (and the bundled detector learns), index = class id.
DETECTOR_CLASSES: tuple[str, ...] = ("person", "car", "truck", "debris", "bag")

F64 = npt.NDArray[np.float64]


@dataclass(slots=True)
class Trajectory:
    """Timed waypoints. Between them, constant velocity; before the first and after the last,
    standing still."""

    t: F64
    xy: F64
    heading_rad: F64 = field(init=False)
    dist_m: F64 = field(init=False)

    def __post_init__(self) -> None:
        self.t = np.asarray(self.t, np.float64)
        self.xy = np.asarray(self.xy, np.float64).reshape(-1, 2)
        if len(self.t) != len(self.xy) or np.any(np.diff(self.t) < 0):
            raise ValueError("keyframe times must be as many as points and non-decreasing")
        seg = np.diff(self.xy, axis=0)
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        heading = np.arctan2(seg[:, 0], seg[:, 1])  # clockwise from north
        moving = seg_len > 1e-6
        # stationary segments face where the actor last moved (or will first move)
        filled = np.full(len(seg), np.nan)
        filled[moving] = heading[moving]
        last = next((h for h in filled if not math.isnan(h)), 0.0)
        for i in range(len(filled)):
            if math.isnan(filled[i]):
                filled[i] = last
            last = filled[i]
        self.heading_rad = filled if len(filled) else np.zeros(1)
        self.dist_m = np.concatenate([[0.0], np.cumsum(seg_len)])

    @classmethod
    def along(
        cls,
        points: list[tuple[float, float]] | F64,
        start_s: float,
        speed_mps: float,
        pauses: dict[int, float] | None = None,
    ) -> Trajectory:
        """Walk/drive through `points` from `start_s` at `speed_mps`, pausing at given indices."""
        pts = np.asarray(points, np.float64)
        times, xy = [start_s], [pts[0]]
        t = start_s
        for i in range(1, len(pts)):
            pause = (pauses or {}).get(i - 1, 0.0)
            if pause > 0:
                t += pause
                times.append(t)
                xy.append(pts[i - 1])
            t += float(np.hypot(*(pts[i] - pts[i - 1]))) / speed_mps
            times.append(t)
            xy.append(pts[i])
        return cls(np.asarray(times), np.asarray(xy))

    @property
    def end_s(self) -> float:
        return float(self.t[-1])

    def _segment(self, t: float) -> tuple[int, float]:
        k = int(np.searchsorted(self.t, t, side="right")) - 1
        k = min(max(k, 0), len(self.t) - 2) if len(self.t) > 1 else 0
        if len(self.t) < 2:
            return 0, 0.0
        span = self.t[k + 1] - self.t[k]
        a = 0.0 if span <= 0 else min(max((t - self.t[k]) / span, 0.0), 1.0)
        return k, a

    def position(self, t: float) -> F64:
        """(x, y) at time t."""
        if len(self.t) < 2:
            return self.xy[0].copy()
        k, a = self._segment(t)
        return self.xy[k] + a * (self.xy[k + 1] - self.xy[k])

    def heading(self, t: float) -> float:
        """Heading in radians, clockwise from north."""
        if len(self.t) < 2:
            return 0.0
        k, _ = self._segment(t)
        return float(self.heading_rad[k])

    def speed(self, t: float) -> float:
        """Ground speed, m/s."""
        if len(self.t) < 2 or t < self.t[0] or t >= self.t[-1]:
            return 0.0
        k, _ = self._segment(t)
        span = self.t[k + 1] - self.t[k]
        return 0.0 if span <= 0 else float(self.dist_m[k + 1] - self.dist_m[k]) / span

    def distance(self, t: float) -> float:
        """Distance travelled by time t, metres (drives the walking animation)."""
        if len(self.t) < 2:
            return 0.0
        k, a = self._segment(t)
        return float(self.dist_m[k] + a * (self.dist_m[k + 1] - self.dist_m[k]))


@dataclass(slots=True)
class Actor:
    """Something in the scene.

    Attributes:
        id: unique in the scenario.
        kind: person, car, truck, debris, bag, or prop:<name> (props are no detector class).
        traj: where it is when.
        appear_s, vanish_s: it exists in [appear_s, vanish_s).
        size_m: (length, width, height).
        colours: BGR colours of its parts.
        grow: (t0, t1) over which it grows from nothing to full size (debris being unloaded).
        heading_deg: fixed heading (props, parked cars) instead of the trajectory's.
        rng_seed: seeds per-actor shape details.
    """

    id: int
    kind: str
    traj: Trajectory
    appear_s: float
    vanish_s: float
    size_m: tuple[float, float, float]
    colours: list[tuple[int, int, int]]
    grow: tuple[float, float] | None = None
    heading_deg: float | None = None
    rng_seed: int = 0

    @property
    def cls(self) -> str | None:
        """Detector class, or None for props."""
        return self.kind if self.kind in DETECTOR_CLASSES else None

    def active(self, t: float) -> bool:
        return self.appear_s <= t < self.vanish_s

    def scale(self, t: float) -> float:
        """Size factor in [0, 1] (1 unless growing)."""
        if self.grow is None:
            return 1.0
        t0, t1 = self.grow
        return float(min(max((t - t0) / max(t1 - t0, 1e-6), 0.0), 1.0))

    def heading(self, t: float) -> float:
        return (
            math.radians(self.heading_deg) if self.heading_deg is not None else self.traj.heading(t)
        )
