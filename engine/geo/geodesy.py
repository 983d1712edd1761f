"""Latitude/longitude/altitude <-> local east-north-up metres about a site origin (WGS84),
through pymap3d (a well-kept geodesy library) rather than hand-written ellipsoid maths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pymap3d

__all__ = ["GeoOrigin"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class GeoOrigin:
    """The site's origin: ENU (0, 0, 0) is here.

    Attributes:
        lat_deg, lon_deg: WGS84 latitude and longitude.
        alt_m: ellipsoidal height.
    """

    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0

    def to_geodetic(self, enu_m: F64) -> F64:
        """ENU points (n, 3) or (n, 2) on the ground (up 0) -> (n, 3) lat, lon, alt."""
        p = np.atleast_2d(np.asarray(enu_m, np.float64))
        up = p[:, 2] if p.shape[1] > 2 else np.zeros(len(p))
        lat, lon, alt = pymap3d.enu2geodetic(
            p[:, 0], p[:, 1], up, self.lat_deg, self.lon_deg, self.alt_m
        )
        return np.column_stack([lat, lon, alt])

    def to_enu(self, lat_deg: F64 | float, lon_deg: F64 | float, alt_m: F64 | float = 0.0) -> F64:
        """Geodetic points -> (n, 3) east, north, up metres."""
        e, n, u = pymap3d.geodetic2enu(
            lat_deg, lon_deg, alt_m, self.lat_deg, self.lon_deg, self.alt_m
        )
        return np.column_stack([np.atleast_1d(e), np.atleast_1d(n), np.atleast_1d(u)])
