"""Pinhole cameras in a local east-north-up world (metres), for fixed masts and drone gimbals.

Attitude follows the aviation convention: heading (yaw) clockwise from north, pitch positive nose
up, roll positive right side down. A drone camera's attitude is its gimbal's (relative azimuth,
elevation, roll) composed onto the platform's (heading, pitch, roll), as MISB ST 0601 describes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Camera", "attitude_axes", "camera_from_telemetry", "intrinsics"]

F64 = npt.NDArray[np.float64]

# Columns: forward, right, down of a level, north-facing body, in ENU.
_LEVEL_NORTH = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]).T


def attitude_axes(parent: F64, yaw_deg: float, pitch_deg: float, roll_deg: float) -> F64:
    """Rotate a frame (3x3, columns forward/right/down in ENU) by yaw, then pitch, then roll."""
    f0, r0, d0 = parent[:, 0], parent[:, 1], parent[:, 2]
    y, p, r = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    f1 = math.cos(y) * f0 + math.sin(y) * r0
    r1 = -math.sin(y) * f0 + math.cos(y) * r0
    f2 = math.cos(p) * f1 - math.sin(p) * d0
    d2 = math.sin(p) * f1 + math.cos(p) * d0
    r3 = math.cos(r) * r1 + math.sin(r) * d2
    d3 = -math.sin(r) * r1 + math.cos(r) * d2
    return np.stack([f2, r3, d3], axis=1)


def intrinsics(width: int, height: int, hfov_deg: float) -> F64:
    """Camera matrix for square pixels and a principal point in the centre."""
    fx = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
    return np.array([[fx, 0, width / 2], [0, fx, height / 2], [0, 0, 1]], np.float64)


@dataclass(frozen=True, slots=True)
class Camera:
    """A posed pinhole camera.

    Attributes:
        K: 3x3 intrinsics.
        R: 3x3 rotation world -> camera (OpenCV axes: x right, y down, z forward).
        position_m: camera centre in the world, ENU metres.
        width, height: image size in pixels.
    """

    K: F64
    R: F64
    position_m: F64
    width: int
    height: int

    @classmethod
    def from_attitude(
        cls,
        position_m: tuple[float, float, float] | F64,
        yaw_deg: float,
        pitch_deg: float,
        roll_deg: float,
        width: int,
        height: int,
        hfov_deg: float,
        gimbal: tuple[float, float, float] | None = None,
    ) -> Camera:
        """A camera from its attitude; `gimbal` (azimuth, elevation, roll) relative to it."""
        axes = attitude_axes(_LEVEL_NORTH, yaw_deg, pitch_deg, roll_deg)
        if gimbal is not None:
            axes = attitude_axes(axes, *gimbal)
        forward, right, down = axes[:, 0], axes[:, 1], axes[:, 2]
        R = np.stack([right, down, forward])
        return cls(
            intrinsics(width, height, hfov_deg),
            R,
            np.asarray(position_m, np.float64),
            width,
            height,
        )

    @property
    def t(self) -> F64:
        """Translation world -> camera."""
        return -self.R @ self.position_m

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2 * math.atan(self.width / 2 / self.K[0, 0]))

    @property
    def vfov_deg(self) -> float:
        return math.degrees(2 * math.atan(self.height / 2 / self.K[1, 1]))

    def to_camera(self, points_m: F64) -> F64:
        """World points (n, 3) -> camera coordinates (n, 3)."""
        return points_m @ self.R.T + self.t

    def project(self, points_m: F64) -> tuple[F64, npt.NDArray[np.bool_]]:
        """World points (n, 3) -> pixels (n, 2), and whether each is in front of the camera."""
        pc = self.to_camera(points_m)
        z = pc[:, 2]
        front = z > 1e-3
        zs = np.where(front, z, 1e-3)
        uv = (pc[:, :2] / zs[:, None]) * [self.K[0, 0], self.K[1, 1]] + [self.K[0, 2], self.K[1, 2]]
        return uv, front

    def ground_homography(self) -> F64:
        """3x3 homography from ground-plane (x, y, z=0) metres to pixels."""
        return self.K @ np.column_stack([self.R[:, 0], self.R[:, 1], self.t])

    def pixel_to_ground(self, uv: F64) -> F64:
        """Pixels (n, 2) -> ground points (n, 2) in metres (rays that miss the ground give nan)."""
        rays = np.column_stack([uv, np.ones(len(uv))]) @ np.linalg.inv(self.K).T @ self.R
        with np.errstate(divide="ignore", invalid="ignore"):
            s = -self.position_m[2] / rays[:, 2]
        s = np.where(s > 0, s, np.nan)
        return self.position_m[:2] + rays[:, :2] * s[:, None]

    def horizon_row(self, u: F64) -> F64:
        """Image row of the horizon (rays parallel to the ground) for columns `u`; nan if none."""
        # ray z = a*u + b*v + c with (a, b, c) the third row of (R^T K^-1)
        a, b, c = (self.R.T @ np.linalg.inv(self.K))[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(abs(b) > 1e-12, -(a * u + c) / b, np.nan)

    def to_dict(self) -> dict[str, object]:
        """Parameters for ground-truth files."""
        return {
            "K": np.round(self.K, 4).tolist(),
            "R": np.round(self.R, 8).tolist(),
            "position_m": np.round(self.position_m, 4).tolist(),
            "width": self.width,
            "height": self.height,
        }


def camera_from_telemetry(
    tel: dict[str, float], position_enu_m: tuple[float, float, float] | F64, width: int, height: int
) -> Camera:
    """A drone's camera at one frame, from its MISB ST 0601 style telemetry.

    Args:
        tel: platform heading/pitch/roll, sensor relative azimuth/elevation/roll (absent: a
            camera fixed to the platform looking forward), horizontal field of view.
        position_enu_m: the sensor's position in the local frame (from its latitude, longitude
            and altitude, see GeoOrigin.to_enu).
        width, height: image size in pixels.

    Raises:
        KeyError: a needed value is missing from `tel`.
    """
    gimbal = None
    if "sensor_rel_elevation_deg" in tel:
        gimbal = (
            float(tel.get("sensor_rel_azimuth_deg", 0.0)),
            float(tel["sensor_rel_elevation_deg"]),
            float(tel.get("sensor_rel_roll_deg", 0.0)),
        )
    return Camera.from_attitude(
        position_enu_m,
        float(tel["platform_heading_deg"]),
        float(tel.get("platform_pitch_deg", 0.0)),
        float(tel.get("platform_roll_deg", 0.0)),
        width,
        height,
        float(tel["hfov_deg"]),
        gimbal=gimbal,
    )
