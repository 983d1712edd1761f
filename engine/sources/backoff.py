"""Reconnect pacing: exponential backoff with full jitter, forever, reset once data flows."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays before reconnect attempts: initial * factor**n, capped, each drawn in [d/2, d].

    Args:
        initial_s: the first delay's upper bound.
        max_s: the cap.
        factor: growth per failed attempt.
        rng: random source (seed it in tests); jitter keeps many cameras from reconnecting in step.

    Example:
        >>> b = Backoff(0.5, 8.0, rng=random.Random(1))
        >>> [round(b.next_delay(), 2) for _ in range(6)]
        [0.28, 0.92, 1.76, 2.51, 5.98, 5.8]
    """

    def __init__(
        self, initial_s: float, max_s: float, factor: float = 2.0, rng: random.Random | None = None
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; grows with each call until `reset`."""
        bound = min(self.max_s, self.initial_s * self.factor**self.attempts)
        self.attempts += 1
        return bound * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        """Back to the initial delay (call when a connection delivered frames)."""
        self.attempts = 0
