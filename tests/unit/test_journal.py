"""The alert journal: order across epochs, topic filters, unknown epochs, retention; and the
console's resume point and filters."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from engine.alerts.journal import Journal, JournalRow
from engine.cli.subscribe_cmd import resume_point, topics_for, wanted
from engine.config import parse_config
from engine.errors import ConfigError


def _rows(epoch: str, seqs: range, topic: str = "zone_presence.s.cam1.") -> list[JournalRow]:
    return [
        JournalRow(
            epoch,
            k,
            (topic, f"@police.{topic}") if k % 2 else (topic,),
            f'{{"seq": {k}}}'.encode(),
            None,
        )
        for k in seqs
    ]


def test_after_spans_epochs_in_order_and_filters_by_topic(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.append(_rows("aaaa", range(1, 6)))
    j.append(_rows("bbbb", range(1, 4)))  # the engine restarted: a new epoch
    rows, known = j.after("aaaa", 3)
    assert known and [(r.epoch, r.seq) for r in rows] == [
        ("aaaa", 4),
        ("aaaa", 5),
        ("bbbb", 1),
        ("bbbb", 2),
        ("bbbb", 3),
    ]
    police, _ = j.after("aaaa", 0, ("@police.",))
    assert [(r.epoch, r.seq) for r in police] == [
        ("aaaa", 1),
        ("aaaa", 3),
        ("aaaa", 5),
        ("bbbb", 1),
        ("bbbb", 3),
    ]
    unknown, known = j.after("zzzz", 2, limit=2)
    assert not known and [(r.epoch, r.seq) for r in unknown] == [("aaaa", 1), ("aaaa", 2)]
    assert j.head() == ("bbbb", 3)
    reader = Journal(tmp_path / "j.db")  # another connection (the replay thread's) sees it all
    assert reader.count() == 8
    j.close()
    reader.close()


def test_retention_keeps_the_newest(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", max_alerts=1000)
    j.append(_rows("aaaa", range(1, 1201)))
    assert j.prune() == 200 and j.count() == 1000
    rows, _ = j.after(None, 0, limit=1)
    assert rows[0].seq == 201
    aged = Journal(tmp_path / "j.db", max_age_s=-1)  # everything is too old
    assert aged.prune() == 1000 and aged.count() == 0


def test_a_journal_opened_without_retention_prunes_nothing(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")  # a reader's (replay, tools): the publisher's sets the limits
    j.append(_rows("aaaa", range(1, 51)))
    assert j.prune() == 0 and j.count() == 50


def test_resume_point_cuts_a_torn_last_line(tmp_path: Path) -> None:
    out = tmp_path / "console.jsonl"
    assert resume_point(out) is None
    out.write_bytes(b'{"epoch": "e1", "seq": 1}\n{"epoch": "e1", "seq": 2}\n{"epoch": "e1", "se')
    assert resume_point(out) == ("e1", 2)
    assert out.read_bytes().endswith(b'"seq": 2}\n')


def test_console_filters() -> None:
    args = argparse.Namespace(
        topic=[], kind=["dumping", "loitering"], agency="city", sensor=["cam2"], severity="warning"
    )
    assert topics_for(args) == ["@city.dumping.", "@city.loitering."]
    msg = {"data": {"sensors": ["cam2"], "severity": "critical"}}
    assert wanted(msg, args)
    assert not wanted({"data": {"sensors": ["cam2"], "severity": "info"}}, args)
    assert not wanted({"data": {"sensors": ["cam1"], "severity": "critical"}}, args)


def test_plaintext_off_loopback_is_refused_unless_explicit() -> None:
    base = """
sources: [{id: cam, type: file, path: x.mp4}]
detector: {model: m.onnx}
outputs: [{type: zmq, endpoint: 'tcp://0.0.0.0:5556'%s}]
"""
    with pytest.raises(ConfigError, match="not loopback: expected curve keys"):
        parse_config(base % "")
    assert parse_config(base % ", allow_plaintext: true").outputs[0].allow_plaintext
    parse_config(base.replace("0.0.0.0", "127.0.0.1") % "")  # loopback: fine
