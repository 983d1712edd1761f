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

`alert_topics` indexes every (topic, alert) pair, written in the append's transaction and pruned
with the alerts, so a replay filtered by topic prefixes seeks the index (a prefix is the range
`topic >= p AND topic < successor(p)`) instead of reading the journal's tail: its cost is the
rows it returns plus one seek per distinct matching topic. Layout 2 added it; opening an older
file builds it from the alerts once.
"""

from __future__ import annotations

import heapq
import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "JOURNAL_VERSION",
    "Journal",
    "JournalDamaged",
    "JournalRow",
    "ReplayPage",
    "is_damage",
    "prefix_successor",
]

log = logging.getLogger(__name__)

# PRAGMA user_version of the layout below (0: written before it was set; 2: alert_topics added,
# so an older Lookout, which would not keep that index, refuses the file instead of staling it)
JOURNAL_VERSION = 2
TOPICS_INDEXED_SINCE = 2

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
CREATE TABLE IF NOT EXISTS alert_topics (
    topic TEXT NOT NULL,
    ord INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (topic, ord, seq)
) WITHOUT ROWID;
"""
# Columns the journal reads and writes, per table: a file whose tables lack them is not ours.
EXPECTED_COLUMNS = {
    "epochs": {"ord", "epoch", "started"},
    "alerts": {"ord", "seq", "written", "topics", "body", "snapshot"},
    "open_incidents": {"event_id", "ord", "seq", "body"},
    "alert_topics": {"topic", "ord", "seq"},
}
# The statements a topic-filtered replay runs (tests check their plans use the index).
TOPIC_NEXT_SQL = (
    "SELECT topic FROM alert_topics WHERE topic > ? AND topic < ? ORDER BY topic LIMIT 1"
)
TOPIC_NEXT_UNBOUNDED_SQL = "SELECT topic FROM alert_topics WHERE topic > ? ORDER BY topic LIMIT 1"
TOPIC_AFTER_SQL = (
    "SELECT ord, seq FROM alert_topics WHERE topic = ? AND (ord, seq) > (?, ?) ORDER BY ord, seq"
)
ALERT_AT_SQL = "SELECT topics, body, snapshot FROM alerts WHERE ord = ? AND seq = ?"
ALERTS_AFTER_SQL = (
    "SELECT ord, seq, topics, body, snapshot FROM alerts WHERE (ord, seq) > (?, ?) "
    "ORDER BY ord, seq"
)


