"""The ZeroMQ publisher's journal: what it takes, what it refused, and what it says about it.

Publishing never depends on the journal silently. A batch the journal refuses (disk full, a page
damaged while running) still goes out, each alert marked `"durable": false`, and waits in the
backlog (served by replay) until a later batch takes it into the journal; one `journal.failing`
per failure episode says so, `journal.recovered` ends it. While failing, the journal is tried
again every `journal_retry_s`; under `journal_on_failure: stop` the failure is `fatal`. At start
a damaged journal (or another program's file) is moved aside for a fresh one (`journal.replaced`)
or refused under `stop`, and incidents a crashed run left open are ended (`engine_restarted`).
One thread calls it (the publisher's); the replay thread only reads the backlog.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.alerts.backlog import Backlog
from engine.alerts.journal import Journal, JournalDamaged, JournalRow, is_damage
from engine.alerts.wire import alert_body, ending_from_body
from engine.config import ZmqOutputConfig
from engine.errors import PublishError
from engine.state import state_dir
from engine.types import Alert, Event, HealthEvent, HealthKind

__all__ = ["HEARTBEAT_SOURCE", "RESTART_REASON", "DurableJournal", "default_journal", "move_aside"]

# The publisher's logger: these lines read as they did when the publisher wrote them itself.
log = logging.getLogger("engine.alerts.zmq_publisher")

HEARTBEAT_SOURCE = "@engine"  # not a valid source id, so it never collides with one
PRUNE_EVERY = 5000  # alerts between retention passes
RESTART_REASON = "engine_restarted"  # the end of an incident a crashed run left open
# Batches journaled in a row that end a failure episode: on a disk at its limit small batches
# fit where large ones do not, and one episode must not become a flood of failing/recovered.
RECOVER_AFTER = 3

Encoded = tuple[Alert, bytes, bytes | None]  # an alert, its JSON body, its snapshot (or None)


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


def _row(a: Alert, body: bytes, snapshot: bytes | None) -> JournalRow:
    e = a.event
    event_id, phase = (e.event_id, e.phase) if isinstance(e, Event) else (None, None)
    return JournalRow(a.epoch, a.seq, (a.topic, *a.routes), body, snapshot, event_id, phase)


class DurableJournal:
    """The journal of one ZeroMQ output, its backlog of refused alerts and its failure episodes.

    The constructor opens and checks the journal (a damaged one is moved aside, or refused under
    `stop`), registers the epoch and queues the ends of incidents an earlier run left open;
    `write` journals a batch before it is sent (`published` after); `take_events` hands over the
    health events and incident ends to publish; `close` makes a last try to journal the backlog.
    `journal` is None while the file cannot be opened; `backlog` is what replay serves after it;
    `ok` says the last write succeeded; `fatal` is set when it failed under `stop`.

    Args:
        cfg: the output (journal path, retention, backlog bounds, retry, on-failure policy).
        epoch: the stamper's epoch ("" registers none at start).

    Raises:
        PublishError: the journal cannot be opened (or is damaged and `journal_on_failure` is
            `stop`).

    Example:
        for alert, body, snapshot in durable.write(encoded):  # marked not durable if refused
            ...  # send it
    """

    def __init__(self, cfg: ZmqOutputConfig, epoch: str = "") -> None:
        self.cfg = cfg
        self.epoch = epoch
        self.path = cfg.journal or default_journal(cfg.endpoint)
        self.ok = True
        self.not_durable = 0  # alerts published without being journaled, in this episode
        self.fatal: str | None = None
        self.backlog = Backlog(cfg.journal_backlog_alerts, cfg.journal_backlog_mb << 20)
        self.never_journaled = 0  # alerts that overflowed the backlog: live only
        self._pending: list[Event | HealthEvent] = []  # for the outlet to publish
        self._head = 0  # the last seq written (or refused)
        self._failing_since = 0  # first seq of the current journal failure episode
        self._failing = False  # in a failure episode (ends after RECOVER_AFTER good batches)
        self._good_batches = 0  # journaled in a row since the episode's last failure
        self._last_failed = 0  # seq of the last alert the journal refused
        # per incident, its last phase the journal refused (open_incidents gets it next write)
        self._owed: dict[str, JournalRow] = {}
        self._overflowing = False  # the backlog dropped rows (logged once per overflow)
        self._retry_at = 0.0  # while failing, the journal is not tried again before this
        self._since_prune = 0
        self.journal = self._open_journal()
        try:
            self._end_left_open()  # before this epoch's alerts: every open incident is earlier
            if epoch and self.journal is not None:
                try:
                    self.journal.begin_epoch(epoch)
                except (sqlite3.Error, OSError) as exc:  # a full disk at start: as on any write
                    self._retry_at = time.monotonic() + cfg.journal_retry_s
                    self._journal_failed(exc, 1, 0)  # the first append registers the epoch
        except BaseException:
            self.close()
            raise

    def _journal_at(self) -> Journal:
        cfg = self.cfg
        return Journal(self.path, cfg.retention_days * 86400, cfg.retention_max_alerts)

    def _open_journal(self) -> Journal | None:
        """Open and check the journal; a damaged one is moved aside (or refused under stop).
        An existing journal that cannot be opened now (a full disk, an I/O error) is, under
        `publish`, a failure episode like a refused write: None, tried again later."""
        path = self.path
        existed = path.exists()
        try:
            journal = self._journal_at()
        except Exception as exc:  # sqlite3.Error, OSError, JournalDamaged
            if not is_damage(exc):
                if self.cfg.journal_on_failure == "stop" or not existed:
                    raise PublishError(f"cannot open the alert journal {path}: {exc}") from None
                self._retry_at = time.monotonic() + self.cfg.journal_retry_s
                self._journal_failed(exc, self._head + 1, self._head)
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
        attributes = {"journal": str(path), "moved_to": str(aside), "error": damage}
        self._raise(logging.ERROR, "journal.replaced", text, attributes)
        return journal

    def _end_left_open(self) -> None:
        """Queue the ends of incidents an earlier run left open (killed before ending them)."""
        if self.journal is None:
            return  # done when it opens
        try:
            bodies = self.journal.open_incidents()
        except sqlite3.Error as exc:
            log.error("journal %s: open incidents cannot be read: %s", self.path, exc)
            return
        ends = []
        for body in bodies:
            try:
                ends.append(ending_from_body(body, RESTART_REASON))
            except ValueError as exc:
                log.warning("journal %s: an open incident cannot be ended: %s", self.path, exc)
        if ends:
            log.warning("ending %d incident(s) the previous run left open", len(ends))
        self._pending.extend(ends)

    def _raise(self, level: int, kind: HealthKind, text: str, attributes: dict[str, Any]) -> None:
        """Log `text` and queue it as a health event of the engine's for the outlet."""
        log.log(level, "%s", text)
        event = HealthEvent(kind, HEARTBEAT_SOURCE, time.monotonic_ns(), text, attributes)
        self._pending.append(event)

    def take_events(self) -> list[Event | HealthEvent]:
        """Health events of the journal and ends of incidents left open, to publish; clears them."""
        out, self._pending = self._pending, []
        return out

    def write(self, encoded: list[Encoded]) -> list[Encoded]:
        """Journal a batch with the backlog (one transaction); the batch to send: `encoded`, or,
        if the journal refused it, marked not durable (and held until a later batch journals it)."""
        if not encoded:
            return encoded
        self._head = max(self._head, encoded[-1][0].seq)
        if self._journal(encoded):
            return encoded
        marked = [(a, alert_body(a, durable=False), snap) for a, _, snap in encoded]
        self.not_durable += len(marked)
        self._hold([_row(a, body, snap) for a, body, snap in marked])
        return marked

    def published(self, n: int) -> None:
        """Count `n` alerts sent; every PRUNE_EVERY a retention pass (while the journal works)."""
        self._since_prune += n
        if self._since_prune >= PRUNE_EVERY and self.ok and self.journal is not None:
            self._since_prune = 0
            try:
                self.journal.prune()
            except (sqlite3.Error, OSError) as exc:
                log.warning("journal %s: retention pass failed: %s", self.path, exc)

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
                    self.path,
                    self.backlog.max_rows,
                    self.backlog.max_bytes / 2**20,
                    dropped[0].seq,
                    dropped[-1].seq,
                )
            self._overflowing = True

    def _journal(self, encoded: list[Encoded]) -> bool:
        """Write the backlog and a batch in one transaction; False (reported once per episode)
        when it failed. While failing, it is tried again at most every `journal_retry_s`, not
        with each batch (a full disk, rewritten over and over)."""
        rows = [_row(a, body, snap) for a, body, snap in encoded]
        first, last = encoded[0][0].seq, encoded[-1][0].seq
        now = time.monotonic()
        if not self.ok and now < self._retry_at:
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
            log.warning("alert journal %s opened again", self.path)
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
                self.path,
                len(held),
                held[0].seq,
                held[-1].seq,
            )
        self.ok = True
        self._good_batches += 1
        if self._failing and self._good_batches >= RECOVER_AFTER:
            self._failing = False
            self._recovered()
        return True

    def _recovered(self) -> None:
        """Raise `journal.recovered`: how many alerts went out not durable, and which are lost."""
        lost = [
            f"{d.first}-{d.last}"
            for d in self.backlog.dropped
            if d.epoch == self.epoch and d.last >= self._failing_since  # this episode's
        ]
        text = (
            f"alert journal {self.path} is written again; {self.not_durable} "
            f"alert(s) from {self._failing_since} to {self._last_failed} went out not "
            "durable; "
            + (
                f"{self.never_journaled} of them overflowed the backlog and are not in the "
                f"journal (seqs {', '.join(lost[-20:])})"
                if self.never_journaled
                else "every one of them is journaled now"
            )
        )
        attributes = {
            "journal": str(self.path),
            "not_durable": self.not_durable,
            "from_seq": self._failing_since,
            "to_seq": self._last_failed,
            "never_journaled": self.never_journaled,
        }
        self._raise(logging.WARNING, "journal.recovered", text, attributes)

    def _journal_failed(self, exc: BaseException, first: int, last: int) -> None:
        """Alerts first..last were not journaled: a new episode is reported (once), or logged."""
        self.ok = False
        self._good_batches = 0
        self._last_failed = last
        if self._failing:
            log.debug("journal %s still failing (alerts %d-%d): %s", self.path, first, last, exc)
            return
        self._failing = True
        self.not_durable = 0
        self.never_journaled = 0
        self._failing_since = first
        what = "is damaged" if is_damage(exc) else "cannot be written"
        stop = self.cfg.journal_on_failure == "stop"
        text = (
            f"alert journal {self.path} {what} ({exc}) from alert {first}: alerts go "
            "out marked not durable, held for replay until the journal takes them; "
            + (
                "journal_on_failure is stop: the engine stops"
                if stop
                else f"retrying every {self.cfg.journal_retry_s:g} s"
            )
        )
        attributes = {
            "journal": str(self.path),
            "error": str(exc),
            "from_seq": first,
            "on_failure": self.cfg.journal_on_failure,
        }
        self._raise(logging.ERROR, "journal.failing", text, attributes)
        if stop and self.fatal is None:
            self.fatal = (
                f"alert journal {self.path} {what}: {exc} (from alert {first}); "
                "journal_on_failure is stop"
            )

    def close(self) -> None:
        """Journal the backlog (a last try: the disk may have room by now; opening the journal
        again if it was not open), then close the journal; what stays unjournaled is logged."""
        if self.journal is None and len(self.backlog):
            try:
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
            self.path,
            len(rows),
            rows[0].seq,
            rows[-1].seq,
            why,
        )
