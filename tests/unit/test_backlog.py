"""The backlog of alerts the journal refused: bounded by rows and bytes, dropped ranges exact."""

from __future__ import annotations

from engine.alerts.backlog import Backlog, DroppedRange
from engine.alerts.journal import JournalRow


def _row(seq: int, epoch: str = "e2", topic: str = "dumping.s.cam1.", size: int = 10) -> JournalRow:
    return JournalRow(epoch, seq, (topic,), b"x" * size, None)


def test_the_oldest_rows_go_first_and_their_ranges_are_kept() -> None:
    backlog = Backlog(max_rows=5, max_bytes=1 << 20)
    assert backlog.add([_row(s) for s in range(1, 6)]) == []
    dropped = backlog.add([_row(s) for s in range(6, 9)])
    assert [r.seq for r in dropped] == [1, 2, 3]
    backlog.add([_row(9)])
    assert [r.seq for r in backlog.rows()] == [5, 6, 7, 8, 9]
    assert backlog.dropped == [DroppedRange("e2", 1, 4)]  # one range, not one per drop
    assert backlog.head() == ("e2", 9)


def test_bytes_bound_the_backlog_too() -> None:
    backlog = Backlog(max_rows=1000, max_bytes=1000)
    backlog.add([_row(s, size=200) for s in range(1, 11)])
    assert backlog.nbytes <= 1000 and len(backlog) < 10
    assert backlog.rows()[-1].seq == 10
    backlog.clear()
    assert len(backlog) == 0 and backlog.nbytes == 0 and backlog.head() is None


def test_select_takes_what_comes_after_a_position_on_the_topics_asked() -> None:
    rows = [_row(s, topic="dumping.s.cam1." if s % 2 else "crowd.s.cam2.") for s in range(5, 11)]
    assert [r.seq for r in Backlog.select(rows, "e2", 7)] == [8, 9, 10]
    assert [r.seq for r in Backlog.select(rows, "e2", 4, ("dumping.",))] == [5, 7, 9]
    # another epoch (an earlier run's position) or none: the backlog is all after it
    assert [r.seq for r in Backlog.select(rows, "e1", 99)] == list(range(5, 11))
    assert [r.seq for r in Backlog.select(rows, None, 0)] == list(range(5, 11))
