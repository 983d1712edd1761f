"""A console's client: every alert exactly once and in order, gaps filled from the replay endpoint.

The publisher numbers alerts per epoch (a run of the engine) and journals them before sending.
The client remembers the last (epoch, seq) it delivered. When a live alert shows a gap (a
higher seq, or a new epoch), or the heartbeat's head is beyond what it has, it asks the replay
endpoint for everything after its position on its topics, delivers those in order, and drops
duplicates. Started with `after=(epoch, seq)` (say, from the end of its own output file), it
first catches up on what it missed while it was away.

    client = AlertClient("tcp://host:5556", replay="tcp://host:5557", topics=["@police."])
    while (got := client.recv(timeout_s=1.0)) is not None: ...
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zmq

from engine.alerts.security import SocketSetup

__all__ = ["AlertClient", "Received"]

log = logging.getLogger(__name__)

REPLAY_LIMIT = 5000


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


class ReplayUnavailable(RuntimeError):
    """The replay endpoint did not answer in time, or refused the request."""


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
        replay_timeout_s: how long one replay request may take.
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
    ) -> None:
        self.endpoint = endpoint
        self.replay_endpoint = replay
        self.topics = tuple(topics)
        self.last: tuple[str | None, int] | None = after
        self.replayed = 0  # alerts delivered from the replay endpoint
        self.duplicates = 0  # live alerts dropped because they were already delivered
        self.gaps = 0  # gaps noticed
        self.unrecoverable = 0  # gaps the journal could no longer fill
        self.heartbeat: dict[str, Any] | None = None
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self._secure = secure
        self._timeout_ms = int(replay_timeout_s * 1000)
        self._pending: deque[Received] = deque()
        self._epochs: list[str] = []  # epochs in the order seen
        self._sub = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        self._sub.setsockopt(zmq.RCVHWM, 0)  # never drop on our side
        if secure:
            secure(self._sub)
        for t in (*self.topics, "health.") if self.topics else ("",):
            self._sub.setsockopt(zmq.SUBSCRIBE, t.encode())
        self._sub.connect(endpoint)
        self._req: zmq.Socket | None = None
        if after is not None and replay:
            self._catch_up()

    # --- public -------------------------------------------------------------------------------

    def recv(self, timeout_s: float) -> Received | None:
        """The next alert in order, or None if none within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sub.poll(max(1, int(left * 1000))):
                return None
            self._on_message(self._sub.recv_multipart())
        return self._pending.popleft()

    def close(self) -> None:
        """Close the sockets (and the context, if owned)."""
        self._sub.close(0)
        if self._req is not None:
            self._req.close(0)
        if self._own_ctx:
            self._ctx.term()

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
        if msg.get("type") == "lookout.engine.heartbeat":
            self._on_heartbeat(msg.get("data", {}))
            return
        if not self._wanted(topic) or "seq" not in msg:
            return
        got = Received(topic, msg, parts[2] if len(parts) > 2 else None, replayed=False)
        epoch, seq = got.position
        if self.last is not None and not self._is_next(epoch, seq):
            if self._seen(epoch, seq):
                self.duplicates += 1
                return
            if self.replay_endpoint:
                before = self.replayed
                self._catch_up()
                self.gaps += self.replayed > before
                if self._seen(epoch, seq):
                    return  # the replay delivered it
            else:
                self.gaps += not self.topics  # filtered streams skip numbers by design
        self._deliver(got)

    def _on_heartbeat(self, data: dict[str, Any]) -> None:
        self.heartbeat = data
        epoch, head = data.get("epoch"), data.get("head_seq", 0)
        if self.last is None or not self.replay_endpoint or not isinstance(head, int) or head < 1:
            return
        if self.last[0] != epoch or self.last[1] < head:
            self._catch_up()  # alerts we have not seen, and none newer came to tell us

    def _is_next(self, epoch: str, seq: int) -> bool:
        """Unfiltered: exactly the next number. Filtered, numbers skip the others' alerts; only
        the replay can tell, so anything beyond the last is checked there."""
        assert self.last is not None
        last_epoch, last_seq = self.last
        return epoch == last_epoch and seq == last_seq + 1

    def _seen(self, epoch: str, seq: int) -> bool:
        """Already delivered: an earlier seq in the last epoch, or an earlier epoch."""
        assert self.last is not None
        last_epoch, last_seq = self.last
        if epoch == last_epoch:
            return seq <= last_seq
        return epoch in self._epochs  # an epoch we left behind

    def _deliver(self, got: Received) -> None:
        epoch, seq = got.position
        if not self._epochs or self._epochs[-1] != epoch:
            self._epochs.append(epoch)
        self.last = (epoch, seq)
        self._pending.append(got)

    # --- replay -------------------------------------------------------------------------------

    def _catch_up(self) -> None:
        """Deliver everything the journal holds after `last`, on our topics, in order."""
        assert self.last is not None
        while True:
            epoch, seq = self.last
            try:
                header, rows = self._request(epoch, seq)
            except ReplayUnavailable as exc:
                log.warning("gap not filled yet: %s", exc)
                return
            if not header.get("known_epoch", True) and epoch is not None:
                self.unrecoverable += 1
                log.error("the journal no longer holds epoch %s: alerts after seq %d are lost "
                          "to this console", epoch, seq)  # fmt: skip
            for got in rows:
                if self.last[0] is not None and self._seen(*got.position):
                    continue
                self.replayed += 1
                self._deliver(got)
            if not header.get("more"):
                return

    def _request(self, epoch: str | None, seq: int) -> tuple[dict[str, Any], list[Received]]:
        if self._req is None:
            self._req = self._ctx.socket(zmq.DEALER)
            self._req.setsockopt(zmq.LINGER, 0)
            if self._secure:
                self._secure(self._req)
            assert self.replay_endpoint is not None
            self._req.connect(self.replay_endpoint)
        req = {"op": "replay", "epoch": epoch, "after": seq, "topics": list(self.topics),
               "limit": REPLAY_LIMIT}  # fmt: skip
        self._req.send_multipart([b"", json.dumps(req).encode()])
        if not self._req.poll(self._timeout_ms):
            self._req.close(0)  # a late answer must not be taken for the next one
            self._req = None
            raise ReplayUnavailable(f"no answer from {self.replay_endpoint}")
        frames = self._req.recv_multipart()
        frames = frames[1:] if frames and frames[0] == b"" else frames
        header = json.loads(frames[0])
        if not header.get("ok"):
            raise ReplayUnavailable(f"replay refused: {header.get('error')}")
        rows = []
        body = frames[1:]
        for k in range(0, len(body) - 2, 3):
            topic, data, snap = body[k : k + 3]
            rows.append(Received(topic.decode(), json.loads(data), snap or None, replayed=True))
        return header, rows
