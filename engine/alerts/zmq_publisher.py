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

Publishing never depends on the journal silently. When a batch cannot be journaled (disk full,
a page damaged while running) it still goes out, each alert marked `"durable": false`, and one
critical `journal.failing` health event per failure episode says so; each later batch tries the
journal again and the first that succeeds raises `journal.recovered`. With `journal_on_failure:
stop` the publisher reports the failure as fatal (`fatal`) and the runner ends the run with it.
The heartbeat's `head_seq` is the stamper's last sequence number, published or not, so a console
always sees a gap. At start, a journal that is damaged or another program's file is moved aside
(`<name>.damaged-<UTC time>`) for a fresh one (`journal.replaced`), or refused under `stop`;
incidents an earlier run left open (a crash: its last phase journaled is not `end`) are ended
(`reason: engine_restarted`) by the first events this publisher hands the outlet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zmq

from engine.alerts.backlog import Backlog
from engine.alerts.journal import Journal, JournalDamaged, JournalRow, is_damage
from engine.alerts.replay import ReplayServer
from engine.alerts.security import CurveServer
from engine.alerts.wire import SCHEMA_VERSION, alert_body, ending_from_body
from engine.config import ZmqOutputConfig
from engine.errors import PublishError
from engine.state import state_dir
from engine.types import Alert, Event, HealthEvent

__all__ = ["HEARTBEAT_SOURCE", "RESTART_REASON", "ZmqPublisher", "default_journal", "move_aside"]

log = logging.getLogger(__name__)

HEARTBEAT_SOURCE = "@engine"  # not a valid source id, so it never collides with one
PRUNE_EVERY = 5000  # alerts between retention passes
RESTART_REASON = "engine_restarted"  # the end of an incident a crashed run left open
# Batches journaled in a row that end a failure episode: on a disk at its limit small batches
# fit where large ones do not, and one episode must not become a flood of failing/recovered.
RECOVER_AFTER = 3


def default_journal(endpoint: str) -> Path:
    """Where an endpoint's journal lives when the config names none."""
    tag = hashlib.sha1(endpoint.encode()).hexdigest()[:10]
    return state_dir() / f"journal-{tag}.db"


