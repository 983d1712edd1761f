"""Telemetry on every frame: samples by stream time, interpolated to each frame's timestamp.

KLV packets and SRT records arrive at their own rate, not necessarily one per frame. A frame
between two samples gets their linear interpolation (angles the short way round, so 359 -> 1
passes 0); a frame beyond the last sample by more than `max_gap_s` gets none rather than a
stale pose. Non-numeric values (platform name) come from the nearer sample.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

__all__ = ["ANGLE_KEYS", "TelemetryTrack", "interpolate"]

# values that wrap at 360 degrees
ANGLE_KEYS = frozenset(
    {
        "platform_heading_deg",
        "sensor_rel_azimuth_deg",
        "sensor_rel_roll_deg",
        "gb_yaw",
        "heading",
    }
)


def interpolate(a: Mapping[str, Any], b: Mapping[str, Any], w: float) -> dict[str, Any]:
    """(1 - w) * a + w * b over the keys both hold; the nearer sample for the others."""
    near, far = (a, b) if w < 0.5 else (b, a)
    out: dict[str, Any] = dict(far)
    out.update(near)
    for key in a.keys() & b.keys():
        va, vb = a[key], b[key]
        if isinstance(va, bool) or not isinstance(va, int | float):
            continue
        if isinstance(vb, bool) or not isinstance(vb, int | float):
            continue
        if key in ANGLE_KEYS:
            d = (vb - va + 180.0) % 360.0 - 180.0
            out[key] = (va + w * d) % 360.0
        elif key == "time_us":
            out[key] = round(va + w * (vb - va))
        else:
            out[key] = va + w * (vb - va)
    return out


class TelemetryTrack:
    """Telemetry samples of one stream, by stream time in seconds, pruned as frames pass.

    Args:
        max_gap_s: a frame further than this from every sample gets no telemetry.
        keep_s: samples older than this behind the newest frame asked about are dropped.
    """

    def __init__(self, max_gap_s: float = 1.0, keep_s: float = 10.0) -> None:
        self.max_gap_s = max_gap_s
        self.keep_s = keep_s
        self._times: list[float] = []
        self._values: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._times)

    @property
    def latest_s(self) -> float | None:
        """Stream time of the newest sample."""
        return self._times[-1] if self._times else None

    def add(self, t_s: float, values: Mapping[str, Any]) -> None:
        """Add a sample (out of order is fine; a second one at the same time replaces it)."""
        k = bisect.bisect_left(self._times, t_s)
        if k < len(self._times) and self._times[k] == t_s:
            self._values[k] = dict(values)
            return
        self._times.insert(k, t_s)
        self._values.insert(k, dict(values))

    def at(self, t_s: float) -> dict[str, Any]:
        """Telemetry at stream time `t_s` ({} if no sample is near enough)."""
        times = self._times
        if not times:
            return {}
        k = bisect.bisect_left(times, t_s)
        if k < len(times) and times[k] == t_s:
            out = dict(self._values[k])
        elif 0 < k < len(times):
            t0, t1 = times[k - 1], times[k]
            if t1 - t0 > 2 * self.max_gap_s:
                near = k - 1 if t_s - t0 <= t1 - t_s else k
                if abs(times[near] - t_s) > self.max_gap_s:
                    return {}
                out = dict(self._values[near])
            else:
                out = interpolate(self._values[k - 1], self._values[k], (t_s - t0) / (t1 - t0))
        else:
            near = 0 if k == 0 else len(times) - 1
            if abs(times[near] - t_s) > self.max_gap_s:
                return {}
            out = dict(self._values[near])
        self._prune(t_s - self.keep_s)
        return out

    def _prune(self, before_s: float) -> None:
        k = bisect.bisect_left(self._times, before_s)
        if k > 1:  # keep one sample before the horizon to interpolate from
            del self._times[: k - 1]
            del self._values[: k - 1]
