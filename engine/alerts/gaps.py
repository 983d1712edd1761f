"""Filling a console's gaps: asking the replay endpoint, and the alerts lost for good.

`ReplayAsker` keeps one replay request in flight at a time on its own DEALER socket: each has an
id (a late answer to an older one is ignored), a timeout, and, once it failed, a retry after an
exponential backoff with jitter. `Losses` is the ledger of what a console will never get (the
journal no longer holds it, or never had it), each range logged once as an error. `AlertClient`
(engine.alerts.client) drives both from its socket loop and decides what is missing.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zmq

from engine.alerts.security import SocketSetup

__all__ = ["MAX_LOST_KEPT", "Losses", "LostRange", "Received", "ReplayAsker", "ReplayFailed"]

# The client's logger: these lines read as they did when the client wrote them itself.
log = logging.getLogger("engine.alerts.client")

REPLAY_LIMIT = 5000
MAX_LOST_KEPT = 1000  # lost ranges listed (the count goes on)

Position = tuple[str | None, int]


@dataclass(frozen=True, slots=True)
class Received:
    """One alert as delivered: its topic, JSON body (parsed), JPEG snapshot, and whether it came
    from the replay endpoint rather than live."""

    topic: str
    alert: dict[str, Any]
    snapshot: bytes | None
    replayed: bool

    @property
    def position(self) -> tuple[str, int]:
        """(epoch, seq)."""
        return str(self.alert["epoch"]), int(self.alert["seq"])


@dataclass(frozen=True, slots=True)
class LostRange:
    """Alerts this console will never get: seqs `first`..`last` of `epoch` (`last` None: to
    the end of that epoch). For a console with a topic filter the range counts journal seqs,
    which may include alerts that were not on its topics."""

    epoch: str
    first: int
    last: int | None
    reason: str

    def __str__(self) -> str:
        end = "end of epoch" if self.last is None else str(self.last)
        return f"epoch {self.epoch} seq {self.first}..{end} ({self.reason})"


class ReplayFailed(Exception):
    """A replay request got no usable answer; the message says why."""


class ReplayAsker:
    """One replay request at a time to a replay endpoint, retried with backoff when it fails.

    Args:
        endpoint: the replay endpoint.
        context: the ZeroMQ context.
        secure: CURVE client setup, or None.
        timeout_s: how long one request may take before it counts as failed.
        backoff_s: the wait after the first failure; it doubles per failure in a row.
        backoff_max_s: the longest wait between requests.

    Attributes:
        asked: the position the request in flight asked after (None: none in flight).
        deadline: when the request in flight has timed out. next_try: when the next request
        may go. failures: failed requests in a row. retries: failed requests in all.
    """

    def __init__(
        self,
        endpoint: str,
        context: zmq.Context,
        secure: SocketSetup | None,
        timeout_s: float,
        backoff_s: float,
        backoff_max_s: float,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.asked: Position | None = None
        self.deadline = 0.0
        self.next_try = 0.0
        self.failures = 0
        self.retries = 0
        self._ctx = context
        self._secure = secure
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._rng = random.Random()
        self._req_id = 0
        self._req: zmq.Socket | None = None

    @property
    def socket(self) -> zmq.Socket | None:
        """The socket an answer comes on, while a request is in flight."""
        return self._req if self.asked is not None else None

    def ask(self, start: Position, topics: Sequence[str], now: float) -> bool:
        """Ask for everything after `start` on `topics`; False when it could not be sent (the
        request then counts as in flight and timed out: call `fail`)."""
        if self._req is None:
            self._req = self._ctx.socket(zmq.DEALER)
            self._req.setsockopt(zmq.LINGER, 0)
            if self._secure:
                self._secure(self._req)
            self._req.connect(self.endpoint)
        self._req_id += 1
        req = {
            "op": "replay",
            "epoch": start[0],
            "after": start[1],
            "topics": list(topics),
            "limit": REPLAY_LIMIT,
            "id": self._req_id,
        }
        try:
            self._req.send_multipart([b"", json.dumps(req).encode()], zmq.NOBLOCK)
        except zmq.Again:
            self.asked, self.deadline = start, now
            return False
        self.asked, self.deadline = start, now + self.timeout_s
        return True

    def fail(self, now: float) -> float:
        """The request in flight failed: a fresh socket (a late answer must not be taken for
        the next one, and a stuck connection is dropped) and the next try after a backoff with
        jitter; returns that delay."""
        self.asked = None
        if self._req is not None:
            self._req.close(0)
            self._req = None
        self.failures += 1
        self.retries += 1
        delay = min(self._backoff_max_s, self._backoff_s * 2 ** (self.failures - 1))
        delay *= self._rng.uniform(0.5, 1.0)
        self.next_try = now + delay
        return delay

    def read(self, frames: list[bytes]) -> tuple[dict[str, Any], list[Received]] | None:
        """The header and rows of an answer; None for an answer to an older request.

        Raises:
            ReplayFailed: refused, or unreadable (call `fail`).
        """
        frames = frames[1:] if frames and frames[0] == b"" else frames
        try:
            header = json.loads(frames[0])
            if not isinstance(header, dict):
                raise ValueError("the header is not an object")
            if self.asked is None or header.get("id", self._req_id) != self._req_id:
                return None  # an answer to an older request
            if not header.get("ok"):
                raise ReplayFailed(f"replay refused: {str(header.get('error'))[:200]}")
            body = frames[1:]
            if len(body) != 3 * int(header.get("count", len(body) // 3)):
                raise ValueError(f"{len(body)} frames for {header.get('count')} alerts")
            rows = [
                Received(body[k].decode(), json.loads(body[k + 1]), body[k + 2] or None, True)
                for k in range(0, len(body), 3)
            ]
            for r in rows:
                r.position  # noqa: B018 - a row without epoch/seq is a bad reply
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ReplayFailed(f"unreadable reply: {exc}") from None
        return header, rows

    def answered(self) -> Position:
        """The request in flight was answered: what it asked after; the failures end."""
        asked = self.asked
        assert asked is not None
        self.asked = None
        self.failures = 0
        return asked

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._req is not None:
            self._req.close(0)
            self._req = None


class Losses:
    """The ranges of alerts a console will never get, newest MAX_LOST_KEPT listed in `lost`;
    `count` counts them all. Each is logged as an error once."""

    def __init__(self) -> None:
        self.lost: list[LostRange] = []
        self.count = 0
        self._lost_to: Position | None = None  # reported lost up to here (past the last alert)

    def gone(self, asked: Position, header: dict[str, Any], filtered: bool) -> None:
        """What the journal's answer says it no longer holds after `asked`."""
        epoch, seq = asked
        if epoch is None:
            return
        if not header.get("known_epoch", True):
            self.add(epoch, seq + 1, None, "the journal no longer holds that epoch")
            return
        first = header.get("first") or {}
        oldest = first.get("seq") if first.get("epoch") == epoch else None
        # unfiltered consoles see it exactly in the rows (a jump in seq)
        if filtered and isinstance(oldest, int) and oldest > seq + 1:
            self.add(epoch, seq + 1, oldest - 1, "pruned from the journal")

    def skipped(self, last: Position | None, checked: Position | None, pos: Position) -> None:
        """An unfiltered console delivers `pos` only once the journal was asked: the seqs
        between the last one delivered and `pos` are not in it (published while it failed, or
        pruned), so they are lost."""
        if last is None or last[0] is None or pos[0] is None:
            return
        if pos[0] == last[0]:
            done = last[1]
            if self._lost_to is not None and self._lost_to[0] == pos[0]:
                done = max(done, self._lost_to[1])
            if pos[1] > done + 1:
                self.add(pos[0], done + 1, pos[1] - 1, "not in the journal")
            return
        self.tail(last, checked)  # the rest of the last epoch, as far as the journal was checked
        if pos[1] > 1:
            self.add(pos[0], 1, pos[1] - 1, "not in the journal: before its oldest alert")

    def tail(self, last: Position | None, checked: Position | None) -> None:
        """The journal was checked past the last alert delivered (a heartbeat's head, a live
        alert held): the seqs in between that neither the journal nor the live stream brought
        are lost."""
        if last is None or checked is None or last[0] is None or checked[0] != last[0]:
            return
        done = last[1]
        if self._lost_to is not None and self._lost_to[0] == last[0]:
            done = max(done, self._lost_to[1])
        if checked[1] > done:
            self.add(last[0], done + 1, checked[1], "not in the journal")
            self._lost_to = checked

    def add(self, epoch: str, first: int, last: int | None, reason: str) -> None:
        """Record and log one lost range."""
        r = LostRange(epoch, first, last, reason)
        self.count += 1
        self.lost.append(r)
        del self.lost[:-MAX_LOST_KEPT]
        log.error("alerts lost to this console: %s", r)
