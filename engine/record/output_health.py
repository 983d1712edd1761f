"""Failure episodes of an output that can fail alone (clips, snapshots): said once, not per try.

An output that fails (a read-only folder, a full disk, an encoder error) must not take the
stream down, nor flood the alert stream: the first failure of an episode is one `sink.failing`
health event (and one error line), later failures are only counted, and the first success
after it is one `sink.recovered` event that says how many tries failed meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from engine.types import HealthEvent, HealthKind

__all__ = ["OutputHealth"]

log = logging.getLogger(__name__)


class OutputHealth:
    """Tracks one output's failure episode for one source (used from one thread).

    Args:
        output: the output's name in events (`clips`, `snapshots`).
        source_id: the source whose output it is.
        on_health: receives `sink.failing` / `sink.recovered` (None: logged only).

    Example:
        >>> h = OutputHealth("clips", "cam1", None)
        >>> h.failed("read-only file system"); h.failed("again"); h.failures
        2
    """

    def __init__(
        self, output: str, source_id: str, on_health: Callable[[HealthEvent], None] | None
    ) -> None:
        self.output = output
        self.source_id = source_id
        self.failing = False
        self.failures = 0  # in the current episode
        self.last_reason = ""
        self._on_health = on_health

    def failed(self, reason: str) -> None:
        """One try failed: the first of an episode is reported, the rest counted."""
        self.failures += 1
        self.last_reason = reason
        if self.failing:
            log.debug("source %s: %s still failing: %s", self.source_id, self.output, reason)
            return
        self.failing = True
        text = f"{self.output} cannot be written: {reason}; alerts go out without them"
        log.error("source %s: %s", self.source_id, text)
        self._emit("sink.failing", text, {"sink": self.output, "error": reason})

    def ok(self) -> None:
        """One try worked: ends an episode (reported once)."""
        if not self.failing:
            return
        text = f"{self.output} written again after {self.failures} failed tries"
        log.info("source %s: %s", self.source_id, text)
        self._emit("sink.recovered", text, {"sink": self.output, "failures": self.failures})
        self.failing, self.failures = False, 0

    def _emit(self, kind: HealthKind, reason: str, attributes: dict[str, object]) -> None:
        if self._on_health is not None:
            self._on_health(
                HealthEvent(kind, self.source_id, time.monotonic_ns(), reason, attributes)
            )
