"""ZeroMQ publisher of alerts: journaled first, then sent on an XPUB socket; replay beside it.

Each alert is written to the SQLite journal (one transaction per batch) before any of it is
sent, so an alert a console missed — it was slow, disconnected, or not yet started — can be
fetched again from the replay endpoint. Messages are multipart [topic, JSON] or [topic, JSON,
JPEG snapshot]; an alert goes out under its own topic and under every agency route that claims
it. XPUB rather than PUB so that the publisher sees subscriptions arrive and can wait for the
expected consoles; the send high-water mark is raised far above ZeroMQ's default of 1000, which
drops silently under bursts. A heartbeat with the head sequence number and stats goes out every
`heartbeat_s` on `health.<site>.@engine.`, so a console learns of alerts it missed even when no
newer alert follows them. Off loopback the stream is CURVE-encrypted and only allow-listed
consoles can connect.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from engine.alerts.journal import Journal, JournalRow
from engine.alerts.replay import ReplayServer
from engine.alerts.security import CurveServer
from engine.alerts.wire import SCHEMA_VERSION, alert_body
from engine.config import ZmqOutputConfig
from engine.errors import PublishError
from engine.state import state_dir
from engine.types import Alert, Event

__all__ = ["HEARTBEAT_SOURCE", "ZmqPublisher", "default_journal"]

log = logging.getLogger(__name__)

HEARTBEAT_SOURCE = "@engine"  # not a valid source id, so it never collides with one
PRUNE_EVERY = 5000  # alerts between retention passes


def default_journal(endpoint: str) -> Path:
    """Where an endpoint's journal lives when the config names none."""
    tag = hashlib.sha1(endpoint.encode()).hexdigest()[:10]
    return state_dir() / f"journal-{tag}.db"


