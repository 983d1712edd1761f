"""The alert journal under faults: a full disk, a damaged or foreign file, a crash mid-incident.

Real faults only: a tmpfs that fills up, bytes overwritten in a real SQLite file, a real engine
process killed with SIGKILL; real XPUB/SUB sockets on 127.0.0.1 see what a console would.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from engine.alerts import AlertStamper, ZmqPublisher
from engine.alerts.backlog import Backlog
from engine.alerts.client import AlertClient, Received
from engine.alerts.durable import DurableJournal
from engine.alerts.journal import Journal, JournalRow
from engine.alerts.outlet import AlertOutlet
from engine.alerts.replay import ReplayServer
from engine.alerts.schema import validate_message
from engine.config import Config, ZmqOutputConfig
from engine.errors import PublishError
from engine.types import Event
from tests.conftest import LOOKOUT, free_port, make_video, make_yolox_model, moving_square_frames


def _config(outputs: list[dict[str, Any]]) -> Config:
    return Config.model_validate(
        {
            "site": "site",
            "sources": [{"type": "file", "id": "cam1", "path": "unused.mp4"}],
            "detector": {"model": "unused.onnx"},
            "outputs": outputs,
        }
    )


def _event(k: int, snapshot_bytes: int = 0) -> Event:
    rng = np.random.default_rng(k)
    return Event(
        event_id=f"inc-{k}",
        kind="zone_presence",
        phase="start",
        source_id="cam1",
        rule_id="presence",
        pts_s=k / 10,
        capture_ns=time.monotonic_ns(),
        xyxy=np.array([[10, 20, 110, 220]], np.float32),
        score=np.array([0.9], np.float32),
        labels=("person",),
        track_id=np.array([k], np.int64),
        zone_id="zone",
        frame_size=(640, 480),
        snapshot=rng.bytes(snapshot_bytes) if snapshot_bytes else None,
    )


class _Console:
    """A SUB socket subscribed to everything, as `lookout subscribe` would be."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.alerts: list[dict[str, Any]] = []
        self.beats: list[dict[str, Any]] = []

    def drain(self, idle_s: float = 1.0) -> None:
        while self.sock.poll(int(idle_s * 1000)):
            frames = self.sock.recv_multipart()
            msg = json.loads(frames[1])
            validate_message(msg)
            if msg["type"] == "lookout.engine.heartbeat":
                self.beats.append(msg["data"])
            else:
                self.alerts.append(msg)

    def kinds(self) -> list[str]:
        return [a["data"]["kind"] for a in self.alerts]

    def close(self) -> None:
        self.sock.close(0)


