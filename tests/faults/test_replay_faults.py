"""The replay endpoint and the console client under faults (issue 20, findings 2-4).

2. The replay endpoint unreachable (a TCP proxy that black-holes it) while the console's live
   connection is cut: the console holds the gap, retries, and ends with every alert once, in
   order; alerts the journal no longer has are reported exactly.
3. A topic-filtered replay on a large journal seeks the topic index (counted in SQLite VM steps,
   not seconds), returns what a plain filter returns, and a filtered console does not ask again
   on every heartbeat.
4. A peer that floods the replay endpoint and never reads costs the serving process bounded
   memory, and a well-behaved console still gets its replay.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.alerts import AlertStamper, ZmqPublisher
from engine.alerts.client import AlertClient, LostRange, Received
from engine.alerts.journal import Journal, JournalRow
from engine.alerts.replay import ReplayServer
from engine.config import ZmqOutputConfig
from tests.conftest import free_port
from tests.faults.tcp_proxy import TcpProxy
from tests.support.alert_load import load_event


def _ep(port: int) -> str:
    return f"tcp://127.0.0.1:{port}"


def _pump(
    client: AlertClient,
    got: list[Received],
    until: Callable[[], bool],
    timeout_s: float,
    tick: Callable[[], None] = lambda: None,
) -> None:
    """Receive (ticking the publisher between calls) until `until()` or the timeout."""
    deadline = time.monotonic() + timeout_s
    while not until():
        assert time.monotonic() < deadline, f"gave up after {timeout_s} s with {len(got)}"
        tick()
        if (r := client.recv(0.05)) is not None:
            got.append(r)


@pytest.fixture
def ctx() -> zmq.Context:
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


# --- finding 2: a gap is never abandoned ------------------------------------------------------


def test_console_holds_a_gap_while_the_replay_is_blackholed_and_loses_nothing(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    pub_port, replay_port = free_port(), free_port()
    cfg = ZmqOutputConfig(
        endpoint=_ep(pub_port),
        replay_endpoint=_ep(replay_port),
        journal=tmp_path / "j.db",
        heartbeat_s=0.1,
        wait_subscribers=1,
        snapshots=False,
    )
    stamper = AlertStamper("site")
    pub = ZmqPublisher(cfg, ctx, stamper.epoch, "site")
    pub.start()
    live, replay = TcpProxy(pub_port), TcpProxy(replay_port)
    timeout_s = 0.5
    client = AlertClient(
        live.endpoint, replay.endpoint, after=(None, 0), context=ctx, replay_timeout_s=timeout_s
    )
    got: list[Received] = []

    def publish(first: int, last: int) -> None:
        pub.send_many([stamper.stamp(load_event(k)) for k in range(first, last + 1)])

    def seqs() -> list[int]:
        return [r.alert["seq"] for r in got]

    try:
        assert pub.wait_for_subscribers()
        publish(1, 10)
        _pump(client, got, lambda: len(got) >= 10, 20, pub.tick)
        # the replay endpoint becomes unreachable, and the console's live connection drops
        replay.blackhole()
        live.blackhole()
        live.cut()
        publish(11, 30)  # never reach the console live
        live.restore()  # it reconnects and hears the heartbeat's head and alerts 31..
        t_end = time.monotonic() + 6 * timeout_s
        k = 31
        while time.monotonic() < t_end:
            if k <= 60:
                publish(k, k)
                k += 1
            pub.tick()
            if (r := client.recv(0.05)) is not None:
                got.append(r)
        assert k == 61
        assert seqs() == list(range(1, 11)), "delivered past the gap while it was open"
        assert client.gap_open and client.retries >= 2
        replay.restore()
        _pump(client, got, lambda: len(got) >= 60, 30, pub.tick)
        publish(61, 70)
        _pump(client, got, lambda: len(got) >= 70, 20, pub.tick)
        end = time.monotonic() + 0.5
        _pump(client, got, lambda: time.monotonic() > end, 5, pub.tick)  # nothing more
        assert seqs() == list(range(1, 71))  # every alert exactly once, in order
        assert client.lost == [] and not client.gap_open
        assert all(r.replayed for r in got[10:30])
    finally:
        client.close()
        live.close()
        replay.close()
        pub.close()


def test_alerts_the_journal_no_longer_has_are_reported_exactly(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    path = tmp_path / "j.db"
    journal = Journal(path, max_alerts=20)
    topics = ("load.site.cam1.", "@city.load.site.cam1.")
    journal.append(
        [
            JournalRow("e1", k, topics, json.dumps({"epoch": "e1", "seq": k}).encode(), None)
            for k in range(1, 51)
        ]
    )
    assert journal.prune() == 30  # 1..30 gone, 31..50 kept
    replay_ep, nobody = _ep(free_port()), _ep(free_port())  # no live publisher: replay only
    server = ReplayServer(replay_ep, path, ctx)
    server.start()
    try:
        cases = [
            ((), ("e1", 5), [("e1", 6, 30)]),
            (("@city.",), ("e1", 5), [("e1", 6, 30)]),  # the pruned seqs, whatever their topic
            ((), ("gone", 7), [("gone", 8, None), ("e1", 1, 30)]),  # an epoch it does not know
        ]
        for topics, after, lost in cases:
            got, told = _replay_all(nobody, replay_ep, topics, after, ctx)
            assert [r.alert["seq"] for r in got] == list(range(31, 51))
            assert [(x.epoch, x.first, x.last) for x in told] == lost, (topics, after)
    finally:
        server.close()
        journal.close()


def _replay_all(
    pub: str, replay: str, topics: tuple[str, ...], after: tuple[str, int], ctx: zmq.Context
) -> tuple[list[Received], list[LostRange]]:
    """What a console resuming at `after` gets from the journal, and what it is told is lost."""
    got: list[Received] = []
    client = AlertClient(pub, replay, topics, after=after, context=ctx)
    try:
        _pump(client, got, lambda: len(got) >= 20 and not client.gap_open, 20)
        return got, client.lost
    finally:
        client.close()


def _failing_journal(pub: ZmqPublisher) -> None:
    """The publisher's journal refuses every write from now on, as on a full disk."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    pub.journal.append = refuse  # type: ignore[method-assign]


