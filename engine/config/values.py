"""Value types of the config files, checked for what they mean rather than only their type.

A float that parses is not yet a coordinate: NaN and infinity pass every comparison a zone test
makes as False, so a polygon with one NaN vertex silently never matches. A port is a 16-bit
number, a ZeroMQ socket option a C int; values beyond those fail deep inside a library at run
time, with a traceback, instead of in `lookout check` with the field's name.

Example:
    >>> check_port("tcp://127.0.0.1:5556")
    'tcp://127.0.0.1:5556'
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import Field

from engine.redact import redact, strip_userinfo

__all__ = [
    "C_INT_MAX",
    "GROUND_LIMIT_M",
    "PIXEL_LIMIT",
    "PORT_MAX",
    "CInt",
    "GroundPoint",
    "LatLonPoint",
    "Point",
    "check_invertible",
    "check_port",
    "port_of",
]

# Pixel coordinates this far out are still "outside the image" (the quick form's whole-frame
# zone uses 1e6) while their products in area and crossing tests stay far from overflow.
PIXEL_LIMIT = 1e7
# Metres east/north of the site origin: a tenth of the Earth's circumference is no site.
GROUND_LIMIT_M = 4e6
PORT_MAX = 65535
C_INT_MAX = 2**31 - 1  # libzmq's socket options (ZMQ_SNDHWM, ...) are C ints

PixelCoord = Annotated[float, Field(allow_inf_nan=False, ge=-PIXEL_LIMIT, le=PIXEL_LIMIT)]
Point = tuple[PixelCoord, PixelCoord]
"""[x, y] in pixels: finite, within +-PIXEL_LIMIT."""

GroundCoord = Annotated[float, Field(allow_inf_nan=False, ge=-GROUND_LIMIT_M, le=GROUND_LIMIT_M)]
GroundPoint = tuple[GroundCoord, GroundCoord]
"""[east, north] in metres of the site origin: finite, within +-GROUND_LIMIT_M."""

LatLonPoint = tuple[
    Annotated[float, Field(allow_inf_nan=False, ge=-90, le=90)],
    Annotated[float, Field(allow_inf_nan=False, ge=-180, le=180)],
]
"""[lat, lon] in degrees."""

CInt = Annotated[int, Field(ge=0, le=C_INT_MAX)]
"""An integer a C `int` option holds (0 .. 2**31-1)."""

# scheme://[userinfo@]host:port[/path]: the port is the digits after the authority's last ':'
_AUTHORITY = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?P<authority>[^/?#]*)")


def port_of(address: str) -> int | None:
    """The port number an address names, or None when it names none.

    Args:
        address: `tcp://host:port`, `udp://host:port`, `rtsp://user:pass@host:port/path`, or
            `host:port` (the metrics listen address).
    """
    if "://" in address:
        # credentials may hold '/', '?' or '@', and a path '@': the redaction's reading of
        # where the userinfo ends is the one used everywhere
        address = strip_userinfo(address)
        m = _AUTHORITY.match(address)
        authority = m.group("authority") if m else ""
    else:
        authority = address
    if authority.endswith("]") or ":" not in authority:
        return None  # [::1] without a port, or no port at all
    digits = authority.rsplit(":", 1)[1]
    return int(digits) if digits.isdigit() and len(digits) <= 12 else None


def check_port(address: str) -> str:
    """`address` unchanged when its port (if any) is 0..65535.

    Raises:
        ValueError: the port is out of range (the message shows the address redacted).
    """
    port = port_of(address)
    if port is not None and port > PORT_MAX:
        raise ValueError(f"expected a port from 0 to {PORT_MAX}, got {port} (in {redact(address)})")
    return address


def check_invertible(matrix: list[list[float]]) -> None:
    """Raises ValueError unless the 3x3 `matrix` (finite numbers) can be inverted."""
    # each row scaled to its largest entry first: a homography mixes units (metres per pixel
    # beside a translation of kilometres), and scaling a row scales the determinant alone,
    # so a scale taken over the whole matrix refused invertible ones far from the origin
    scales = [max(abs(v) for v in row) for row in matrix]
    if not all(math.isfinite(v) and v > 0 for v in scales):
        det = 0.0
    else:
        (a, b, c), (d, e, f), (g, h, i) = (
            [v / s for v in row] for row, s in zip(matrix, scales, strict=True)
        )
        det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    if not math.isfinite(det) or abs(det) <= 1e-12:
        raise ValueError(
            "homography: expected an invertible 3x3 matrix (pixels must map back to the "
            f"ground), got one whose rows are (nearly) dependent: determinant {det:.3g} with "
            "each row scaled to its largest entry"
        )
