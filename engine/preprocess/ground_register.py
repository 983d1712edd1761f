"""Frames of a moving camera registered to the ground from its pose telemetry.

A drone's telemetry (MISB ST 0601 style keys: sensor latitude, longitude and altitude, platform
and gimbal attitude, field of view) gives its camera at each frame, hence a homography from the
image to the ground plane. Rules work in "scene" coordinates that stay put while the camera
flies, turns or tilts: east and north metres about the first fix, scaled by the pixels per metre
of the first frame at its centre (so thresholds in pixels keep their meaning) and with north up
(scene y grows southwards, as image y grows downwards; a bearing in the scene is a compass
bearing).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.geo.camera import camera_from_telemetry
from engine.geo.geodesy import GeoOrigin

__all__ = ["GroundRegistration", "apply_homography", "shift_homography"]

F64 = npt.NDArray[np.float64]


def apply_homography(H: npt.NDArray[np.floating[Any]], xy: npt.ArrayLike) -> F64:
    """Points (n, 2) through the 3x3 homography `H`."""
    p = np.asarray(xy, np.float64).reshape(-1, 2)
    q = np.column_stack([p, np.ones(len(p))]) @ H.T
    with np.errstate(divide="ignore", invalid="ignore"):
        return q[:, :2] / q[:, 2:3]


def shift_homography(dx: float, dy: float) -> F64:
    """The homography that adds (dx, dy) to every point."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


class GroundRegistration:
    """Per frame, the homography from image pixels to scene coordinates, from telemetry.

    The ground's height is the sensor's altitude less its height above ground where the
    telemetry has both, else the frame centre's elevation (ST 0601 tag 25), else that of
    `origin`. `origin` (the site's) fixes the scene's origin; without one, the first fix does.

    Args:
        origin: the site origin, if configured.

    A frame whose view reaches the horizon has no homography to the ground for all its pixels:
    it does not register (`update` returns None).
    """

    def __init__(self, origin: GeoOrigin | None = None) -> None:
        self._origin = origin
        self._scale: float | None = None  # scene units per metre

    @property
    def scale(self) -> float | None:
        """Scene units per metre (set by the first registered frame)."""
        return self._scale

    def _ground_alt(self, tel: dict[str, Any]) -> float:
        if "height_above_ground_m" in tel and "sensor_alt_m" in tel:
            return float(tel["sensor_alt_m"]) - float(tel["height_above_ground_m"])
        if "frame_center_elevation_m" in tel:
            return float(tel["frame_center_elevation_m"])
        return self._origin.alt_m if self._origin is not None else 0.0

    def update(self, tel: dict[str, Any], width: int, height: int) -> F64 | None:
        """Image -> scene homography of this frame, or None (no usable pose in `tel`)."""
        try:
            lat = float(tel["sensor_lat_deg"])
            lon = float(tel["sensor_lon_deg"])
            alt = float(tel["sensor_alt_m"])
            ground = self._ground_alt(tel)
            if self._origin is None:
                self._origin = GeoOrigin(lat, lon, ground)
            e, n, _ = self._origin.to_enu(lat, lon, alt)[0]
            up = alt - ground
            if not (math.isfinite(e) and math.isfinite(n) and up > 0.5):
                return None
            if not 0.0 < float(tel["hfov_deg"]) < 180.0:
                return None  # a damaged packet: no camera has that field of view
            cam = camera_from_telemetry(tel, (e, n, up), width, height)
        except (KeyError, TypeError, ValueError, ArithmeticError):
            return None
        corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
        if not np.all(np.isfinite(cam.pixel_to_ground(corners))):
            return None  # the horizon shows: no plane maps the whole image
        try:
            to_ground = np.linalg.inv(cam.ground_homography())
        except np.linalg.LinAlgError:
            return None
        if self._scale is None:
            c = np.array([[width / 2, height / 2], [width / 2 + 1.0, height / 2]])
            g = apply_homography(to_ground, c)
            mpp = float(np.hypot(*(g[1] - g[0])))
            if not (math.isfinite(mpp) and mpp > 0):
                return None
            self._scale = 1.0 / mpp
        k = self._scale
        flip = np.array([[k, 0.0, 0.0], [0.0, -k, 0.0], [0.0, 0.0, 1.0]])
        H = flip @ to_ground
        return H / H[2, 2] if abs(H[2, 2]) > 1e-12 else H
