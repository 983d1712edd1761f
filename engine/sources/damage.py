"""Damaged packets of one source: counted, and logged at a bounded rate.

A damaged file or a lossy link can yield a corrupt packet every frame; a line each would bury
every other log line (one damaged file once wrote 472). The first corrupt packet of a source is
logged, then at most one line per `every_s` while more come (how many since the last line and
in all), and `summary` writes one line at the end of a file (or of a live session).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["LOG_EVERY_S", "PacketDamage"]

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0


class PacketDamage:
    """Counts the corrupt packets of one source and logs them rate-limited (one thread).

    Args:
        source_id: the source (named in each line).
        every_s: at most one line per this long while corrupt packets keep coming.
        clock: seconds, monotonic (tests pass their own).

    Example:
        >>> damage = PacketDamage("cam1")
        >>> damage.corrupt("Invalid data found when processing input")  # logged
        >>> damage.corrupt("Invalid data found when processing input")  # counted only
        >>> damage.total
        2
    """

    def __init__(
        self,
        source_id: str,
        every_s: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source_id = source_id
        self.every_s = every_s
        self.total = 0
        self._clock = clock
        self._since_line = 0  # corrupt packets not yet in a line
        self._last_line: float | None = None
        self._summarised = 0

    def corrupt(self, why: object) -> None:
        """One corrupt packet was skipped."""
        self.total += 1
        self._since_line += 1
        now = self._clock()
        if self._last_line is not None and now - self._last_line < self.every_s:
            return
        if self._last_line is None:
            log.warning(
                "source %s: corrupt packet skipped: %s (further ones are counted and "
                "logged at most every %g s)",
                self.source_id,
                why,
                self.every_s,
            )
        else:
            log.warning(
                "source %s: %d more corrupt packets skipped in %.0f s (%d in all); last: %s",
                self.source_id,
                self._since_line,
                now - self._last_line,
                self.total,
                why,
            )
        self._last_line = now
        self._since_line = 0

    def summary(self, where: str) -> None:
        """One line for the corrupt packets since the last summary (none: no line)."""
        new = self.total - self._summarised
        if new:
            log.warning("source %s: %d corrupt packets skipped in %s", self.source_id, new, where)
        self._summarised = self.total
        self._since_line = 0
