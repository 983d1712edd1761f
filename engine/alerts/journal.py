"""The alert journal: every alert is written to SQLite (WAL) before it is published.

Rows are keyed by (epoch, seq); epochs are ordered by when they started, so "everything after
(epoch E, seq S)" is the rest of epoch E followed by every later epoch. A replay server reads
it with its own connection while the publisher writes (WAL allows one writer beside readers).
Retention keeps the newest `max_alerts` and nothing older than `max_age_s`.

`open_incidents` holds, per incident whose last journaled phase is not `end`, that last alert
(kept in the same transaction as the append), so a restarted engine ends the incidents a crash
left open without scanning the journal. The file's layout version is `PRAGMA user_version`; a
file with other tables or columns, or failing `PRAGMA quick_check`, is refused with
`JournalDamaged` (the publisher decides whether to stop or to start a fresh journal).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JOURNAL_VERSION", "Journal", "JournalDamaged", "JournalRow", "is_damage"]

JOURNAL_VERSION = 1  # PRAGMA user_version of the layout below (0: written before it was set)

SCHEMA = """
CREATE TABLE IF NOT EXISTS epochs (
    ord INTEGER PRIMARY KEY AUTOINCREMENT,
    epoch TEXT UNIQUE NOT NULL,
    started REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    ord INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    written REAL NOT NULL,
    topics TEXT NOT NULL,
    body BLOB NOT NULL,
    snapshot BLOB,
    PRIMARY KEY (ord, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS open_incidents (
    event_id TEXT PRIMARY KEY,
    ord INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    body BLOB NOT NULL
) WITHOUT ROWID;
"""
# Columns the journal reads and writes, per table: a file whose tables lack them is not ours.
EXPECTED_COLUMNS = {
    "epochs": {"ord", "epoch", "started"},
    "alerts": {"ord", "seq", "written", "topics", "body", "snapshot"},
    "open_incidents": {"event_id", "ord", "seq", "body"},
}


class JournalDamaged(Exception):
    """The file is not a usable journal (corrupt pages, another program's database, a newer
    layout); the message names the file and what is wrong."""


def is_damage(exc: BaseException) -> bool:
    """True for SQLite errors that mean a damaged file, not a full disk or a lock."""
    name = getattr(exc, "sqlite_errorname", "")
    return (
        isinstance(exc, JournalDamaged)
        or name in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
        or (type(exc) is sqlite3.DatabaseError)
    )


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One journaled alert: its epoch, sequence number, topics, JSON body and snapshot."""

    epoch: str
    seq: int
    topics: tuple[str, ...]
    body: bytes
    snapshot: bytes | None
    event_id: str | None = None  # for rule events: the incident (open_incidents follows it)
    phase: str | None = None  # start, update or end


class Journal:
    """An SQLite journal file; one instance per thread (connections are not shared).

    Args:
        path: the database file (created with its folder).
        max_age_s: alerts older than this are deleted by `prune`.
        max_alerts: at most this many alerts are kept (the newest).
    """

    def __init__(self, path: Path, max_age_s: float = 7 * 86400, max_alerts: int = 1_000_000,
                 readonly: bool = False) -> None:  # fmt: skip
        self.path = path
        self.max_age_s = max_age_s
        self.max_alerts = max_alerts
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints, no fsync each
            if not readonly:
                self._check_layout()
                self._db.executescript(SCHEMA)
                self._db.execute(f"PRAGMA user_version = {JOURNAL_VERSION}")
        except BaseException:
            self._db.close()  # the caller may move the file aside
            raise
        self._ord: dict[str, int] = {}

    def _check_layout(self) -> None:
        """Raise JournalDamaged unless the file is empty or holds this journal's tables."""
        try:
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            names = [
                r[0]
                for r in self._db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
            columns = {
                t: {r[1] for r in self._db.execute(f"PRAGMA table_info({t})")}
                for t in names
                if t in EXPECTED_COLUMNS
            }
        except sqlite3.DatabaseError as exc:
            raise JournalDamaged(f"{self.path} is not a readable SQLite journal: {exc}") from None
        if version > JOURNAL_VERSION:
            raise JournalDamaged(
                f"{self.path} has journal layout {version}, newer than this Lookout's "
                f"{JOURNAL_VERSION}"
            )
        if names and "alerts" not in names:
            raise JournalDamaged(
                f"{self.path} is another program's database (tables {', '.join(sorted(names))}; "
                "expected alerts and epochs)"
            )
        for table, cols in columns.items():
            missing = EXPECTED_COLUMNS[table] - cols
            if missing:
                raise JournalDamaged(
                    f"{self.path}: table {table} lacks columns {', '.join(sorted(missing))} "
                    "(not a Lookout journal)"
                )

    def verify(self) -> None:
        """Check every page (`PRAGMA quick_check`; reads the whole file once).

        Raises:
            JournalDamaged: the check failed; the message names the file and the first problem.
        """
        try:
            rows = self._db.execute("PRAGMA quick_check(5)").fetchall()
        except sqlite3.DatabaseError as exc:
            raise JournalDamaged(f"{self.path} is damaged: {exc}") from None
        problems = [str(r[0]) for r in rows if r[0] != "ok"]
        if problems:
            raise JournalDamaged(f"{self.path} is damaged: {'; '.join(problems)[:300]}")

    def open_incidents(self) -> list[bytes]:
        """The last journaled alert (JSON body) of every incident not ended yet, oldest first."""
        cur = self._db.execute("SELECT body FROM open_incidents ORDER BY ord, seq")
        return [bytes(r[0]) for r in cur]

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def begin_epoch(self, epoch: str) -> None:
        """Register a publisher run (its alerts come after every earlier epoch's)."""
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO epochs (epoch, started) VALUES (?, ?)",
                             (epoch, time.time()))  # fmt: skip

    def _epoch_ord(self, epoch: str) -> int | None:
        if epoch not in self._ord:
            row = self._db.execute("SELECT ord FROM epochs WHERE epoch = ?", (epoch,)).fetchone()
            if row is None:
                return None
            self._ord[epoch] = int(row[0])
        return self._ord[epoch]

    def append(self, rows: list[JournalRow]) -> None:
        """Write alerts in one transaction (they are durable to the engine's crash on return)."""
        if not rows:
            return
        now = time.time()
        values = []
        for r in rows:
            o = self._epoch_ord(r.epoch)
            if o is None:
                self.begin_epoch(r.epoch)
                o = self._epoch_ord(r.epoch)
            values.append((o, r.seq, now, json.dumps(r.topics), r.body, r.snapshot))
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO alerts (ord, seq, written, topics, body, snapshot) "
                "VALUES (?, ?, ?, ?, ?, ?)", values)  # fmt: skip
            # in order, so an incident that starts and ends in one batch ends closed
            for r, (o, *_rest) in zip(rows, values, strict=True):
                if r.event_id is None:
                    continue
                if r.phase == "end":
                    self._db.execute("DELETE FROM open_incidents WHERE event_id = ?", (r.event_id,))
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO open_incidents (event_id, ord, seq, body) "
                        "VALUES (?, ?, ?, ?)",
                        (r.event_id, o, r.seq, r.body),
                    )

    def after(self, epoch: str | None, seq: int, prefixes: tuple[str, ...] = (),
              limit: int = 1000) -> tuple[list[JournalRow], bool]:  # fmt: skip
        """Alerts after (epoch, seq) in publication order, those with a topic starting with one
        of `prefixes` (all if empty); at most `limit`. Returns (rows, known): `known` is False
        when the epoch is not in the journal (never seen, or pruned), and the rows then start
        at the oldest alert kept."""
        o = self._epoch_ord(epoch) if epoch is not None else None
        known = o is not None
        cur = self._db.execute(
            "SELECT e.epoch, a.seq, a.topics, a.body, a.snapshot, a.ord FROM alerts a "
            "JOIN epochs e ON e.ord = a.ord WHERE (a.ord = ? AND a.seq > ?) OR a.ord > ? "
            "ORDER BY a.ord, a.seq",
            (o if known else -1, seq, o if known else -1),
        )  # fmt: skip
        rows: list[JournalRow] = []
        for ep, s, topics_json, body, snap, _ in cur:
            topics = tuple(json.loads(topics_json))
            if prefixes and not any(t.startswith(p) for t in topics for p in prefixes):
                continue
            rows.append(JournalRow(ep, int(s), topics, bytes(body), snap and bytes(snap)))
            if len(rows) >= limit:
                break
        cur.close()
        return rows, known

    def head(self) -> tuple[str | None, int]:
        """(epoch, seq) of the newest alert, or (None, 0)."""
        row = self._db.execute(
            "SELECT e.epoch, a.seq FROM alerts a JOIN epochs e ON e.ord = a.ord "
            "ORDER BY a.ord DESC, a.seq DESC LIMIT 1"
        ).fetchone()  # fmt: skip
        return (str(row[0]), int(row[1])) if row else (None, 0)

    def count(self) -> int:
        """Alerts kept."""
        return int(self._db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])

    def prune(self) -> int:
        """Apply retention; returns how many alerts were deleted."""
        with self._db:
            old = self._db.execute("DELETE FROM alerts WHERE written < ?",
                                   (time.time() - self.max_age_s,)).rowcount  # fmt: skip
            excess = self.count() - self.max_alerts
            if excess > 0:
                self._db.execute(
                    "DELETE FROM alerts WHERE (ord, seq) IN (SELECT ord, seq FROM alerts "
                    "ORDER BY ord, seq LIMIT ?)", (excess,))  # fmt: skip
            return old + max(0, excess)
