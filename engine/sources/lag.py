"""`source.lagging`: one meaning for every source that drops frames to keep latency bounded.

A source whose consumer (the engine) is slower than its producer (a camera, or a file played at
its own pace) drops the oldest frame it holds rather than queue it, so latency stays bounded.
It says so with a `source.lagging` health event when at least `LAGGING_MIN_DROPS` frames were
dropped since its last report, at most once per `LAGGING_EVERY_S`: attributes `dropped` (frames
dropped since the previous report) and `dropped_total` (since the source opened). One or two
frames dropped in a burst (a reconnect, a slow first inference) are no news.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.types import HealthEvent

__all__ = ["LAGGING_EVERY_S", "LAGGING_MIN_DROPS", "LagReporter"]

LAGGING_EVERY_S = 10.0  # at most one source.lagging per source this often
LAGGING_MIN_DROPS = 3  # drops since the last report that make news


class LagReporter:
    """Turns a source's running count of dropped frames into `source.lagging` events.

    Args:
        source_id: the source.
        on_health: where the event goes (None: nowhere; the count still advances).
        every_s: at most one event per this long.
        min_drops: frames dropped since the last event that make a new one.

    Example:
        lag = LagReporter("cam1", on_health)
        lag.update(buffer.dropped, "engine behind the camera")  # after each drop, any thread
    """

    def __init__(
        self,
        source_id: str,
        on_health: Callable[[HealthEvent], None] | None,
        every_s: float = LAGGING_EVERY_S,
        min_drops: int = LAGGING_MIN_DROPS,
    ) -> None:
        self.source_id = source_id
        self._on_health = on_health
        self._every_ns = int(every_s * 1e9)
        self._min_drops = min_drops
        self._reported = 0
        self._last_ns: int | None = None

    def update(self, dropped_total: int, why: str) -> HealthEvent | None:
        """Report if the drops since the last report make news; the event, or None."""
        new = dropped_total - self._reported
        now = time.monotonic_ns()
        if new < self._min_drops:
            return None
        if self._last_ns is not None and now - self._last_ns < self._every_ns:
            return None
        self._reported = dropped_total
        self._last_ns = now
        event = HealthEvent(
            "source.lagging",
            self.source_id,
            now,
            f"{why}: {new} frames dropped to keep latency bounded ({dropped_total} in all)",
            {"dropped": new, "dropped_total": dropped_total},
        )
        if self._on_health is not None:
            self._on_health(event)
        return event
