"""A console's client: every alert exactly once and in order, gaps filled from the replay endpoint.

The publisher numbers alerts per epoch (a run of the engine) and journals them before sending.
The client remembers the last (epoch, seq) it delivered and how far it has checked the journal
for its topics. When a live alert shows a gap (a higher seq, or a new epoch), or the heartbeat's
head is beyond what it has checked, it opens a gap: it asks the replay endpoint for everything
after its position on its topics and delivers nothing past the gap until the replay has
answered. Live alerts that arrive meanwhile are held (up to `buffer_max`; beyond that they are
fetched again from the journal, which has them). A request without an answer within
`replay_timeout_s`, or refused, is retried with exponential backoff and jitter, for as long as
it takes; `recv(timeout_s)` never waits longer than its timeout meanwhile. A gap ends only when
the journal has answered: with the alerts, or saying they are gone (their epoch is not in the
journal, or they were pruned), and then the lost seqs are logged as an error and listed in
`client.lost`. Alerts published while the journal was failing (`"durable": false`) are never
in it: every alert was journaled, or refused by the journal, before it was sent, so a reply to a
request sent after a live alert (or a heartbeat's head) arrived holds every alert the journal
will ever have up to there; an unfiltered console then reports the seqs it did not get as lost
and delivers the live alerts after them. Started with `after=(epoch, seq)` (say, from the end of
its own output file), it first catches up on what it missed while it was away.
The replay request (ids, timeouts, backoff) and the ledger of lost ranges are engine.alerts.gaps.

    client = AlertClient("tcp://host:5556", replay="tcp://host:5557", topics=["@police."])
    while (got := client.recv(timeout_s=1.0)) is not None: ...
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import zmq

from engine.alerts.gaps import (
    Losses,
    LostRange,
    Position,
    Received,
    ReplayAsker,
    ReplayFailed,
)
from engine.alerts.security import SocketSetup

__all__ = ["AlertClient", "LostRange", "Received"]

log = logging.getLogger(__name__)

DRAIN_MAX = 1000  # live messages read per poll


class AlertClient:
    """Subscribes to alerts and fills gaps from the replay endpoint.

    Args:
        endpoint: the publisher, e.g. tcp://127.0.0.1:5556.
        replay: its replay endpoint (None: no gap filling, gaps are only counted).
        topics: topic prefixes (empty: all alerts).
        after: (epoch, seq) already delivered in an earlier run; (None, 0) for "the whole
            journal"; None to start with what comes live.
        context: ZeroMQ context (created and owned if None).
        secure: CURVE client setup (engine.alerts.security.secure_client), or None.
        replay_timeout_s: how long one replay request may take before it is asked again.
        backoff_s: the wait after the first failed request; it doubles per failure.
        backoff_max_s: the longest wait between requests.
        buffer_max: live alerts held while a gap is open.

    Attributes:
        last: (epoch, seq) delivered last. replayed: alerts delivered from the replay endpoint.
        duplicates: live alerts dropped as already delivered. gaps: gaps filled from the
        journal. retries: replay requests that failed (and were asked again). lost: the
        ranges the journal no longer holds (newest MAX_LOST_KEPT). unrecoverable: how many
        such ranges. refetched: live alerts not held (buffer full), fetched from the journal.
        heartbeat: the engine's last heartbeat.
    """

    def __init__(
        self,
        endpoint: str,
        replay: str | None = None,
        topics: Sequence[str] = (),
        after: tuple[str | None, int] | None = None,
        context: zmq.Context | None = None,
        secure: SocketSetup | None = None,
        replay_timeout_s: float = 5.0,
        *,
        backoff_s: float = 0.1,
        backoff_max_s: float = 5.0,
        buffer_max: int = 10_000,
    ) -> None:
        self.endpoint = endpoint
        self.replay_endpoint = replay
        self.topics = tuple(topics)
        self.last: Position | None = after
        self.replayed = 0
        self.duplicates = 0
        self.gaps = 0
        self.refetched = 0
        self._losses = Losses()
        self.lost: list[LostRange] = self._losses.lost  # newest MAX_LOST_KEPT
        self.heartbeat: dict[str, Any] | None = None
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self._buffer_max = buffer_max
        self._out: deque[Received] = deque()  # ready to deliver, in order
        self._held: deque[Received] = deque()  # live alerts held while a gap is open
        self._epochs: dict[str, int] = {}  # epoch -> its place in the order seen
        self._checked: Position | None = after  # the journal holds nothing more on our topics
        self._gap = after is not None and replay is not None
        self._gap_replayed = 0
        self._target: Position | None = None  # a heartbeat's head or held alert not checked yet
        self._asked_target: Position | None = None  # the head known when it was sent
        self._asker = ReplayAsker(
            replay or "", self._ctx, secure, replay_timeout_s, backoff_s, backoff_max_s
        )
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.RCVHWM, 0)  # never drop on our side
        if secure:
            secure(self._sub)
        for t in (*self.topics, "health.") if self.topics else ("",):
            self._sub.setsockopt(zmq.SUBSCRIBE, t.encode())
        self._sub.connect(endpoint)

    # --- public -------------------------------------------------------------------------------

    @property
    def gap_open(self) -> bool:
        """True while alerts are missing and delivery waits for the replay endpoint."""
        return self._gap

    @property
    def retries(self) -> int:
        """Replay requests that failed (and were asked again)."""
        return self._asker.retries

    @property
    def unrecoverable(self) -> int:
        """How many ranges of alerts were lost (`lost` lists the newest)."""
        return self._losses.count

    def recv(self, timeout_s: float) -> Received | None:
        """The next alert in order, or None if none within `timeout_s` (also while a gap waits
        for the replay endpoint: delivery resumes, in order, once it answers)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self._out:
                return self._out.popleft()
            now = time.monotonic()
            self._drive(now)
            wait = min(deadline, self._next_event()) - now
            poller = zmq.Poller()
            poller.register(self._sub, zmq.POLLIN)
            if (req := self._asker.socket) is not None:
                poller.register(req, zmq.POLLIN)
            ready = dict(poller.poll(max(0, int(wait * 1000) + (wait > 0))))
            if req is not None and ready.get(req):
                self._on_reply(req.recv_multipart())
            if ready.get(self._sub):
                for _ in range(DRAIN_MAX):
                    try:
                        parts = self._sub.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._on_message(parts)
            if not self._out and time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        """Close the sockets (and the context, if owned). Idempotent."""
        if self._sub.closed:
            return
        self._sub.close(0)
        self._asker.close()
        if self._own_ctx:
            self._ctx.term()

    # --- positions ----------------------------------------------------------------------------

    def _at_or_before(self, pos: Position, ref: Position | None) -> bool:
        """`pos` comes no later than `ref` (False when the order is unknown)."""
        if ref is None or ref[0] is None or pos[0] is None:
            return False
        if pos[0] == ref[0]:
            return pos[1] <= ref[1]
        a, b = self._epochs.get(pos[0]), self._epochs.get(ref[0])
        return a is not None and b is not None and a < b

    def _note_epoch(self, epoch: str | None) -> None:
        if epoch is not None and epoch not in self._epochs:
            self._epochs[epoch] = len(self._epochs)

    def _check_to(self, pos: Position | None) -> None:
        """The journal has been read up to `pos` for our topics (an epoch not seen before is a
        later one: epochs only follow each other)."""
        if pos is None or pos[0] is None or self._at_or_before(pos, self._checked):
            return
        self._note_epoch(pos[0])
        self._checked = pos

    # --- live stream --------------------------------------------------------------------------

    def _wanted(self, topic: str) -> bool:
        return not self.topics or any(topic.startswith(t) for t in self.topics)

    def _on_message(self, parts: list[bytes]) -> None:
        if len(parts) < 2:
            return
        topic = parts[0].decode(errors="replace")
        try:
            msg = json.loads(parts[1])
        except ValueError:
            log.warning("undecodable message on %s dropped", topic)
            return
        if not isinstance(msg, dict):
            return
        if msg.get("type") == "lookout.engine.heartbeat":
            self._on_heartbeat(msg.get("data", {}))
            return
        if not self._wanted(topic) or "seq" not in msg or "epoch" not in msg:
            return
        self._on_alert(Received(topic, msg, parts[2] if len(parts) > 2 else None, False))

    def _on_alert(self, got: Received) -> None:
        pos = got.position
        if self.last is None:  # started live: the first alert sets the position
            self._deliver(got)
            return
        if self._at_or_before(pos, self.last):
            self.duplicates += 1
            return
        if self._gap:
            self._hold(got)
            return
        last, checked = self.last, self._checked
        follows = pos[0] == last[0] and pos[1] == last[1] + 1
        # nothing on our topics in the journal between what we have and this one
        covered = checked is not None and pos[0] == checked[0] and pos[1] <= checked[1] + 1
        if follows or covered or not self.replay_endpoint:
            if not (follows or covered):
                self.gaps += not self.topics  # filtered streams skip numbers by design
            self._deliver(got)
            return
        self._open_gap()
        self._hold(got)

    def _hold(self, got: Received) -> None:
        # sent after the journal took it (or refused it) and every alert before it: the next
        # request covers it, so its position is checked then whether the journal has it or not
        self._raise_target(got.position)
        if len(self._held) < self._buffer_max:
            self._held.append(got)
        else:
            self.refetched += 1  # journaled before it was sent: the replay brings it

    def _on_heartbeat(self, data: dict[str, Any]) -> None:
        self.heartbeat = data
        epoch, head = data.get("epoch"), data.get("head_seq", 0)
        if self.last is None or not self.replay_endpoint:
            return
        if not isinstance(epoch, str) or not epoch or not isinstance(head, int) or head < 1:
            return
        if self._at_or_before((epoch, head), self._checked):
            return  # checked up to there already: nothing new on our topics
        self._raise_target((epoch, head))
        self._open_gap()

    def _raise_target(self, pos: Position) -> None:
        if self._target is None or self._at_or_before(self._target, pos):
            self._target = pos

    def _deliver(self, got: Received) -> None:
        pos = got.position
        if not self.topics and self.replay_endpoint:
            self._losses.skipped(self.last, self._checked, pos)
        self._note_epoch(pos[0])
        self.last = pos
        self._check_to(pos)
        self._out.append(got)

    # --- replay -------------------------------------------------------------------------------

    def _open_gap(self) -> None:
        if not self._gap:
            self._gap = True
            self._gap_replayed = 0
            self._asker.next_try = 0.0

    def _next_event(self) -> float:
        if self._asker.asked is not None:
            return self._asker.deadline
        if self._gap:
            return self._asker.next_try
        return float("inf")

    def _drive(self, now: float) -> None:
        """Time out the request in flight; send the next one when it is due."""
        asker = self._asker
        if asker.asked is not None and now >= asker.deadline:
            self._fail(now, f"no answer from {self.replay_endpoint} within {asker.timeout_s} s")
        if self._gap and asker.asked is None and now >= asker.next_try:
            self._ask(now)

    def _ask(self, now: float) -> None:
        assert self.replay_endpoint is not None
        start = self._checked if self._checked is not None else self.last
        assert start is not None
        if not self._asker.ask(start, self.topics, now):
            self._fail(now, "the replay socket cannot send")
            return
        # the heartbeat (a held alert) went out after its head was journaled or refused by the
        # journal, so this reply covers it
        self._asked_target, self._target = self._target, None

    def _fail(self, now: float, reason: str) -> None:
        """A request got no usable answer: asked again after a backoff (on a fresh socket)."""
        assert self._asker.asked is not None and self.last is not None
        if self._asked_target is not None and self._target is None:
            self._target = self._asked_target  # still to be checked
        self._asked_target = None
        delay = self._asker.fail(now)
        failures = self._asker.failures
        if failures & (failures - 1) == 0:  # 1, 2, 4, 8...: a bounded log
            log.warning(
                "gap after epoch %s seq %d not filled (attempt %d: %s); delivery waits, %d live "
                "alerts held; asking again in %.2f s",
                *self.last,
                failures,
                reason,
                len(self._held),
                delay,
            )

    def _on_reply(self, frames: list[bytes]) -> None:
        now = time.monotonic()
        try:
            reply = self._asker.read(frames)
        except ReplayFailed as exc:
            self._fail(now, str(exc))
            return
        if reply is None:
            return  # an answer to an older request
        header, rows = reply
        n = self._asker.failures
        asked = self._asker.answered()
        if n:
            log.info("replay after epoch %s seq %d answered after %d failed attempts", *asked, n)
        self._losses.gone(asked, header, bool(self.topics))
        for got in rows:
            self._replayed(got)
        asked_target, self._asked_target = self._asked_target, None
        if header.get("more"):
            self._target = self._target or asked_target
            self._asker.next_try = 0.0  # the next page at once
            return
        head = header.get("head") or {}
        if isinstance(head.get("epoch"), str) and isinstance(head.get("seq"), int):
            self._check_to((head["epoch"], head["seq"]))
        self._check_to(asked_target)
        if self._target is not None and not self._at_or_before(self._target, self._checked):
            self._asker.next_try = 0.0  # a heartbeat told of more while this one was in flight
            return
        self._target = None
        self._gap = False
        self.gaps += self._gap_replayed > 0
        held, self._held = self._held, deque()
        for got in held:  # in arrival order; may open the next gap and hold the rest again
            self._on_alert(got)
        if not self._gap and not self.topics:
            self._losses.tail(self.last, self._checked)

    def _replayed(self, got: Received) -> None:
        pos = got.position
        assert self.last is not None
        # live alerts held that come before this row and are not in the journal (published
        # while the journal was failing) go first, in order
        while self._held:
            h = self._held[0].position
            if self._at_or_before(h, self.last):
                self._held.popleft()
                self.duplicates += 1
            elif (h[0] == pos[0] and h[1] < pos[1]) or (h[0] == self.last[0] != pos[0]):
                self._deliver(self._held.popleft())  # before it, or in the epoch before its
            else:
                break
        if self._at_or_before(pos, self.last):
            return
        self.replayed += 1
        self._gap_replayed += 1
        self._deliver(got)
