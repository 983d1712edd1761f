"""The cluster hub without Ray: every frame's record accepted once, in order, whatever re-sends,
gaps or outdated incarnations; a moved source's open incidents end."""

import json
from pathlib import Path

import numpy as np
import pytest

from engine.cluster.hub import FENCED, Hub
from engine.config import Config
from engine.types import Event


def hub(tmp_path: Path) -> Hub:
    h = Hub(
        Config.model_validate(
            {
                "site": "s",
                "sources": [{"id": "cam", "type": "file", "path": str(tmp_path / "a.mp4")}],
                "detector": {"model": str(tmp_path / "m.onnx")},
                "outputs": [{"type": "jsonl", "path": str(tmp_path / "alerts.jsonl")}],
            }
        )
    )
    h.start()
    return h


def event(eid: str, phase: str, t: float = 0.0) -> Event:
    empty = np.zeros((0, 4), np.float32)
    return Event(
        eid,
        "zone_presence",
        phase,
        "cam",
        "r",
        t,
        0,
        empty,  # type: ignore[arg-type]
        np.zeros(0, np.float32),
        (),
        np.zeros(0, np.int64),
    )


def published(tmp_path: Path) -> list[tuple[str, str]]:
    lines = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [x["seq"] for x in lines] == list(range(1, len(lines) + 1))
    return [
        (x["data"].get("event_id") or x["data"]["kind"], x["data"].get("phase", "")) for x in lines
    ]


def test_records_once_in_order_despite_resends_and_gaps(tmp_path: Path) -> None:
    h = hub(tmp_path)
    epoch, start = h.register("cam", "node-a")
    assert (epoch, start) == (1, 0)
    assert h.submit("cam", epoch, [(0, []), (1, [event("e1", "start")])]) == 1
    # the ack was lost: the same records again, and more; frames 3 and 4 were dropped (a gap)
    assert (
        h.submit(
            "cam", epoch, [(0, []), (1, [event("e1", "start")]), (2, []), (5, [event("e1", "end")])]
        )
        == 5
    )
    h.close()
    assert published(tmp_path) == [("e1", "start"), ("e1", "end")]
    assert h.sources["cam"].duplicates == 2 and h.sources["cam"].frames == 4


def test_a_moved_source_resumes_its_open_incident_ends_old_incarnation_fenced(
    tmp_path: Path,
) -> None:
    h = hub(tmp_path)
    old, _ = h.register("cam", "node-a")
    h.submit("cam", old, [(0, [event("e1", "start")]), (1, [])])
    new, resume = h.register("cam", "node-b")  # node-a died; Ray restarted the actor on node-b
    assert resume == 2 and new == old + 1
    # the old incarnation's late batch (a zombie on a dying node) is refused
    assert h.submit("cam", old, [(2, [event("e1", "update")])]) == FENCED
    assert h.submit("cam", new, [(2, [event("e2", "start")]), (3, [event("e2", "end")])]) == 3
    st = h.status()["sources"]["cam"]  # what `lookout run --cluster` reports per source
    assert (st["fenced"], st["moves"], st["next_seq"], st["open"]) == (1, 1, 4, 0)
    h.close()
    h.close()  # a second close has nothing left to do
    got = published(tmp_path)
    assert got[0] == ("e1", "start") and got[1] == ("e1", "end")  # ended: source_moved
    assert ("source.moved", "") in got and got[-2:] == [("e2", "start"), ("e2", "end")]
    lines = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert lines[1]["data"]["attributes"]["reason"] == "source_moved"


def test_a_record_whose_alerts_cannot_be_published_is_not_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = hub(tmp_path)
    epoch, _ = h.register("cam", "node-a")

    def broken(batch: list[object]) -> list[object]:
        raise RuntimeError("stamping bug")

    monkeypatch.setattr(h._outlet, "publish", broken)
    with pytest.raises(RuntimeError):
        h.submit("cam", epoch, [(0, [event("e1", "start")])])
    monkeypatch.undo()
    # the re-send is accepted then: nothing lost
    assert h.submit("cam", epoch, [(0, [event("e1", "start")])]) == 0
    h.close()
    assert published(tmp_path)[0] == ("e1", "start")