@pytest.mark.parametrize("heartbeat_s", [0.05, 0.0])
def test_alerts_missed_while_the_journal_failed_are_reported_and_the_stream_goes_on(
    tmp_path: Path, ctx: zmq.Context, heartbeat_s: float
) -> None:
    """A console that missed alerts published `durable: false` (the journal refused them) is
    told exactly which seqs it lost, and delivers the live alerts after them: it neither moves
    past them silently (the heartbeat's head) nor holds the next live alert forever (asking a
    journal that will never have it)."""
    pub_port, replay_ep = free_port(), _ep(free_port())
    cfg = ZmqOutputConfig(
        endpoint=_ep(pub_port),
        journal=tmp_path / "j.db",
        heartbeat_s=heartbeat_s,
        wait_subscribers=1,
        snapshots=False,
    )
    stamper = AlertStamper("site")
    pub = ZmqPublisher(cfg, ctx, stamper.epoch, "site")
    pub.start()
    # a replay server that does not see the publisher's backlog of refused alerts: what a
    # console finds after an engine that crashed while its journal failed
    server = ReplayServer(replay_ep, pub.journal_path, ctx)
    server.start()
    got: list[Received] = []

    def publish(first: int, last: int) -> None:
        pub.send_many([stamper.stamp(load_event(k)) for k in range(first, last + 1)])

    publish(1, 5)  # journaled, no console yet
    _failing_journal(pub)
    publish(6, 10)  # not durable, no console yet: gone for good
    client = AlertClient(
        _ep(pub_port), replay_ep, after=(stamper.epoch, 5), context=ctx, replay_timeout_s=2.0
    )
    try:
        assert pub.wait_for_subscribers()
        _pump(client, got, lambda: not client.gap_open, 20, pub.tick)
        publish(11, 12)  # not durable either, but this console hears them live
        _pump(client, got, lambda: len(got) >= 2, 20, pub.tick)
        end = time.monotonic() + 0.5
        _pump(client, got, lambda: time.monotonic() > end, 5, pub.tick)
        assert [r.alert["seq"] for r in got] == [11, 12]
        assert [(x.epoch, x.first, x.last) for x in client.lost] == [(stamper.epoch, 6, 10)]
        assert not client.gap_open
    finally:
        client.close()
        server.close()
        pub.close()


# --- finding 3: topic filters use the index ---------------------------------------------------