def test_full_journal_disk_still_publishes_every_alert_and_says_so(
    small_disk: Callable[[int], Path],
) -> None:
    disk = small_disk(1_000_000)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * 600_000)  # freed later: a disk that gets space again
    log_disk = small_disk(16_384)  # the alerts file fills up too, and fails alone
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    cfg = _config(
        [
            {
                "type": "zmq",
                "endpoint": endpoint,
                "journal": str(disk / "j.db"),
                "heartbeat_s": 0.05,
                "wait_subscribers": 1,
                "journal_retry_s": 0,
            },
            {"type": "jsonl", "path": str(log_disk / "alerts.jsonl")},
        ]
    )
    ctx = zmq.Context()
    outlet = AlertOutlet(cfg, ctx, merge=False)
    outlet.start()
    console = _Console(ctx, endpoint)
    try:
        outlet.wait_for_subscribers()
        k = 0

        def batch() -> None:
            nonlocal k
            outlet.publish([_event(k + i, snapshot_bytes=8000) for i in range(4)])
            k += 4
            console.drain(0.05)

        while "journal.failing" not in console.kinds() and k < 400:
            batch()
        assert "journal.failing" in console.kinds(), "the journal never filled: no test"
        for _ in range(5):
            batch()  # still failing: said once, not per batch
        filler.unlink()
        for _ in range(3):
            batch()
        time.sleep(0.1)
        outlet.tick()
        console.drain()
        head = outlet.stamper.seq
    finally:
        console.close()
        outlet.close()
        ctx.term()
    seqs = [a["seq"] for a in console.alerts]
    assert seqs == list(range(1, head + 1))  # every alert produced reached the live console
    kinds = console.kinds()
    assert kinds.count("journal.failing") == 1 and kinds.count("journal.recovered") == 1
    assert kinds.index("journal.failing") < kinds.index("journal.recovered")
    failing = console.alerts[kinds.index("journal.failing")]
    assert failing["data"]["severity"] == "critical" and "full" in failing["data"]["reason"]
    not_durable = [a["seq"] for a in console.alerts if not a["durable"]]
    assert not_durable and all(a["durable"] for a in console.alerts[: not_durable[0] - 1])
    assert console.alerts[-1]["durable"], "writes succeed again once the disk has space"
    assert console.beats[-1]["head_seq"] == head and console.beats[-1]["journal_ok"]
    # the journal took the alerts it had refused with its first good write: it holds them all
    with closing(_reader(disk / "j.db")) as db:
        kept = {int(r[0]) for r in db.execute("SELECT seq FROM alerts")}
    assert kept == {a["seq"] for a in console.alerts}
    recovered = console.alerts[kinds.index("journal.recovered")]["data"]["attributes"]
    assert recovered["not_durable"] >= len(not_durable) - 1 and recovered["never_journaled"] == 0
    # the alerts file failed alone: a health event, whole lines only, the stream went on
    assert kinds.count("sink.failing") == 1
    lines = (log_disk / "alerts.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])


def test_a_console_joining_while_the_journal_is_full_still_gets_every_alert(
    small_disk: Callable[[int], Path],
) -> None:
    """Alerts the full journal refused are held and served by replay: a console that starts
    after they went out live gets every one, in order, and nothing is reported lost."""
    disk = small_disk(200_000)
    endpoint, replay = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    cfg = ZmqOutputConfig(
        endpoint=endpoint,
        replay_endpoint=replay,
        journal=disk / "j.db",
        heartbeat_s=0.05,
        journal_retry_s=0,
    )
    ctx = zmq.Context()
    stamper = AlertStamper("site")
    pub = ZmqPublisher(cfg, ctx, stamper.epoch, "site")
    pub.start()
    client = None
    try:
        k = 0
        while pub.journal_ok and k < 400:
            pub.send_many([stamper.stamp(_event(k, snapshot_bytes=8000))])
            k += 1
        assert not pub.journal_ok, "the journal never filled: no test"
        for _ in range(10):
            pub.send_many([stamper.stamp(_event(k, snapshot_bytes=8000))])
            k += 1
        head = stamper.seq
        assert len(pub.backlog) >= 10
        client = AlertClient(endpoint, replay=replay, after=(None, 0), context=ctx)
        got: list[Received] = []
        deadline = time.monotonic() + 60
        while len(got) < head and time.monotonic() < deadline:
            pub.tick()
            if (r := client.recv(0.1)) is not None:
                got.append(r)
    finally:
        if client is not None:
            client.close()
        pub.close()
        ctx.term()
    assert [r.position[1] for r in got] == list(range(1, head + 1))
    assert not got[-1].alert["durable"] and got[-1].snapshot  # from the backlog, snapshot too
    assert client.lost == []


def _fill(disk: Path) -> Path:
    """Write a file until the disk is full; its path (unlink it to free the room)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass  # the disk is full now
    finally:
        os.close(fd)
    return filler


def _journal_on_a_full_disk(disk: Path) -> tuple[Path, Path]:
    """An earlier run's journal (one alert of epoch e0) on `disk`, then the disk filled up:
    (the journal's path, the filler to unlink for room)."""
    path = disk / "j.db"
    with closing(Journal(path)) as old:
        old.append([JournalRow("e0", 1, ("load.site.cam1.",), b"{}", None)])
    return path, _fill(disk)


def test_an_engine_started_on_a_full_disk_publishes_and_journals_once_there_is_room(
    small_disk: Callable[[int], Path],
) -> None:
    """Restarted on a disk already full (its journal from an earlier run is there), the engine
    starts, publishes (not durable), serves the alerts by replay, and journals them all, its
    epoch included, as soon as the disk has room again."""
    path, filler = _journal_on_a_full_disk(small_disk(300_000))
    cfg = ZmqOutputConfig(
        endpoint=f"tcp://127.0.0.1:{free_port()}", journal=path, heartbeat_s=0, journal_retry_s=0
    )
    ctx = zmq.Context()
    stamper = AlertStamper("site")
    pub = ZmqPublisher(cfg, ctx, stamper.epoch, "site")
    pub.start()
    try:
        events = pub.take_events()
        assert [e.kind for e in events] == ["journal.failing"]
        pub.send_many([stamper.stamp(e) for e in events])
        pub.send_many([stamper.stamp(_event(k)) for k in range(3)])
        assert not pub.journal_ok and len(pub.backlog) == 4
        filler.unlink()
        pub.send_many([stamper.stamp(_event(3))])
        assert pub.journal_ok and len(pub.backlog) == 0
        rows, known = pub.journal.after(stamper.epoch, 0)
    finally:
        pub.close()
        ctx.term()
    assert known and [r.seq for r in rows] == [1, 2, 3, 4, 5]


def test_alerts_held_since_a_full_disk_start_are_journaled_at_close_if_there_is_room(
    small_disk: Callable[[int], Path],
) -> None:
    """The journal could not be opened at start and the run ends before a batch retried it:
    closing tries once more, so the alerts are not left out of the journal."""
    path, filler = _journal_on_a_full_disk(small_disk(300_000))
    cfg = ZmqOutputConfig(
        endpoint=f"tcp://127.0.0.1:{free_port()}", journal=path, heartbeat_s=0, journal_retry_s=600
    )
    ctx = zmq.Context()
    stamper = AlertStamper("site")
    pub = ZmqPublisher(cfg, ctx, stamper.epoch, "site")
    pub.start()
    try:
        pub.send_many([stamper.stamp(e) for e in pub.take_events()])
        pub.send_many([stamper.stamp(_event(k)) for k in range(2)])
        assert pub.journal is None and len(pub.backlog) == 3
        filler.unlink()
    finally:
        pub.close()
        ctx.term()
    with closing(_reader(path)) as db:
        kept = [int(r[0]) for r in db.execute("SELECT seq FROM alerts WHERE ord > 1")]
    assert kept == [1, 2, 3]


def test_a_run_the_journal_has_not_registered_is_replayed_from_the_backlog_alone(
    tmp_path: Path,
) -> None:
    """The epoch of a run that started on a full disk is not in the journal yet (its first
    good write registers it): a console asking after this run's alerts gets the held ones, not
    an earlier run's rows from the journal (delivered as new, they put that run after this one
    and every later alert of this run was dropped as a duplicate)."""
    path = tmp_path / "j.db"
    with closing(Journal(path)) as old:
        old.append(
            [JournalRow("e1", s, ("load.site.cam1.",), b'{"seq": %d}' % s, None) for s in (1, 2, 3)]
        )
    backlog = Backlog(max_rows=1000, max_bytes=1 << 20)
    backlog.add(
        [JournalRow("e2", s, ("load.site.cam1.",), b'{"seq": %d}' % s, None) for s in (1, 2, 3)]
    )
    ctx = zmq.Context()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    server = ReplayServer(endpoint, path, ctx, backlog=backlog)
    server.start()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoint)
    try:
        ask = {"op": "replay", "epoch": "e2", "after": 1}
        dealer.send_multipart([b"", json.dumps(ask).encode()])
        assert dealer.poll(10_000), "no answer"
        reply = dealer.recv_multipart()[1:]
    finally:
        dealer.close(0)
        server.close()
        ctx.term()
    header = json.loads(reply[0])
    assert header["ok"] and header["known_epoch"] and not header["more"]
    assert [json.loads(reply[2 + 3 * k]) for k in range(header["count"])] == [
        {"seq": 2},
        {"seq": 3},
    ]
    assert header["head"] == {"epoch": "e2", "seq": 3}


def test_a_journal_that_cannot_be_opened_again_does_not_stop_publishing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal that could not be opened at start is tried again with later batches; when
    that try cannot even make a fresh one (the file was deleted to free the full disk), the
    batch still goes out (not durable, held), rather than failing the sink and going nowhere."""
    path = tmp_path / "j.db"
    Journal(path).close()
    cfg = ZmqOutputConfig(
        endpoint=f"tcp://127.0.0.1:{free_port()}", journal=path, heartbeat_s=0, journal_retry_s=0
    )

    def full(self: DurableJournal) -> Journal:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(DurableJournal, "_journal_at", full)
    ctx = zmq.Context()
    stamper = AlertStamper("site")
    pub = ZmqPublisher(cfg, ctx, stamper.epoch, "site")
    pub.start()
    try:
        assert pub.journal is None and not pub.journal_ok
        path.unlink()  # freeing the disk; a fresh journal still cannot be made
        pub.send_many([stamper.stamp(_event(k)) for k in range(3)])
        pub.send_many([stamper.stamp(_event(3))])
        assert pub.sent == 4 and len(pub.backlog) == 4 and pub.fatal is None
    finally:
        pub.close()
        ctx.term()


class _Refusing:
    """A publisher (journal in `folder`, a backlog of 100) whose journal can be made to refuse
    every write, as SQLite does on a full disk, and to take them again."""

    def __init__(self, folder: Path) -> None:
        cfg = ZmqOutputConfig(
            endpoint=f"tcp://127.0.0.1:{free_port()}",
            journal=folder / "j.db",
            heartbeat_s=0,
            journal_retry_s=0,
            journal_backlog_alerts=100,
        )
        self.ctx = zmq.Context()
        self.stamper = AlertStamper("site")
        self.pub = ZmqPublisher(cfg, self.ctx, self.stamper.epoch, "site")
        self.pub.start()
        self._append = self.pub.journal.append

    def send(self, *events: Event) -> None:
        self.pub.send_many([self.stamper.stamp(e) for e in events])

    def refusing(self, refuse: bool) -> None:
        def full(*args: object, **kwargs: object) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        self.pub.journal.append = full if refuse else self._append  # type: ignore[method-assign]

    def close(self) -> None:
        self.pub.close()
        self.ctx.term()


def test_incidents_published_while_the_journal_failed_are_followed_once_it_recovers(
    tmp_path: Path,
) -> None:
    """An incident that starts while the journal refuses writes is in `open_incidents` once
    it takes them again (a crash then still ends it), and one that ended meanwhile is not
    (a restart does not end it twice)."""

    def phase(k: int, name: str) -> Event:
        return dataclasses.replace(_event(k), phase=name)

    rig = _Refusing(tmp_path)
    try:
        rig.send(phase(1, "start"))  # journaled
        rig.refusing(True)
        rig.send(phase(1, "end"), phase(2, "start"))
        rig.send(phase(2, "update"))
        rig.refusing(False)
        rig.send(phase(3, "start"))
        with closing(_reader(tmp_path / "j.db")) as db:
            open_ids = [r[0] for r in db.execute("SELECT event_id FROM open_incidents")]
            kept = [r[0] for r in db.execute("SELECT seq FROM alerts ORDER BY seq")]
    finally:
        rig.close()
    assert kept == [1, 2, 3, 4, 5]  # the refused ones came with the first good write
    assert sorted(open_ids) == ["inc-2", "inc-3"]


def test_incidents_of_alerts_that_overflowed_the_backlog_are_still_followed(
    tmp_path: Path,
) -> None:
    """Past the backlog's bound the oldest held alerts are dropped (live only, reported), but
    what they did to their incidents still reaches `open_incidents`."""
    rig = _Refusing(tmp_path)
    try:
        rig.refusing(True)
        rig.send(dataclasses.replace(_event(0), phase="start"))
        rig.send(*[_event(k) for k in range(1, 150)])
        rig.send(dataclasses.replace(_event(1), phase="end"))
        rig.refusing(False)
        rig.send(_event(500))
        dropped = [(d.first, d.last) for d in rig.pub.backlog.dropped]
        with closing(_reader(tmp_path / "j.db")) as db:
            open_ids = {r[0] for r in db.execute("SELECT event_id FROM open_incidents")}
            kept = [r[0] for r in db.execute("SELECT seq FROM alerts ORDER BY seq")]
    finally:
        rig.close()
    assert dropped == [(1, 51)] and rig.pub.never_journaled == 51
    assert kept == list(range(52, 153))
    assert "inc-0" in open_ids and "inc-1" not in open_ids and "inc-500" in open_ids


def _reader(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _damaged_journal(path: Path) -> None:
    """A real journal of 3000 alerts with random bytes written over 3 of its middle pages."""
    j = Journal(path)
    j.append(
        [
            JournalRow("a" * 16, k, ("zone_presence.site.cam1.",), b"x" * 900, None)
            for k in range(1, 3001)
        ]
    )
    j.close()
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.seek((size // 2) // 4096 * 4096)
        fh.write(np.random.default_rng(0).bytes(3 * 4096))


def _foreign_db(path: Path, sql: str) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute(sql)
        db.commit()


@pytest.mark.parametrize(
    "make",
    [
        _damaged_journal,
        lambda p: _foreign_db(p, "CREATE TABLE users (id INTEGER, name TEXT)"),
        lambda p: _foreign_db(p, "CREATE TABLE alerts (id INTEGER, text TEXT)"),
    ],
    ids=["garbage-pages", "other-tables", "other-columns"],
)
def test_damaged_journal_is_moved_aside_and_publishing_goes_on(
    tmp_path: Path, make: Callable[[Path], None]
) -> None:
    path = tmp_path / "j.db"
    make(path)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    cfg = _config(
        [{"type": "zmq", "endpoint": endpoint, "journal": str(path), "wait_subscribers": 1}]
    )
    ctx = zmq.Context()
    outlet = AlertOutlet(cfg, ctx, merge=False)
    outlet.start()
    console = _Console(ctx, endpoint)
    try:
        outlet.wait_for_subscribers()
        outlet.tick()
        for k in range(3):
            outlet.publish([_event(k)])
        console.drain()
    finally:
        console.close()
        outlet.close()
        ctx.term()
    kinds = console.kinds()
    assert kinds == ["journal.replaced", "zone_presence", "zone_presence", "zone_presence"]
    replaced = console.alerts[0]["data"]
    assert replaced["severity"] == "critical" and str(path) in replaced["reason"]
    assert all(a["durable"] for a in console.alerts)
    aside = list(tmp_path.glob("j.db.damaged-*"))
    assert [p.name for p in aside if not p.name.endswith(("-wal", "-shm"))], aside
    with closing(_reader(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 4


def test_damaged_journal_under_stop_refuses_to_start_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    _damaged_journal(path)
    size = path.stat().st_size
    video = make_video(tmp_path / "clip.mp4", moving_square_frames(10))
    model = make_yolox_model(tmp_path / "m.onnx")
    config = tmp_path / "lookout.yaml"
    config.write_text(
        json.dumps(
            {
                "sources": [{"type": "file", "id": "cam1", "path": str(video)}],
                "detector": {"model": str(model), "family": "yolox", "class_names": ["a", "b"]},
                "outputs": [
                    {
                        "type": "zmq",
                        "endpoint": f"tcp://127.0.0.1:{free_port()}",
                        "journal": str(path),
                        "journal_on_failure": "stop",
                    }
                ],
            }
        )
    )
    run = subprocess.run(
        [*LOOKOUT, "run", str(config), "--quiet"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    assert str(path) in run.stderr and "damaged" in run.stderr and "Traceback" not in run.stderr
    assert path.stat().st_size == size  # refused and left in place for the operator
    assert not list(tmp_path.glob("j.db.damaged-*"))
    with pytest.raises(PublishError, match="journal_on_failure is stop"):
        _ = AlertOutlet(
            _config(
                [
                    {
                        "type": "zmq",
                        "endpoint": f"tcp://127.0.0.1:{free_port()}",
                        "journal": str(path),
                        "journal_on_failure": "stop",
                    }
                ]
            ),
            zmq.Context.instance(),
            merge=False,
        )


@pytest.mark.assets
def test_incident_open_at_kill_9_is_ended_on_restart(
    assets: Callable[..., Path], tmp_path: Path
) -> None:
    clip = assets("footage/intel_one-by-one-person-detection.mp4")
    model = assets("models/yolo11n_coco_320.onnx")
    journal = tmp_path / "j.db"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    config = tmp_path / "lookout.yaml"
    config.write_text(
        json.dumps(
            {
                "sources": [{"type": "file", "id": "cam1", "path": str(clip), "loop": True}],
                "detector": {"model": str(model)},
                "zones": [
                    {
                        "id": "zone",
                        "source": "cam1",
                        "polygon": [[0, 0], [1e6, 0], [1e6, 1e6], [0, 1e6]],
                    }
                ],
                "rules": [
                    {
                        "type": "zone_presence",
                        "id": "presence",
                        "zone": "zone",
                        "classes": ["person"],
                    }
                ],
                "outputs": [{"type": "zmq", "endpoint": endpoint, "journal": str(journal)}],
            }
        )
    )
    run = [*LOOKOUT, "run", str(config), "--quiet", "--no-reload"]
    proc = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    open_id = None
    try:
        deadline = time.monotonic() + 120
        while open_id is None and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                with closing(_reader(journal)) as db:
                    row = db.execute("SELECT event_id FROM open_incidents").fetchone()
            except sqlite3.OperationalError:  # not created yet
                continue
            open_id = row[0] if row else None
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-incident, no shutdown at all
        proc.wait(10)
    assert open_id is not None, "no incident started within 120 s: no test"
    ctx = zmq.Context()
    console = _Console(ctx, endpoint)
    restart = subprocess.Popen(
        [*run, "--max-frames", "1", "--wait-subscribers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = restart.communicate(timeout=120)
        console.drain()
    finally:
        restart.kill()
        console.close()
        ctx.term()
    assert restart.returncode == 0, err
    ends = [a for a in console.alerts if a["data"].get("event_id") == open_id]
    assert ends and ends[0]["data"]["phase"] == "end" and ends[0]["subject"] == open_id
    assert ends[0]["data"]["attributes"]["reason"] == "engine_restarted"
    with closing(_reader(journal)) as db:
        left = [r[0] for r in db.execute("SELECT event_id FROM open_incidents")]
    assert open_id not in left  # ended once: a later restart does not end it again
