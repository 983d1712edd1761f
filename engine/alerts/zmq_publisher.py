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

Publishing never depends on the journal silently: `engine.alerts.durable` keeps the journal,
the backlog of alerts it refused (sent marked `"durable": false`, served by replay) and its
failure episodes, and raises the health events (`journal.failing`, `journal.recovered`,
`journal.replaced`) and the ends of incidents a crashed run left open that this publisher hands
the outlet. The heartbeat's `head_seq` is the stamper's last sequence number, published or not,
so a console always sees a gap.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import zmq

from engine.alerts.backlog import Backlog
from engine.alerts.durable import (
    HEARTBEAT_SOURCE,
    RESTART_REASON,
    DurableJournal,
    default_journal,
    move_aside,
)
from engine.alerts.journal import Journal
from engine.alerts.replay import ReplayServer
from engine.alerts.security import CurveServer
from engine.alerts.wire import SCHEMA_VERSION, alert_body
from engine.config import ZmqOutputConfig
from engine.errors import PublishError
from engine.types import Alert, Event, HealthEvent

__all__ = ["HEARTBEAT_SOURCE", "RESTART_REASON", "ZmqPublisher", "default_journal", "move_aside"]

log = logging.getLogger(__name__)


class ZmqPublisher:
    """Binds the alert socket (and the replay endpoint) and publishes batches of alerts.

    The constructor opens the journal and checks the keys; `start` binds the endpoints and
    starts the threads (CURVE's authenticator, the replay server); `close` stops and releases
    all of it.

    Args:
        cfg: endpoints, journal, security, heartbeat.
        context: the ZeroMQ context (one per process, owned by the caller).
        epoch: the stamper's epoch (alerts carry it; the heartbeat too).
        site: for the heartbeat's topic.
        head: the stamper's last sequence number (the heartbeat's `head_seq`); None: the
            last one this publisher was given.

    Raises:
        PublishError: the journal cannot be opened (or is damaged and `journal_on_failure` is
            `stop`), or keys are bad.
    """

    def __init__(
        self,
        cfg: ZmqOutputConfig,
        context: zmq.Context,
        epoch: str = "",
        site: str = "site",
        head: Callable[[], int] | None = None,
    ) -> None:
        self.cfg = cfg
        self.epoch = epoch
        self.site = site
        self.subscribers = 0  # subscriptions seen (a console subscribing to 2 topics counts 2)
        self.sent = 0  # alerts published (each once, whatever its routes)
        self.head_seq = 0
        self._fatal: str | None = None  # set when the endpoints cannot be bound again
        self._head = head
        self._t0 = time.monotonic()
        self._next_beat = 0.0
        self._curve: CurveServer | None = None
        self._replay: ReplayServer | None = None
        self._sock: zmq.Socket | None = None
        self._context = context
        # opens the journal, registers the epoch, queues the ends of incidents left open
        self.durable = DurableJournal(cfg, epoch)
        self.journal_path = self.durable.path
        self.backlog: Backlog = self.durable.backlog  # served by replay after the journal
        try:
            if cfg.curve is not None:
                self._curve = CurveServer(cfg.curve, context)
        except BaseException:
            self.close()
            raise

    @property
    def journal(self) -> Journal | None:
        """The open journal, or None while it cannot be opened."""
        return self.durable.journal

    @property
    def journal_ok(self) -> bool:
        """The last journal write succeeded."""
        return self.durable.ok

    @property
    def not_durable(self) -> int:
        """Alerts published without being journaled (in the last failure episode)."""
        return self.durable.not_durable

    @property
    def never_journaled(self) -> int:
        """Alerts that overflowed the backlog (in the last failure episode): live only."""
        return self.durable.never_journaled

    @property
    def fatal(self) -> str | None:
        """Why the run must stop (the journal failed under `journal_on_failure: stop`, or the
        endpoints could not be bound again after revoking keys), or None."""
        return self._fatal if self._fatal is not None else self.durable.fatal

    def take_events(self) -> list[Event | HealthEvent]:
        """Events this publisher wants on the stream (health of its journal, ends of incidents
        a crash left open); the outlet stamps and publishes them. Clears them."""
        return self.durable.take_events()

    def start(self) -> None:
        """Bind the alert endpoint and the replay endpoint, and start their threads (CURVE's
        authenticator first, so no console connects unchecked). Once; before `send_many`.

        Raises:
            PublishError: an endpoint cannot be bound (what was started is closed again).
        """
        if self._sock is not None:
            return
        try:
            self._bind(self._context)
        except BaseException:
            self._unbind()
            raise
        log.info(
            "publishing alerts on %s (journal %s%s)",
            self.cfg.endpoint,
            self.journal_path,
            f", replay on {self.cfg.replay_endpoint}" if self.cfg.replay_endpoint else "",
        )

    def _bind(self, context: zmq.Context) -> None:
        cfg = self.cfg
        if self._curve is not None:
            self._curve.start()
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
                self._replay = ReplayServer(
                    cfg.replay_endpoint, self.journal_path, context, self._curve, self.backlog
                )
            except zmq.ZMQError as exc:
                raise PublishError(
                    f"cannot serve replays on {cfg.replay_endpoint}: {exc.strerror}"
                ) from None
            self._replay.start()

    def _unbind(self) -> None:
        """Stop the replay server and the authenticator, close the alert socket (idempotent)."""
        if self._replay is not None:
            self._replay.close()
            self._replay = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._curve is not None:
            self._curve.close()

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
                    self.cfg.endpoint,
                    self.subscribers,
                    want,
                    self.cfg.wait_timeout_s,
                )
                return False
            self._drain_subscriptions(int(min(left, 0.1) * 1000) + 1)
        return True

    def send(self, alert: Alert) -> None:
        """Journal and publish one alert."""
        self.send_many([alert])

    def send_many(self, alerts: list[Alert]) -> None:
        """Journal the batch (one transaction), then publish each alert under all its topics.
        Never blocks: beyond the high-water mark ZeroMQ drops, and the journal has it. A batch
        the journal refuses still goes out, marked not durable, and waits in the backlog (served
        by replay) until the journal takes it with a later batch."""
        assert self._sock is not None
        if not alerts:
            return
        self.head_seq = max(self.head_seq, alerts[-1].seq)
        self._drain_subscriptions(0)
        encoded = []
        for a in alerts:
            body = alert_body(a)
            snapshot = a.event.snapshot if isinstance(a.event, Event) else None
            snapshot = snapshot if self.cfg.snapshots else None
            encoded.append((a, body, snapshot))
        for a, body, snapshot in self.durable.write(encoded):
            tail = [body, snapshot] if snapshot else [body]
            for topic in (a.topic, *a.routes):
                self._sock.send_multipart([topic.encode(), *tail], copy=False)
            self.sent += 1
        self.durable.published(len(alerts))

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
            "specversion": "1.0",
            "type": "lookout.engine.heartbeat",
            "source": f"lookout://{self.site}/{HEARTBEAT_SOURCE}",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "dataschema": f"lookout.heartbeat/v{SCHEMA_VERSION}",
            "data": {
                "epoch": self.epoch,
                "head_seq": self._head() if self._head else self.head_seq,
                "journal_ok": self.journal_ok,
                "journal_backlog": len(self.backlog),
                "published": self.sent,
                "subscriptions": self.subscribers,
                "uptime_s": round(now - self._t0, 1),
                "replay": self.cfg.replay_endpoint,
                **(stats() if stats else {}),
            },
        }
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
            try:
                self._rebind()
            except PublishError as exc:
                # unbound and not bound again: publishing to no one must not go on silently
                self._fatal = f"{exc} after revoking console keys; the engine stops"
                raise
            log.warning(
                "%d console key(s) revoked: connections to %s dropped; allowed consoles reconnect",
                revoked,
                self.cfg.endpoint,
            )
        return added, revoked, self._curve.allowed

    def _rebind(self) -> None:
        """Drop every connection: unbind and bind the alert and replay endpoints again."""
        assert self._sock is not None and self._curve is not None
        sock = self._sock
        bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        sock.unbind(bound)
        _bind_again(bound, lambda: sock.bind(bound))
        if self._replay is not None and self.cfg.replay_endpoint:
            replay_ep, context, curve = self.cfg.replay_endpoint, sock.context, self._curve
            self._replay.close()
            self._replay = None
            self._replay = _bind_again(
                replay_ep,
                lambda: ReplayServer(replay_ep, self.journal_path, context, curve, self.backlog),
            )
            self._replay.start()

    def close(self) -> None:
        """Close sockets (queued alerts go out for up to 2 s), the replay thread, the journal
        (after a last try to journal what it refused). Idempotent, and safe before `start`."""
        self._unbind()
        self._curve = None
        self.durable.close()


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
