"""Ground geometry: pinhole cameras in a local east-north-up frame, ground homographies for
fixed cameras, cameras from drone telemetry, and geodetic coordinates."""

from __future__ import annotations

from engine.geo.camera import Camera, attitude_axes, camera_from_telemetry, intrinsics
from engine.geo.geodesy import GeoOrigin
from engine.geo.homography import GroundHomography, fit_homography

__all__ = [
    "Camera",
    "GeoOrigin",
    "GroundHomography",
    "attitude_axes",
    "camera_from_telemetry",
    "fit_homography",
    "intrinsics",
]