def _vm_steps(journal: Journal, run: Callable[[], object]) -> int:
    """SQLite virtual-machine instructions (in hundreds) that `run` makes the journal execute."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    journal._db.set_progress_handler(count, 100)  # the work done, whatever the machine's speed
    try:
        run()
    finally:
        journal._db.set_progress_handler(None, 100)
    return steps[0]


def test_filtered_replay_on_a_large_journal_seeks_the_index(tmp_path: Path) -> None:
    n = 200_000
    journal = Journal(tmp_path / "j.db")
    dumping = {10, n - 10}
    rows = [
        JournalRow(
            "e1",
            k,
            ("dumping.site.cam2.", "@city.dumping.site.cam2.")
            if k in dumping
            else ("load.site.cam1.", "@police.load.site.cam1."),
            b"{}",
            None,
        )
        for k in range(1, n + 1)
    ]
    journal.append(rows)
    for prefix in ("dumping.", "@city.", "@city.dumping.site."):
        out: list[tuple[list[JournalRow], bool]] = []
        steps = _vm_steps(journal, lambda p=prefix, o=out: o.append(journal.after("e1", 10, (p,))))
        ((found, known),) = out
        assert known and [r.seq for r in found] == [n - 10]
        # a scan of the 199,990 alerts after seq 10 takes millions of instructions
        assert steps * 100 < 20_000, f"{prefix}: {steps * 100} VM steps: not an index seek"
    from engine.alerts.journal import ALERT_AT_SQL, TOPIC_AFTER_SQL, TOPIC_NEXT_SQL

    for sql in (TOPIC_AFTER_SQL, TOPIC_NEXT_SQL, ALERT_AT_SQL):
        plan = " ".join(
            str(r[3])
            for r in journal._db.execute("EXPLAIN QUERY PLAN " + sql, (1,) * sql.count("?"))
        )
        assert "USING PRIMARY KEY" in plan and "SCAN" not in plan, (sql, plan)
    journal.close()


def test_a_journal_from_before_the_index_gets_it_at_open(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
CREATE TABLE epochs (ord INTEGER PRIMARY KEY AUTOINCREMENT, epoch TEXT UNIQUE NOT NULL,
                     started REAL NOT NULL);
CREATE TABLE alerts (ord INTEGER NOT NULL, seq INTEGER NOT NULL, written REAL NOT NULL,
                     topics TEXT NOT NULL, body BLOB NOT NULL, snapshot BLOB,
                     PRIMARY KEY (ord, seq)) WITHOUT ROWID;
INSERT INTO epochs VALUES (1, 'e1', 0);
INSERT INTO alerts VALUES (1, 1, 0, '["a.s.c.", "@p.a.s.c."]', x'7b7d', NULL),
                          (1, 2, 0, '["b.s.c."]', x'7b7d', NULL);
""")
    db.commit()
    db.close()
    journal = Journal(path)
    assert [r.seq for r in journal.after(None, 0, ("@p.",))[0]] == [1]
    assert [r.seq for r in journal.after("e1", 0, ("b.",))[0]] == [2]
    journal.close()


