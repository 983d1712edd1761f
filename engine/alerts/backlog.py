"""Alerts the journal refused, held in memory until it takes them again.

When the journal cannot be written (disk full, a page damaged while running) the publisher still
sends each alert, marked `durable: false`, and keeps its row here. The replay endpoint serves
these rows after the journal's own, so a console that missed them live still gets them while the
engine runs; the first batch the journal accepts again carries the whole backlog with it (one
transaction, oldest first), after which the backlog is empty. The backlog is bounded by rows and
bytes: past either bound its oldest rows are dropped, and the ranges dropped are kept (as seq
ranges, not alerts) so the loss can be told exactly.

Thread-safe: the publisher thread adds and drains; the replay thread reads snapshots.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from engine.alerts.journal import JournalRow

__all__ = ["Backlog", "DroppedRange"]


@dataclass(frozen=True, slots=True)
class DroppedRange:
    """Alerts first..last (inclusive) of one epoch that overflowed the backlog: published live
    but never journaled."""

    epoch: str
    first: int
    last: int


def _size(row: JournalRow) -> int:
    return len(row.body) + len(row.snapshot or b"") + sum(len(t) for t in row.topics) + 64


class Backlog:
    """Rows published but not yet journaled, newest last, within `max_rows` and `max_bytes`.

    Args:
        max_rows: rows kept at most.
        max_bytes: bytes of bodies, snapshots and topics kept at most.

    Example:
        backlog.add(rows)                 # the journal refused them
        journal.append(backlog.rows() + new_rows)  # one transaction
        backlog.clear()                   # now they are journaled
    """

    def __init__(self, max_rows: int, max_bytes: int) -> None:
        if max_rows < 1 or max_bytes < 1:
            raise ValueError(f"backlog bounds must be positive, got {max_rows}, {max_bytes}")
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._rows: deque[JournalRow] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self.dropped: list[DroppedRange] = []  # every overflow of this run, oldest first

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return self._bytes

    def add(self, rows: list[JournalRow]) -> list[JournalRow]:
        """Hold `rows` (in seq order, after those held); returns the oldest rows dropped to stay
        within the bounds (also recorded in `dropped` as ranges)."""
        out: list[JournalRow] = []
        with self._lock:
            for r in rows:
                self._rows.append(r)
                self._bytes += _size(r)
            while self._rows and (len(self._rows) > self.max_rows or self._bytes > self.max_bytes):
                r = self._rows.popleft()
                self._bytes -= _size(r)
                out.append(r)
        for r in out:
            last = self.dropped[-1] if self.dropped else None
            if last is not None and last.epoch == r.epoch and last.last + 1 == r.seq:
                self.dropped[-1] = DroppedRange(r.epoch, last.first, r.seq)
            else:
                self.dropped.append(DroppedRange(r.epoch, r.seq, r.seq))
        return out

    def rows(self) -> list[JournalRow]:
        """A copy of the rows held, oldest first."""
        with self._lock:
            return list(self._rows)

    def clear(self) -> None:
        """Forget the rows held (the journal has them now)."""
        with self._lock:
            self._rows.clear()
            self._bytes = 0

    @staticmethod
    def select(
        rows: list[JournalRow], epoch: str | None, seq: int, prefixes: tuple[str, ...] = ()
    ) -> list[JournalRow]:
        """Of `rows` (a copy from `rows()`), those after (epoch, seq) on `prefixes` (all if
        empty). Rows of another epoch than `epoch` all count as after it: the backlog only ever
        holds the newest alerts."""
        return [
            r
            for r in rows
            if not (epoch is not None and r.epoch == epoch and r.seq <= seq)
            and (not prefixes or any(t.startswith(p) for t in r.topics for p in prefixes))
        ]

    def head(self) -> tuple[str, int] | None:
        """(epoch, seq) of the newest row held, or None when empty."""
        with self._lock:
            if not self._rows:
                return None
            r = self._rows[-1]
            return r.epoch, r.seq