def move_aside(path: Path) -> Path:
    """Rename a journal file, with its -wal and -shm, to `<name>.damaged-<UTC time>`; returns
    the new path of the main file."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    for suffix in ("-wal", "-shm", ""):
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.rename(aside.with_name(aside.name + suffix))
    return aside


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
        self.journal_ok = True  # the last journal write succeeded
        self.not_durable = 0  # alerts published without being journaled
        self.fatal: str | None = None  # set when journal_on_failure: stop and it failed
        self._head = head
        self._pending: list[Event | HealthEvent] = []  # for the outlet to publish
        self._failing_since = 0  # first seq of the current journal failure episode
        self._failing = False  # in a failure episode (ends after RECOVER_AFTER good batches)
        self._good_batches = 0  # journaled in a row since the episode's last failure
        self._last_failed = 0  # seq of the last alert the journal refused
        # per incident, its last phase published while the journal refused it (open_incidents
        # gets it with the next batch the journal takes)
        self._owed: dict[str, JournalRow] = {}
        # alerts the journal refused, served by replay until a later batch journals them
        self.backlog = Backlog(cfg.journal_backlog_alerts, cfg.journal_backlog_mb << 20)
        self.never_journaled = 0  # alerts that overflowed the backlog: live only
        self._overflowing = False
        self._retry_at = 0.0  # while failing, the journal is not tried again before this
        self._t0 = time.monotonic()
        self._next_beat = 0.0
        self._since_prune = 0
        self._curve: CurveServer | None = None
        self._replay: ReplayServer | None = None
        self._sock: zmq.Socket | None = None
        self.journal_path = cfg.journal or default_journal(cfg.endpoint)
        self._context = context
        self.journal = self._open_journal()
        try:
            self._prepare(context)
        except BaseException:
            self.close()
            raise

    def _journal_at(self) -> Journal:
        cfg = self.cfg
        return Journal(self.journal_path, cfg.retention_days * 86400, cfg.retention_max_alerts)

    def _open_journal(self) -> Journal | None:
        """Open and check the journal; a damaged one is moved aside (or refused under stop).
        An existing journal that cannot be opened now (a full disk, an I/O error) is, under
        `publish`, a failure episode like a refused write: None, tried again later."""
        path = self.journal_path
        existed = path.exists()
        try:
            journal = self._journal_at()
        except Exception as exc:  # sqlite3.Error, OSError, JournalDamaged
            if not is_damage(exc):
                if self.cfg.journal_on_failure == "stop" or not existed:
                    raise PublishError(f"cannot open the alert journal {path}: {exc}") from None
                self._retry_at = time.monotonic() + self.cfg.journal_retry_s
                self._journal_failed(exc, self.head_seq + 1, self.head_seq)
                return None
            damage = str(exc) if isinstance(exc, JournalDamaged) else f"{path} is damaged: {exc}"
        else:
            try:
                journal.verify()
                return journal
            except JournalDamaged as exc:
                journal.close()
                damage = str(exc)
        if self.cfg.journal_on_failure == "stop":
            raise PublishError(
                f"alert journal {damage}; journal_on_failure is stop, so the engine does not "
                "start (move the file away, or set journal_on_failure: publish to start a "
                "fresh journal)"
            )
        try:
            aside = move_aside(path)
            journal = self._journal_at()
        except Exception as exc:  # sqlite3.Error, OSError
            raise PublishError(
                f"alert journal {damage}; cannot replace it with a fresh one: {exc}"
            ) from None
        text = (
            f"alert journal {damage}; moved to {aside.name} and started a fresh journal: "
            "alerts journaled before cannot be replayed"
        )
        log.error("%s", text)
        attributes = {"journal": str(path), "moved_to": str(aside), "error": damage}
        self._pending.append(
            HealthEvent("journal.replaced", HEARTBEAT_SOURCE, time.monotonic_ns(), text, attributes)
        )
        return journal

    def _end_left_open(self) -> None:
        """Queue the ends of incidents an earlier run left open (killed before ending them)."""
        if self.journal is None:
            return  # done when it opens
        try:
            bodies = self.journal.open_incidents()
        except sqlite3.Error as exc:
            log.error("journal %s: open incidents cannot be read: %s", self.journal_path, exc)
            return
        ends = []
        for body in bodies:
            try:
                ends.append(ending_from_body(body, RESTART_REASON))
            except ValueError as exc:
                log.warning(
                    "journal %s: an open incident cannot be ended: %s", self.journal_path, exc
                )
        if ends:
            log.warning("ending %d incident(s) the previous run left open", len(ends))
        self._pending.extend(ends)

    def take_events(self) -> list[Event | HealthEvent]:
        """Events this publisher wants on the stream (health of its journal, ends of incidents
        a crash left open); the outlet stamps and publishes them. Clears them."""
        out, self._pending = self._pending, []
        return out

    def _prepare(self, context: zmq.Context) -> None:
        cfg = self.cfg
        self._end_left_open()  # before this epoch's alerts: every open incident is an earlier run's
        if (epoch := self.epoch) and self.journal is not None:
            try:
                self.journal.begin_epoch(epoch)
            except (sqlite3.Error, OSError) as exc:  # a full disk at start: as on any write
                self._retry_at = time.monotonic() + self.cfg.journal_retry_s
                self._journal_failed(exc, 1, 0)  # the first append registers the epoch
        if cfg.curve is not None:
            self._curve = CurveServer(cfg.curve, context)

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
        if not self._journal(encoded):
            encoded = [(a, alert_body(a, durable=False), snap) for a, _, snap in encoded]
            self.not_durable += len(encoded)
            self._hold([self._row(a, body, snap) for a, body, snap in encoded])
        for a, body, snapshot in encoded:
            tail = [body, snapshot] if snapshot else [body]
            for topic in (a.topic, *a.routes):
                self._sock.send_multipart([topic.encode(), *tail], copy=False)
            self.sent += 1
        self._since_prune += len(alerts)
        if self._since_prune >= PRUNE_EVERY and self.journal_ok and self.journal is not None:
            self._since_prune = 0
            try:
                self.journal.prune()
            except (sqlite3.Error, OSError) as exc:
                log.warning("journal %s: retention pass failed: %s", self.journal_path, exc)

    @staticmethod
    def _row(a: Alert, body: bytes, snapshot: bytes | None) -> JournalRow:
        e = a.event
        event_id, phase = (e.event_id, e.phase) if isinstance(e, Event) else (None, None)
        return JournalRow(a.epoch, a.seq, (a.topic, *a.routes), body, snapshot, event_id, phase)

    def _hold(self, rows: list[JournalRow]) -> None:
        """Keep rows the journal refused in the backlog; the incidents of rows it drops to stay
        within its bounds go to `open_incidents` with the next batch the journal takes."""
        dropped = self.backlog.add(rows)
        for r in dropped:
            if r.event_id is not None:
                self._owed.pop(r.event_id, None)  # re-inserted: oldest first
                self._owed[r.event_id] = dataclasses.replace(r, snapshot=None)
        if dropped:
            self.never_journaled += len(dropped)
            if not self._overflowing:
                log.error(
                    "journal %s still failing and its backlog is full (%d alerts, %.0f MiB): "
                    "alerts %d-%d dropped from it went out live only and will never be "
                    "journaled; later drops are counted in journal.recovered",
                    self.journal_path,
                    self.backlog.max_rows,
                    self.backlog.max_bytes / 2**20,
                    dropped[0].seq,
                    dropped[-1].seq,
                )
            self._overflowing = True

    def _journal(self, encoded: list[tuple[Alert, bytes, bytes | None]]) -> bool:
        """Write the backlog and a batch to the journal in one transaction; False (reported
        once per episode) when it failed. While failing, the journal is tried again at most
        every `journal_retry_s`, not with each batch (a full disk, rewritten over and over)."""
        rows = [self._row(a, body, snap) for a, body, snap in encoded]
        first, last = encoded[0][0].seq, encoded[-1][0].seq
        now = time.monotonic()
        if not self.journal_ok and now < self._retry_at:
            self._last_failed = last
            return False
        if self.journal is None:
            try:
                self.journal = self._open_journal()
            except PublishError as exc:  # gone and not made again, or damaged, not replaced
                self._journal_failed(exc, first, last)
            if self.journal is None:
                self._retry_at = now + self.cfg.journal_retry_s
                self._last_failed = last
                return False
            log.warning("alert journal %s opened again", self.journal_path)
            self._end_left_open()  # the outlet publishes them with its next tick
        held = self.backlog.rows()
        try:
            self.journal.append(held + rows, list(self._owed.values()))
        except (sqlite3.Error, OSError) as exc:
            self._retry_at = now + self.cfg.journal_retry_s
            self._journal_failed(exc, first, last)
            return False
        self.backlog.clear()
        self._owed.clear()
        self._overflowing = False
        if held:
            log.warning(
                "journal %s: %d alert(s) published while it failed (%d-%d) are journaled now",
                self.journal_path,
                len(held),
                held[0].seq,
                held[-1].seq,
            )
        self.journal_ok = True
        self._good_batches += 1
        if self._failing and self._good_batches >= RECOVER_AFTER:
            self._failing = False
            lost = [
                f"{d.first}-{d.last}"
                for d in self.backlog.dropped
                if d.epoch == self.epoch and d.last >= self._failing_since  # this episode's
            ]
            text = (
                f"alert journal {self.journal_path} is written again; {self.not_durable} "
                f"alert(s) from {self._failing_since} to {self._last_failed} went out not "
                "durable; "
                + (
                    f"{self.never_journaled} of them overflowed the backlog and are not in the "
                    f"journal (seqs {', '.join(lost[-20:])})"
                    if self.never_journaled
                    else "every one of them is journaled now"
                )
            )
            log.warning("%s", text)
            attributes = {
                "journal": str(self.journal_path),
                "not_durable": self.not_durable,
                "from_seq": self._failing_since,
                "to_seq": self._last_failed,
                "never_journaled": self.never_journaled,
            }
            self._pending.append(
                HealthEvent(
                    "journal.recovered", HEARTBEAT_SOURCE, time.monotonic_ns(), text, attributes
                )
            )
        return True

    def _journal_failed(self, exc: BaseException, first: int, last: int) -> None:
        self.journal_ok = False
        self._good_batches = 0
        self._last_failed = last
        if self._failing:
            log.debug(
                "journal %s still failing (alerts %d-%d): %s", self.journal_path, first, last, exc
            )
            return
        self._failing = True
        self.not_durable = 0
        self.never_journaled = 0
        self._failing_since = first
        what = "is damaged" if is_damage(exc) else "cannot be written"
        stop = self.cfg.journal_on_failure == "stop"
        text = (
            f"alert journal {self.journal_path} {what} ({exc}) from alert {first}: alerts go "
            "out marked not durable, held for replay until the journal takes them; "
            + (
                "journal_on_failure is stop: the engine stops"
                if stop
                else f"retrying every {self.cfg.journal_retry_s:g} s"
            )
        )
        log.error("%s", text)
        attributes = {
            "journal": str(self.journal_path),
            "error": str(exc),
            "from_seq": first,
            "on_failure": self.cfg.journal_on_failure,
        }
        self._pending.append(
            HealthEvent("journal.failing", HEARTBEAT_SOURCE, time.monotonic_ns(), text, attributes)
        )
        if stop and self.fatal is None:
            self.fatal = (
                f"alert journal {self.journal_path} {what}: {exc} (from alert {first}); "
                "journal_on_failure is stop"
            )

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
                self.fatal = f"{exc} after revoking console keys; the engine stops"
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
        """Close sockets (queued alerts go out for up to 2 s), the replay thread, the journal.
        Idempotent, and safe before `start`."""
        self._unbind()
        self._curve = None
        if self.journal is None and len(self.backlog):
            try:  # a last try: the disk may have room by now
                self.journal = self._open_journal()
            except PublishError as exc:
                log.error("%s", exc)
        if self.journal is not None:
            self._flush_backlog()
            self.journal.close()
            self.journal = None
        elif len(self.backlog):
            self._report_unjournaled("the journal could not be opened")

    def _flush_backlog(self) -> None:
        """A last try to journal what the journal refused (at close)."""
        assert self.journal is not None
        if not len(self.backlog):
            return
        try:
            self.journal.append(self.backlog.rows(), list(self._owed.values()))
            self.backlog.clear()
        except (sqlite3.Error, OSError) as exc:
            self._report_unjournaled(str(exc))

    def _report_unjournaled(self, why: str) -> None:
        rows = self.backlog.rows()
        log.error(
            "alert journal %s: %d alert(s) (%d-%d) went out live but are not journaled: %s",
            self.journal_path,
            len(rows),
            rows[0].seq,
            rows[-1].seq,
            why,
        )


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