def prefix_successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix` (None: no bound).

    SQLite compares TEXT as UTF-8 bytes, which orders like code points, so incrementing the
    last code point (skipping surrogates, which UTF-8 cannot hold) bounds the prefix's range.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = 0xE000 if 0xD800 <= last + 1 <= 0xDFFF else last + 1
            return "".join(chars) + chr(nxt)
    return None


@dataclass(frozen=True, slots=True)
class ReplayPage:
    """One page of a replay, read in one snapshot of the journal.

    Attributes:
        rows: alerts after the asked position, in publication order.
        known: whether the asked epoch is in the journal (False: never seen; rows then start
            at the oldest alert kept).
        more: rows after the last one exist (the limit or the byte budget cut the page).
        head: (epoch, seq) of the newest alert in the journal at that snapshot, (None, 0) if
            empty: with `more` False, everything up to it on the asked topics is in `rows`.
        first: (epoch, seq) of the oldest alert kept, (None, 0) if empty: alerts before it are
            gone (pruned).
        examined: index entries and rows read to build the page (its cost).
    """

    rows: list[JournalRow]
    known: bool
    more: bool
    head: tuple[str | None, int]
    first: tuple[str | None, int]
    examined: int


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
        max_age_s: alerts older than this are deleted by `prune` (None: no age limit).
        max_alerts: at most this many alerts are kept, the newest (None: no limit). The
            publisher passes its output's retention (its defaults live in the config).
    """

    def __init__(
        self,
        path: Path,
        max_age_s: float | None = None,
        max_alerts: int | None = None,
        readonly: bool = False,
    ) -> None:
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
                self._index_topics()
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

    def _index_topics(self) -> None:
        """Build `alert_topics` from the alerts of a file written before layout 2 (once)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # one migrator, even with two openers
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version >= TOPICS_INDEXED_SINCE:
                return
            t0 = time.monotonic()
            self._db.execute("DELETE FROM alert_topics")
            n = self._db.execute(
                "INSERT OR IGNORE INTO alert_topics (topic, ord, seq) "
                "SELECT j.value, a.ord, a.seq FROM alerts a, json_each(a.topics) j"
            ).rowcount
            self._db.execute(f"PRAGMA user_version = {TOPICS_INDEXED_SINCE}")
        if n > 0:
            took = time.monotonic() - t0
            log.info("journal %s: topic index built (%d entries, %.1f s)", self.path, n, took)

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
            self._db.execute(
                "INSERT OR IGNORE INTO epochs (epoch, started) VALUES (?, ?)", (epoch, time.time())
            )

    def _epoch_ord(self, epoch: str) -> int | None:
        if epoch not in self._ord:
            row = self._db.execute("SELECT ord FROM epochs WHERE epoch = ?", (epoch,)).fetchone()
            if row is None:
                return None
            self._ord[epoch] = int(row[0])
        return self._ord[epoch]

    def append(self, rows: list[JournalRow], incidents: Sequence[JournalRow] = ()) -> None:
        """Write alerts in one transaction (they are durable to the engine's crash on return).

        `incidents`: rule alerts published earlier without being journaled (the journal had
        refused them), oldest first; only what they did to `open_incidents` is written (first,
        in the same transaction), so a crash after the journal recovers still ends an incident
        that started while it failed, and does not end again one that ended meanwhile.
        """
        if not rows:
            return
        now = time.time()
        values = []
        for r in rows:
            values.append(
                (self._ord_of(r.epoch), r.seq, now, json.dumps(r.topics), r.body, r.snapshot)
            )
        owed = [(r, self._ord_of(r.epoch)) for r in incidents if r.event_id is not None]
        with self._db:
            for r, o in owed:
                self._note_incident(r, o)
            self._db.executemany(
                "INSERT OR REPLACE INTO alerts (ord, seq, written, topics, body, snapshot) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO alert_topics (topic, ord, seq) VALUES (?, ?, ?)",
                [(t, v[0], r.seq) for r, v in zip(rows, values, strict=True) for t in r.topics],
            )
            # in order, so an incident that starts and ends in one batch ends closed
            for r, (o, *_rest) in zip(rows, values, strict=True):
                self._note_incident(r, o)

    def _ord_of(self, epoch: str) -> int:
        o = self._epoch_ord(epoch)
        if o is None:
            self.begin_epoch(epoch)
            o = self._epoch_ord(epoch)
        assert o is not None
        return o

    def _note_incident(self, r: JournalRow, o: int) -> None:
        """Follow the incident `r` is a phase of in `open_incidents` (inside a transaction)."""
        if r.event_id is None:
            return
        if r.phase == "end":
            self._db.execute("DELETE FROM open_incidents WHERE event_id = ?", (r.event_id,))
        else:
            self._db.execute(
                "INSERT OR REPLACE INTO open_incidents (event_id, ord, seq, body) "
                "VALUES (?, ?, ?, ?)",
                (r.event_id, o, r.seq, r.body),
            )

    def after(
        self, epoch: str | None, seq: int, prefixes: tuple[str, ...] = (), limit: int = 1000
    ) -> tuple[list[JournalRow], bool]:
        """Alerts after (epoch, seq) in publication order, those with a topic starting with one
        of `prefixes` (all if empty); at most `limit`. Returns (rows, known): `known` is False
        when the epoch is not in the journal (never seen, or pruned), and the rows then start
        at the oldest alert kept."""
        page = self.page(epoch, seq, prefixes, limit)
        return page.rows, page.known

    def page(
        self,
        epoch: str | None,
        seq: int,
        prefixes: tuple[str, ...] = (),
        limit: int = 1000,
        max_bytes: int | None = None,
    ) -> ReplayPage:
        """A replay page: alerts after (epoch, seq) on `prefixes` (all if empty), at most
        `limit` rows and, past the first row, at most `max_bytes` of topics, bodies and
        snapshots; the head and the oldest alert from the same snapshot of the file.

        A filtered page reads the topic index: one seek per distinct topic under the prefixes,
        then the matching entries merged in order; never the alerts in between.

        Example:
            page = journal.page("3f2a...", 41, ("@police.",), limit=500, max_bytes=4 << 20)
        """
        own = not self._db.in_transaction
        if own:
            self._db.execute("BEGIN")  # a read snapshot: head, first and rows agree
        try:
            o = self._epoch_ord(epoch) if epoch is not None else None
            known = o is not None
            start = (o, seq) if o is not None else (-1, 0)
            names = dict(self._db.execute("SELECT ord, epoch FROM epochs").fetchall())
            head, first = self.head(), self.oldest()
            if prefixes:
                found = self._filtered(start, prefixes)
            else:
                found = (
                    (int(o_), int(s_), topics, body, snap, 1)
                    for o_, s_, topics, body, snap in self._db.execute(ALERTS_AFTER_SQL, start)
                )
            rows: list[JournalRow] = []
            size, examined, more = 0, 0, False
            for o_, s_, topics_json, body, snap, cost in found:
                examined += cost
                topics = tuple(json.loads(topics_json))
                if prefixes and not any(t.startswith(p) for t in topics for p in prefixes):
                    continue  # an index entry left by a replaced alert
                n = len(body) + len(snap or b"") + sum(map(len, topics))
                if len(rows) >= limit or (rows and max_bytes is not None and size + n > max_bytes):
                    more = True
                    break
                size += n
                rows.append(
                    JournalRow(names.get(o_, "?"), s_, topics, bytes(body), snap and bytes(snap))
                )
            return ReplayPage(rows, known, more, head, first, examined)
        finally:
            if own:
                self._db.execute("COMMIT")

    def _distinct_topics(self, prefix: str) -> Iterator[str]:
        """Distinct indexed topics starting with `prefix`, one index seek each."""
        hi = prefix_successor(prefix)
        row = self._db.execute(
            "SELECT topic FROM alert_topics WHERE topic >= ? "
            + ("AND topic < ? " if hi is not None else "")
            + "ORDER BY topic LIMIT 1",
            (prefix, hi) if hi is not None else (prefix,),
        ).fetchone()
        while row is not None:
            yield str(row[0])
            if hi is not None:
                row = self._db.execute(TOPIC_NEXT_SQL, (row[0], hi)).fetchone()
            else:
                row = self._db.execute(TOPIC_NEXT_UNBOUNDED_SQL, (row[0],)).fetchone()

    def _filtered(
        self, start: tuple[int, int], prefixes: tuple[str, ...]
    ) -> Iterator[tuple[int, int, str, bytes, bytes | None, int]]:
        """Alerts after `start` with a topic under `prefixes`, in order: the per-topic index
        runs merged (each is already in (ord, seq) order), duplicates dropped."""
        topics = {t for p in prefixes for t in self._distinct_topics(p)}
        runs = [self._db.execute(TOPIC_AFTER_SQL, (t, *start)) for t in sorted(topics)]
        last = None
        for key in heapq.merge(*runs):
            if key == last:
                continue
            last = key
            row = self._db.execute(ALERT_AT_SQL, key).fetchone()
            if row is not None:  # None: an entry whose alert is gone (aged out of order)
                yield int(key[0]), int(key[1]), row[0], row[1], row[2], 2
        for cur in runs:
            cur.close()

    def oldest(self) -> tuple[str | None, int]:
        """(epoch, seq) of the oldest alert kept, or (None, 0)."""
        row = self._db.execute(
            "SELECT e.epoch, a.seq FROM alerts a JOIN epochs e ON e.ord = a.ord "
            "ORDER BY a.ord, a.seq LIMIT 1"
        ).fetchone()
        return (str(row[0]), int(row[1])) if row else (None, 0)

    def head(self) -> tuple[str | None, int]:
        """(epoch, seq) of the newest alert, or (None, 0)."""
        row = self._db.execute(
            "SELECT e.epoch, a.seq FROM alerts a JOIN epochs e ON e.ord = a.ord "
            "ORDER BY a.ord DESC, a.seq DESC LIMIT 1"
        ).fetchone()
        return (str(row[0]), int(row[1])) if row else (None, 0)

    def count(self) -> int:
        """Alerts kept."""
        return int(self._db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])

    def prune(self) -> int:
        """Apply retention; returns how many alerts were deleted."""
        with self._db:
            old = 0
            if self.max_age_s is not None:
                old = self._db.execute(
                    "DELETE FROM alerts WHERE written < ?", (time.time() - self.max_age_s,)
                ).rowcount
            excess = 0 if self.max_alerts is None else self.count() - self.max_alerts
            if excess > 0:
                self._db.execute(
                    "DELETE FROM alerts WHERE (ord, seq) IN (SELECT ord, seq FROM alerts "
                    "ORDER BY ord, seq LIMIT ?)",
                    (excess,),
                )
            if old or excess > 0:
                self._prune_topics()
            return old + max(0, excess)

    def _prune_topics(self) -> None:
        """Drop index entries before the oldest alert kept (retention deletes the oldest), per
        topic so each delete is an index range."""
        first = self._db.execute("SELECT ord, seq FROM alerts ORDER BY ord, seq LIMIT 1").fetchone()
        if first is None:
            self._db.execute("DELETE FROM alert_topics")
            return
        for topic in list(self._distinct_topics("")):
            self._db.execute(
                "DELETE FROM alert_topics WHERE topic = ? AND (ord, seq) < (?, ?)", (topic, *first)
            )
