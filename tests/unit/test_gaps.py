"""A console's gap filling: the ledger of lost ranges and the replay request's retries."""

from __future__ import annotations

import json

import pytest
import zmq

from engine.alerts.gaps import MAX_LOST_KEPT, Losses, ReplayAsker, ReplayFailed


def _ranges(losses: Losses) -> list[tuple[str, int, int | None]]:
    return [(r.epoch, r.first, r.last) for r in losses.lost]


def test_seqs_skipped_are_lost_once_even_after_the_tail_was_reported() -> None:
    losses = Losses()
    losses.skipped(("e", 3), ("e", 3), ("e", 7))  # 4..6 never came
    losses.tail(("e", 7), ("e", 10))  # checked to 10, nothing after 7
    losses.skipped(("e", 7), ("e", 10), ("e", 12))  # 8..10 told already: only 11
    assert _ranges(losses) == [("e", 4, 6), ("e", 8, 10), ("e", 11, 11)]
    assert losses.count == 3


def test_a_new_epoch_loses_the_rest_of_the_last_one_and_its_own_start() -> None:
    losses = Losses()
    losses.skipped(("e1", 5), ("e1", 8), ("e2", 4))
    assert _ranges(losses) == [("e1", 6, 8), ("e2", 1, 3)]


def test_what_the_journal_no_longer_holds() -> None:
    losses = Losses()
    losses.gone(("e", 5), {"known_epoch": False}, filtered=False)
    pruned = {"known_epoch": True, "first": {"epoch": "e", "seq": 20}}
    losses.gone(("e", 5), pruned, filtered=False)  # unfiltered: seen in the rows instead
    losses.gone(("e", 5), pruned, filtered=True)
    assert _ranges(losses) == [("e", 6, None), ("e", 6, 19)]


def test_the_list_keeps_the_newest_ranges_and_the_count_goes_on() -> None:
    losses = Losses()
    for k in range(MAX_LOST_KEPT + 5):
        losses.add("e", 2 * k, 2 * k, "test")
    assert losses.count == MAX_LOST_KEPT + 5 and len(losses.lost) == MAX_LOST_KEPT
    assert losses.lost[0].first == 10


def test_the_asker_reads_only_the_answer_to_its_request_and_backs_off() -> None:
    ctx = zmq.Context()
    server = ctx.socket(zmq.ROUTER)
    server.setsockopt(zmq.LINGER, 0)
    endpoint = f"tcp://127.0.0.1:{server.bind_to_random_port('tcp://127.0.0.1')}"
    asker = ReplayAsker(endpoint, ctx, None, 5.0, backoff_s=0.1, backoff_max_s=0.3)
    try:
        assert asker.socket is None
        assert asker.ask(("e", 4), ["zone."], now=100.0)
        assert asker.asked == ("e", 4) and asker.deadline == 105.0
        assert server.poll(10_000), "the request never came"
        _peer, empty, raw = server.recv_multipart()
        assert empty == b""  # the envelope a ROUTER expects
        req = json.loads(raw)
        assert req["epoch"] == "e" and req["after"] == 4 and req["topics"] == ["zone."]
        older = json.dumps({"ok": True, "count": 0, "id": req["id"] - 1}).encode()
        assert asker.read([b"", older]) is None  # an answer to an earlier request
        refused = json.dumps({"ok": False, "error": "busy", "id": req["id"]}).encode()
        with pytest.raises(ReplayFailed, match="replay refused: busy"):
            asker.read([b"", refused])
        with pytest.raises(ReplayFailed, match="unreadable reply"):
            asker.read([b"", json.dumps({"ok": True, "count": 2, "id": req["id"]}).encode()])
        delays = [asker.fail(now=100.0)]
        for _ in range(3):
            assert asker.ask(("e", 4), [], now=100.0)
            delays.append(asker.fail(now=100.0))
        assert 0.05 <= delays[0] <= 0.1 and 0.1 <= delays[1] <= 0.2
        assert all(0.15 <= d <= 0.3 for d in delays[2:])  # capped at backoff_max_s
        assert asker.failures == 4 and asker.retries == 4 and asker.asked is None
        assert asker.ask(("e", 4), [], now=100.0)
        assert asker.answered() == ("e", 4) and asker.failures == 0 and asker.retries == 4
    finally:
        asker.close()
        server.close(0)
        ctx.term()
