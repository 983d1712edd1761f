"""The scene: the site on the globe, zones drawn on a source's image, how a fixed camera's
pixels map to the ground, and how several sensors' views fuse into one picture."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from engine.config.base import ConfigModel, Id
from engine.config.values import GroundPoint, LatLonPoint, Point, check_invertible
from engine.yamlconf import bounded_repr

__all__ = [
    "CalibrationConfig",
    "CalibrationPoint",
    "FusionConfig",
    "GeoConfig",
    "ZoneConfig",
]


class CalibrationPoint(ConfigModel):
    """One image point and where it lies on the ground."""

    image: Point = Field(description="Pixel [u, v].")
    ground: GroundPoint | None = Field(None, description="Metres [east, north] of the site origin.")
    latlon: LatLonPoint | None = Field(
        None, description="Or [lat, lon] (needs `geo` in the config)."
    )

    @model_validator(mode="after")
    def _one_place(self) -> CalibrationPoint:
        if (self.ground is None) == (self.latlon is None):
            raise ValueError("give either ground [east, north] or latlon [lat, lon]")
        return self


class CalibrationConfig(ConfigModel):
    """How a fixed camera's pixels map to the ground: a 3x3 homography (ground metres ->
    pixels, as `lookout calibrate` writes it), or >= 4 point pairs fitted at start."""

    homography: list[list[Annotated[float, Field(ge=-1e12, le=1e12)]]] | None = Field(
        None, description="3x3, ground -> image."
    )
    points: list[CalibrationPoint] | None = Field(
        None, min_length=4, description="Image points and their places on the ground, fitted."
    )
    pixel_sigma: float = Field(
        3.0, gt=0, le=100, description="How far off (px, one sigma) an object's foot point is."
    )

    @model_validator(mode="after")
    def _one_way(self) -> CalibrationConfig:
        if (self.homography is None) == (self.points is None):
            raise ValueError("give either homography (3x3) or points (at least 4)")
        h = self.homography
        if h is not None and (len(h) != 3 or any(len(r) != 3 for r in h)):
            raise ValueError(f"homography: expected 3 rows of 3 numbers, got {bounded_repr(h)}")
        if h is not None:
            check_invertible(h)
        return self


class FusionConfig(ConfigModel):
    """Several sensors, one picture: incidents of the same kind at the same place merge."""

    merge_incidents: bool = Field(
        True, description="One alert per incident seen by several sensors (needs positions)."
    )
    gate_m: float = Field(
        2.5, gt=0, le=100, description="Global tracks: a sensor's track joins one this close."
    )
    lost_s: float = Field(3.0, gt=0, le=600, description="A global track unseen this long ends.")
    merge_m: float = Field(10.0, gt=0, le=1000, description="Same place: within this distance.")
    merge_s: float = Field(
        30.0, gt=0, le=3600, description="... and this long after the incident's last event."
    )


class GeoConfig(ConfigModel):
    """The site's origin on the globe: ground metres are east/north of it."""

    lat: float = Field(ge=-90, le=90, description="Latitude, degrees (WGS 84).")
    lon: float = Field(ge=-180, le=180, description="Longitude, degrees (WGS 84).")
    alt_m: float = Field(0.0, ge=-500, le=9000, description="Ground height (ellipsoidal).")


class ZoneConfig(ConfigModel):
    """A polygon in one source's image, in pixels."""

    id: Id
    source: Id = Field(description="The source whose image the polygon is drawn on.")
    polygon: list[Point] = Field(min_length=3, description="Vertices [x, y] in pixels, in order.")

    @field_validator("polygon")
    @classmethod
    def _has_area(cls, polygon: list[Point]) -> list[Point]:
        area2 = sum(
            x0 * y1 - x1 * y0
            for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True)
        )
        if abs(area2) < 1e-6:
            raise ValueError(
                f"a polygon with non-zero area, got points all on one line: {bounded_repr(polygon)}"
            )
        return polygon