class ZmqPublisher:
    """Binds the alert socket (and the replay endpoint) and publishes batches of alerts.

    Args:
        cfg: endpoints, journal, security, heartbeat.
        context: the ZeroMQ context (one per process, owned by the caller).
        epoch: the stamper's epoch (alerts carry it; the heartbeat too).
        site: for the heartbeat's topic.

    Raises:
        PublishError: an endpoint cannot be bound, the journal cannot be opened, or keys are bad.
    """

    def __init__(self, cfg: ZmqOutputConfig, context: zmq.Context, epoch: str = "",
                 site: str = "site") -> None:  # fmt: skip
        self.cfg = cfg
        self.epoch = epoch
        self.site = site
        self.subscribers = 0  # subscriptions seen (a console subscribing to 2 topics counts 2)
        self.sent = 0  # alerts published (each once, whatever its routes)
        self.head_seq = 0
        self._t0 = time.monotonic()
        self._next_beat = 0.0
        self._since_prune = 0
        self._curve: CurveServer | None = None
        self._replay: ReplayServer | None = None
        self._sock: zmq.Socket | None = None
        self.journal_path = cfg.journal or default_journal(cfg.endpoint)
        try:
            self.journal = Journal(self.journal_path, cfg.retention_days * 86400,
                                   cfg.retention_max_alerts)  # fmt: skip
        except Exception as exc:  # sqlite3.Error, OSError
            raise PublishError(
                f"cannot open the alert journal {self.journal_path}: {exc}"
            ) from None
        try:
            self._open(context)
        except BaseException:
            self.close()
            raise
        log.info("publishing alerts on %s (journal %s%s)", cfg.endpoint, self.journal_path,
                 f", replay on {cfg.replay_endpoint}" if cfg.replay_endpoint else "")  # fmt: skip

    def _open(self, context: zmq.Context) -> None:
        cfg = self.cfg
        if epoch := self.epoch:
            self.journal.begin_epoch(epoch)
        if cfg.curve is not None:
            self._curve = CurveServer(cfg.curve, context)
        self._sock = context.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.SNDHWM, cfg.sndhwm)
        self._sock.setsockopt(zmq.LINGER, 2000)  # bounded flush of queued alerts on close
        # Pass every (un)subscribe, also duplicates, so two consoles on one topic count as two.
        self._sock.setsockopt(zmq.XPUB_VERBOSER, 1)
        if self._curve is not None:
            self._curve(self._sock)
        try:
            self._sock.bind(cfg.endpoint)
        except zmq.ZMQError as exc:
            raise PublishError(f"cannot publish on {cfg.endpoint}: {exc.strerror}") from None
        if cfg.replay_endpoint:
            try:
                self._replay = ReplayServer(cfg.replay_endpoint, self.journal_path, context,
                                            self._curve)  # fmt: skip
            except zmq.ZMQError as exc:
                raise PublishError(
                    f"cannot serve replays on {cfg.replay_endpoint}: {exc.strerror}"
                ) from None

    def _drain_subscriptions(self, timeout_ms: int) -> None:
        """Read subscribe/unsubscribe notices (XPUB delivers them as messages)."""
        assert self._sock is not None
        while self._sock.poll(timeout_ms, zmq.POLLIN):
            msg = self._sock.recv()
            if msg[:1] == b"\x01":
                self.subscribers += 1
            elif msg[:1] == b"\x00":
                self.subscribers = max(0, self.subscribers - 1)
            timeout_ms = 0

    def wait_for_subscribers(self) -> bool:
        """Block until `cfg.wait_subscribers` subscriptions arrived or the timeout passed."""
        want = self.cfg.wait_subscribers
        deadline = time.monotonic() + self.cfg.wait_timeout_s
        while self.subscribers < want:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning(
                    "%s: %d of %d subscribers after %.1f s; publishing anyway",
                    self.cfg.endpoint, self.subscribers, want, self.cfg.wait_timeout_s,
                )  # fmt: skip
                return False
            self._drain_subscriptions(int(min(left, 0.1) * 1000) + 1)
        return True

    def send(self, alert: Alert) -> None:
        """Journal and publish one alert."""
        self.send_many([alert])

    def send_many(self, alerts: list[Alert]) -> None:
        """Journal the batch (one transaction), then publish each alert under all its topics.
        Never blocks: beyond the high-water mark ZeroMQ drops, and the journal has it."""
        assert self._sock is not None
        self._drain_subscriptions(0)
        encoded = []
        for a in alerts:
            body = alert_body(a)
            snapshot = a.event.snapshot if isinstance(a.event, Event) else None
            snapshot = snapshot if self.cfg.snapshots else None
            encoded.append((a, body, snapshot))
        self.journal.append([JournalRow(a.epoch, a.seq, (a.topic, *a.routes), body, snap)
                             for a, body, snap in encoded])  # fmt: skip
        for a, body, snapshot in encoded:
            tail = [body, snapshot] if snapshot else [body]
            for topic in (a.topic, *a.routes):
                self._sock.send_multipart([topic.encode(), *tail], copy=False)
            self.sent += 1
            self.head_seq = a.seq
        self._since_prune += len(alerts)
        if self._since_prune >= PRUNE_EVERY:
            self._since_prune = 0
            self.journal.prune()

    def tick(self, stats: Callable[[], dict[str, Any]] | None = None) -> None:
        """Send the heartbeat if it is due (the publisher thread calls this often); `stats`
        gives the engine's figures to carry (called only when a heartbeat goes out)."""
        if not self.cfg.heartbeat_s or self._sock is None:
            return
        now = time.monotonic()
        if now < self._next_beat:
            return
        self._next_beat = now + self.cfg.heartbeat_s
        self._drain_subscriptions(0)
        beat = {
            "specversion": "1.0", "type": "lookout.engine.heartbeat",
            "source": f"lookout://{self.site}/{HEARTBEAT_SOURCE}",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "dataschema": f"lookout.heartbeat/v{SCHEMA_VERSION}",
            "data": {"epoch": self.epoch, "head_seq": self.head_seq, "published": self.sent,
                     "subscriptions": self.subscribers,
                     "uptime_s": round(now - self._t0, 1),
                     "replay": self.cfg.replay_endpoint, **(stats() if stats else {})},
        }  # fmt: skip
        topic = f"health.{self.site}.{HEARTBEAT_SOURCE}."
        self._sock.send_multipart([topic.encode(), json.dumps(beat).encode()])

    def reload_access(self) -> tuple[int, int, int]:
        """Re-read the CURVE allow-list; (keys added, keys revoked, keys allowed now). Call it
        on the thread that publishes (it owns the socket).

        ZAP checks a key only at the handshake, so when a key was revoked the alert and replay
        endpoints are unbound and bound again: every connection drops, allowed consoles
        reconnect by themselves (ZeroMQ's reconnect interval) and fill the gap from the
        journal, and the revoked one is refused. Added keys need nothing: the next handshake
        asks the new list.

        Raises:
            PublishError: the allow-list folder is gone (the previous list stays), or an
                endpoint cannot be bound again.
        """
        if self._curve is None or self._sock is None:
            return 0, 0, 0
        added, revoked = self._curve.reload()
        if revoked:
            sock = self._sock
            bound = sock.last_endpoint.decode()
            sock.unbind(bound)
            _bind_again(bound, lambda: sock.bind(bound))
            if self._replay is not None and self.cfg.replay_endpoint:
                replay_ep, context, curve = self.cfg.replay_endpoint, sock.context, self._curve
                self._replay.close()
                self._replay = None
                self._replay = _bind_again(
                    replay_ep, lambda: ReplayServer(replay_ep, self.journal_path, context, curve)
                )
            log.warning(
                "%d console key(s) revoked: connections to %s dropped; allowed consoles reconnect",
                revoked,
                self.cfg.endpoint,
            )
        return added, revoked, self._curve.allowed

    def close(self) -> None:
        """Close sockets (queued alerts go out for up to 2 s), the replay thread, the journal."""
        if self._replay is not None:
            self._replay.close()
            self._replay = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._curve is not None:
            self._curve.close()
            self._curve = None
        self.journal.close()


def _bind_again(endpoint: str, bind: Callable[[], Any]) -> Any:
    """`bind()`, retried while the endpoint is still held by the listener just closed (ZeroMQ
    releases it from its I/O thread, a moment later); PublishError after 5 s."""
    deadline = time.monotonic() + 5.0
    while True:
        try:
            return bind()
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                raise PublishError(f"cannot bind {endpoint} again: {exc.strerror}") from None
            time.sleep(0.01)
