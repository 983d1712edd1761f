"""The sensor's pose at every frame: a fixed mast camera, or a drone flying its path.

A drone's platform sways a little in pitch and roll; its gimbal holds the configured elevation.
Its telemetry (position in latitude/longitude/altitude, attitude, gimbal angles, fields of view,
the ground point at the image centre) is what MISB ST 0601 KLV and DJI SRT records carry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymap3d

from engine.geo.camera import Camera
from engine.sim.actors import Trajectory
from engine.sim.scenario import DroneSensor, FixedCameraSensor, Origin

__all__ = ["SensorPose", "SensorRig"]


@dataclass(frozen=True, slots=True)
class SensorPose:
    """Camera and telemetry at one frame."""

    camera: Camera
    telemetry: dict[str, float]


class SensorRig:
    """Poses of one sensor over time.

    Args:
        sensor: the scenario's sensor.
        origin: the world origin on Earth.
        duration_s: how long the scenario runs (drones fly back and forth along their path).
        rng: draws the sway's phases.
    """

    def __init__(
        self,
        sensor: FixedCameraSensor | DroneSensor,
        origin: Origin,
        duration_s: float,
        rng: np.random.Generator,
    ) -> None:
        self.sensor = sensor
        self.origin = origin
        self._phase = rng.uniform(0, 2 * math.pi, 2)
        self._traj: Trajectory | None = None
        if isinstance(sensor, DroneSensor):
            pts = np.asarray(sensor.path, np.float64)
            if len(pts) == 1 or sensor.speed_mps == 0:
                self._traj = Trajectory(np.array([0.0]), pts[:1])
            else:
                loop = np.vstack([pts, pts[-2::-1]])  # there and back
                loop_m = max(1e-6, float(np.sum(np.hypot(*np.diff(loop, axis=0).T))))
                repeats = int(duration_s * sensor.speed_mps / loop_m) + 1
                route = np.vstack([loop] + [loop[1:]] * repeats)
                self._traj = Trajectory.along(route, 0.0, sensor.speed_mps)

    def pose(self, t: float) -> SensorPose:
        """Camera and telemetry at stream time t."""
        s = self.sensor
        w, h = s.resolution
        if isinstance(s, FixedCameraSensor):
            cam = Camera.from_attitude(
                s.position_m, s.yaw_deg, s.pitch_deg, s.roll_deg, w, h, s.hfov_deg
            )
            return SensorPose(cam, self._geo(cam, s.yaw_deg, s.pitch_deg, s.roll_deg, None))
        assert self._traj is not None
        xy = self._traj.position(t)
        heading = (
            s.heading_deg if s.heading_deg is not None else math.degrees(self._traj.heading(t))
        )
        heading %= 360.0
        pitch = s.wobble_deg * math.sin(0.7 * t + self._phase[0])
        roll = s.wobble_deg * math.sin(0.53 * t + self._phase[1])
        gimbal = (s.gimbal_azimuth_deg, s.gimbal_elevation_deg, 0.0)
        cam = Camera.from_attitude(
            (xy[0], xy[1], s.altitude_m), heading, pitch, roll, w, h, s.hfov_deg, gimbal=gimbal
        )
        return SensorPose(cam, self._geo(cam, heading, pitch, roll, gimbal))

    def _geo(
        self,
        cam: Camera,
        heading: float,
        pitch: float,
        roll: float,
        gimbal: tuple[float, float, float] | None,
    ) -> dict[str, float]:
        o = self.origin
        x, y, z = cam.position_m
        lat, lon, alt = pymap3d.enu2geodetic(x, y, z, o.lat_deg, o.lon_deg, o.alt_m)
        centre = cam.pixel_to_ground(np.array([[cam.width / 2, cam.height / 2]]))[0]
        tel: dict[str, float] = {
            "sensor_lat_deg": float(lat),
            "sensor_lon_deg": float(lon),
            "sensor_alt_m": float(alt),
            "height_above_ground_m": float(z),
            "platform_heading_deg": float(heading),
            "platform_pitch_deg": float(pitch),
            "platform_roll_deg": float(roll),
            "hfov_deg": cam.hfov_deg,
            "vfov_deg": cam.vfov_deg,
        }
        if gimbal is not None:
            tel["sensor_rel_azimuth_deg"] = gimbal[0] % 360.0
            tel["sensor_rel_elevation_deg"] = gimbal[1]
            tel["sensor_rel_roll_deg"] = gimbal[2] % 360.0
        if np.all(np.isfinite(centre)):
            clat, clon, calt = pymap3d.enu2geodetic(
                centre[0], centre[1], 0.0, o.lat_deg, o.lon_deg, o.alt_m
            )
            tel.update(
                frame_center_lat_deg=float(clat),
                frame_center_lon_deg=float(clon),
                frame_center_elevation_m=float(calt),
            )
        return tel

    def describe(self) -> dict[str, Any]:
        """The sensor's static settings, for the ground-truth file."""
        return self.sensor.model_dump(mode="json")