_TOPICS = ["a.s.c1.", "a.s.c10.", "ab.s.c.", "@p.a.s.c1.", "@p.ab.s.c.", "é.s.\U0010ffff.", "b"]
_PREFIXES = st.sampled_from(
    ["", "a", "a.", "a.s.c1", "@p.", "@", "é", "é.s.\U0010ffff", "z", "b", "\U0010ffff"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    alerts=st.lists(
        st.tuples(st.sampled_from(["e1", "e2"]), st.sets(st.sampled_from(_TOPICS), min_size=1)),
        max_size=40,
    ),
    prefixes=st.lists(_PREFIXES, max_size=3),
    start=st.tuples(st.sampled_from(["e1", "e2", None]), st.integers(0, 45)),
    limit=st.integers(1, 50),
    prune_to=st.integers(0, 45),
)
def test_filtered_replay_returns_what_a_plain_filter_returns(
    tmp_path_factory: pytest.TempPathFactory,
    alerts: list[tuple[str, set[str]]],
    prefixes: list[str],
    start: tuple[str | None, int],
    limit: int,
    prune_to: int,
) -> None:
    journal = Journal(tmp_path_factory.mktemp("j") / "j.db", max_alerts=max(1, prune_to))
    journal.begin_epoch("e1")
    journal.begin_epoch("e2")  # e1 before e2, seqs from 1 in each
    rows = [
        JournalRow(epoch, k, tuple(sorted(t)), b"x" * k, None)
        for epoch in ("e1", "e2")
        for k, t in enumerate((t for e, t in alerts if e == epoch), 1)
    ]
    journal.append(rows)
    kept = rows
    if prune_to:
        journal.prune()
        kept = rows[max(0, len(rows) - prune_to) :]
    epoch, seq = start
    order = {"e1": 0, "e2": 1}
    known = epoch is not None  # both epochs are registered
    after = [r for r in kept if not known or (order[r.epoch], r.seq) > (order[epoch], seq)]
    want = [
        r for r in after if not prefixes or any(t.startswith(p) for t in r.topics for p in prefixes)
    ]
    got, got_known = journal.after(epoch, seq, tuple(prefixes), limit)
    assert got_known == known
    assert [(r.epoch, r.seq) for r in got] == [(r.epoch, r.seq) for r in want[:limit]]
    journal.close()


def test_filtered_console_asks_again_only_when_the_head_moves(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    pub_port, replay_ep = free_port(), _ep(free_port())
    cfg = ZmqOutputConfig(
        endpoint=_ep(pub_port), journal=tmp_path / "j.db", heartbeat_s=0.05, snapshots=False
    )
    stamper = AlertStamper("site")
    pub = ZmqPublisher(cfg, ctx, stamper.epoch, "site")
    pub.start()
    server = ReplayServer(replay_ep, pub.journal_path, ctx)
    server.start()
    client = AlertClient(_ep(pub_port), replay_ep, ["dumping."], after=(None, 0), context=ctx)
    got: list[Received] = []

    def publish(kind: str, count: int) -> None:
        events = [dataclasses.replace(load_event(k), kind=kind) for k in range(count)]
        pub.send_many([stamper.stamp(e) for e in events])

    try:
        publish("dumping", 1)
        publish("load", 100)
        _pump(client, got, lambda: len(got) >= 1, 20, pub.tick)
        quiet_end = time.monotonic() + 1.0  # ~20 heartbeats, nothing new
        _pump(client, got, lambda: time.monotonic() > quiet_end, 5, pub.tick)
        before = server.served
        quiet_end = time.monotonic() + 1.0
        _pump(client, got, lambda: time.monotonic() > quiet_end, 5, pub.tick)
        assert server.served == before, "asked again with nothing new in the journal"
        publish("load", 50)  # the head moves: one check, then quiet again
        quiet_end = time.monotonic() + 1.0
        _pump(client, got, lambda: time.monotonic() > quiet_end, 5, pub.tick)
        assert 1 <= server.served - before <= 3
        publish("dumping", 1)
        _pump(client, got, lambda: len(got) >= 2, 20, pub.tick)
        assert [r.alert["seq"] for r in got] == [1, 152]
    finally:
        client.close()
        server.close()
        pub.close()


# --- finding 4: replay is bounded per peer ----------------------------------------------------

SERVER = """
import os, sys
from pathlib import Path
import zmq
from engine.alerts.journal import Journal, JournalRow
from engine.alerts.replay import ReplayServer

path, endpoint, n, snap = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
j = Journal(path)
rows = [JournalRow("e1", k, ("load.site.cam1.",), ('{"epoch":"e1","seq":%d}' % k).encode(),
                   os.urandom(snap)) for k in range(1, n + 1)]
j.append(rows)
del rows
j.close()
ctx = zmq.Context()
server = ReplayServer(endpoint, path, ctx)
server.start()
print("READY", flush=True)
sys.stdin.read()
print("STATS", server.served, server.dropped, server.superseded, flush=True)
server.close()
ctx.term()
"""


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_peer_that_never_reads_costs_bounded_memory(tmp_path: Path, ctx: zmq.Context) -> None:
    n, snap_bytes, limit_mb = 2000, 8192, 150  # a full reply: ~16 MB
    replay_ep = _ep(free_port())
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp_path / "j.db"), replay_ep, str(n), str(snap_bytes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    flooders: list[zmq.Socket] = []
    client = None
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        rss0 = peak = _rss_mb(proc.pid)
        request = json.dumps({"op": "replay", "epoch": None, "after": 0, "limit": 5000}).encode()
        for _ in range(3):
            f = ctx.socket(zmq.DEALER)
            f.setsockopt(zmq.RCVHWM, 1)  # takes (almost) nothing off the wire
            f.setsockopt(zmq.RCVBUF, 4096)
            f.setsockopt(zmq.LINGER, 0)
            f.connect(replay_ep)
            flooders.append(f)
        for _ in range(100):
            for f in flooders:
                f.send_multipart([b"", request])
        nobody = _ep(free_port())
        client = AlertClient(nobody, replay_ep, after=(None, 0), context=ctx)
        got: list[Received] = []
        end = time.monotonic() + 4.0
        while time.monotonic() < end or len(got) < n:
            assert time.monotonic() < end + 30, f"the console got {len(got)} of {n}"
            for f in flooders:  # and they keep asking
                with contextlib.suppress(zmq.Again):
                    f.send_multipart([b"", request], zmq.NOBLOCK)
            if (r := client.recv(0.05)) is not None:
                got.append(r)
                while (r := client.recv(0)) is not None:
                    got.append(r)
            peak = max(peak, _rss_mb(proc.pid))
            if peak - rss0 > limit_mb:
                break  # unbounded: no need to watch it grow further
        assert peak - rss0 < limit_mb, f"RSS {rss0:.0f} -> {peak:.0f} MB under the flood"
        assert [r.alert["seq"] for r in got] == list(range(1, n + 1))
        assert all(r.snapshot is not None and len(r.snapshot) == snap_bytes for r in got)
    finally:
        for f in flooders:
            f.close(0)
        if client is not None:
            client.close()
        out, _ = proc.communicate("", timeout=30)
    stats = [line.split()[1:] for line in out.splitlines() if line.startswith("STATS")]
    _served, dropped, superseded = (int(x) for x in stats[0])
    assert dropped + superseded > 0, "the flood never reached the bound: no test"
