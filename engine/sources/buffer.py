"""The hand-over between a capture thread and the engine: a small bounded buffer.

Live feeds use the latest-frame policy: when the engine is slower than the camera the oldest
frame is dropped (and counted), so latency stays bounded by the buffer's length instead of
growing without end. Recorded files use the blocking policy: the reader waits, nothing is lost.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

__all__ = ["FrameBuffer"]

T = TypeVar("T")


class FrameBuffer(Generic[T]):
    """Bounded FIFO between one producer and one consumer.

    Args:
        maxlen: items held at most.
        drop_oldest: True: `put` never waits and drops the oldest item when full (live feeds);
            False: `put` waits for room (recorded files).
    """

    def __init__(self, maxlen: int, drop_oldest: bool) -> None:
        self.maxlen = maxlen
        self.drop_oldest = drop_oldest
        self.dropped = 0
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: T, timeout_s: float | None = None) -> bool:
        """Add an item; False if it could not be added (closed, or no room within the timeout)."""
        with self._cond:
            if not self.drop_oldest:
                self._cond.wait_for(
                    lambda: self._closed or len(self._items) < self.maxlen, timeout_s
                )
            if self._closed or (not self.drop_oldest and len(self._items) >= self.maxlen):
                return False
            while len(self._items) >= self.maxlen:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, timeout_s: float) -> T | None:
        """The oldest item, waiting up to `timeout_s`; None if none came (or closed and empty)."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or bool(self._items), timeout_s)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """Wake every waiter; items already held can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
