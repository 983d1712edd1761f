"""Alerts with a place: one Locator per source that can be mapped to the ground."""

from __future__ import annotations

import dataclasses

from engine.config import Config, DroneSourceConfig
from engine.geo.geodesy import GeoOrigin
from engine.geo.locate import Locator, homography_of
from engine.types import Event, Frame

__all__ = ["build_locators", "with_position"]


def build_locators(cfg: Config) -> dict[str, Locator]:
    """A locator for each calibrated fixed camera and each drone, when the site has an origin.

    Raises:
        ConfigError: a calibration that fits no plane, or lat/lon points without `geo`.
    """
    origin = GeoOrigin(cfg.geo.lat, cfg.geo.lon, cfg.geo.alt_m) if cfg.geo else None
    out: dict[str, Locator] = {}
    for s in cfg.sources:
        if s.calibration is not None:
            hom = homography_of(s.calibration, origin)
            if origin is not None:
                out[s.id] = Locator(origin, hom, s.calibration.pixel_sigma)
        elif origin is not None and isinstance(s, DroneSourceConfig):
            out[s.id] = Locator(origin, None)
    return out


def with_position(event: Event, locator: Locator, frame: Frame) -> Event:
    """The event with `attributes.position` (lat, lon, uncertainty) when it can be placed."""
    position = locator.position(event, frame)
    if position is None:
        return event
    return dataclasses.replace(event, attributes={**event.attributes, "position": position})
