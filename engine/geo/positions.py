"""Alerts with a place: one Locator per source that can be mapped to the ground."""

from __future__ import annotations

import dataclasses
import math
from collections import deque

import numpy as np

from engine.config import Config, DroneSourceConfig, SourceConfig
from engine.geo.geodesy import GeoOrigin
from engine.geo.locate import Locator, foot_points, homography_of
from engine.types import Event, Frame, Tracks

__all__ = ["GroundTracks", "build_locator", "build_locators", "with_position"]


def build_locators(cfg: Config) -> dict[str, Locator]:
    """A locator for each calibrated fixed camera and each drone, when the site has an origin.

    Raises:
        ConfigError: a calibration that fits no plane, or lat/lon points without `geo`.
    """
    out: dict[str, Locator] = {}
    for s in cfg.sources:
        locator = build_locator(cfg, s)
        if locator is not None:
            out[s.id] = locator
    return out


def build_locator(cfg: Config, source: SourceConfig) -> Locator | None:
    """The locator of one source (None when it cannot be placed: no site origin, or a fixed
    camera without calibration).

    Raises:
        ConfigError: a calibration that fits no plane, or lat/lon points without `geo`.
    """
    origin = GeoOrigin(cfg.geo.lat, cfg.geo.lon, cfg.geo.alt_m) if cfg.geo else None
    if source.calibration is not None:
        hom = homography_of(source.calibration, origin)  # checked also without an origin
        return Locator(origin, hom, source.calibration.pixel_sigma) if origin is not None else None
    if origin is not None and isinstance(source, DroneSourceConfig):
        return Locator(origin, None)
    return None


def with_position(
    event: Event, locator: Locator, frame: Frame, global_ids: dict[int, int] | None = None
) -> Event:
    """The event with its `position` (lat, lon, uncertainty) when it can be placed, and its
    `global_id` (each object's identity across sensors, -1 where it has none) when the source
    takes part in fusion (`global_ids`: local track id -> global id)."""
    position = locator.position(event, frame)
    gid = event.global_id
    if global_ids:
        ids = [global_ids.get(int(t), -1) for t in event.track_id.tolist()]
        gid = np.array(ids, np.int64).reshape(-1)
    return dataclasses.replace(event, position=position or event.position, global_id=gid)


class GroundTracks:
    """Puts one source's tracks on the ground: foot points in metres and ground speed.

    Speed is the distance covered over the last `window_s` of a track's positions, so a box
    that jitters by a few pixels does not read as walking. State per track is freed with
    `forget` when the tracker ends it.
    """

    def __init__(self, locator: Locator, window_s: float = 1.0) -> None:
        self.locator = locator
        self.window_s = window_s
        self.overhead = locator.homography is None  # a drone looks straight down
        self._hist: dict[int, deque[tuple[float, float, float]]] = {}

    def __call__(self, tracks: Tracks, frame: Frame) -> Tracks:
        """The tracks with `ground_m` and `speed_mps` filled where the source maps."""
        if not len(tracks):
            return tracks
        feet = self.foot_points(tracks)
        ground = self.locator.ground_many(feet, frame).astype(np.float32)
        speed = np.full(len(tracks), np.nan, np.float32)
        for k, tid in enumerate(tracks.track_id.tolist()):
            if tid < 0 or not np.all(np.isfinite(ground[k])):
                continue
            h = self._hist.setdefault(tid, deque())
            h.append((frame.pts_s, float(ground[k, 0]), float(ground[k, 1])))
            while len(h) > 2 and frame.pts_s - h[1][0] >= self.window_s:
                h.popleft()
            dt = h[-1][0] - h[0][0]
            if dt >= 0.5 * self.window_s:
                speed[k] = math.hypot(h[-1][1] - h[0][1], h[-1][2] - h[0][2]) / dt
        return dataclasses.replace(tracks, ground_m=ground, speed_mps=speed)

    def foot_points(self, tracks: Tracks) -> np.ndarray:
        """The image point of each track that stands on the ground (geo.locate.foot_points)."""
        return foot_points(tracks.xyxy, tracks.labels(), self.overhead)

    def forget(self, track_ids: list[int]) -> None:
        """Ended tracks: drop their positions."""
        for t in track_ids:
            self._hist.pop(t, None)
