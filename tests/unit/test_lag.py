"""`source.lagging` means one thing for every source: at least 3 frames dropped since the last
report, at most one report per interval, `dropped` since then and `dropped_total` in all."""

from __future__ import annotations

from engine.sources.lag import LagReporter
from engine.types import HealthEvent


def test_lagging_reports_new_drops_since_the_last_report_and_the_total() -> None:
    got: list[HealthEvent] = []
    lag = LagReporter("cam1", got.append, every_s=0.0)
    assert lag.update(2, "behind") is None  # a frame or two is no news
    first = lag.update(3, "behind")
    assert first is not None and first.attributes == {"dropped": 3, "dropped_total": 3}
    assert lag.update(5, "behind") is None  # 2 new since the last report
    second = lag.update(9, "behind")
    assert second is not None and second.attributes == {"dropped": 6, "dropped_total": 9}
    assert got == [first, second] and all(e.kind == "source.lagging" for e in got)
    assert "6 frames dropped" in second.reason and "9 in all" in second.reason


def test_lagging_is_said_at_most_once_per_interval() -> None:
    got: list[HealthEvent] = []
    lag = LagReporter("cam1", got.append, every_s=3600.0)
    lag.update(10, "behind")
    lag.update(100, "behind")
    assert [e.attributes["dropped"] for e in got] == [10]
