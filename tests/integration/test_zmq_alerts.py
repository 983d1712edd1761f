"""Real ZeroMQ peers on 127.0.0.1: topics, bursts without loss, waiting for subscribers."""

import threading
from pathlib import Path

import numpy as np
import pytest
import zmq

from engine.alerts import AlertStamper, AlertSubscriber, ZmqPublisher
from engine.config import ZmqOutputConfig
from engine.errors import PublishError
from engine.types import Event
from tests.conftest import free_port


def event(source: str, i: int = 0) -> Event:
    return Event(
        f"ev{i}",
        "zone_presence",
        "start",
        source,
        "r",
        float(i),
        0,
        np.zeros((0, 4), np.float32),
        np.zeros(0, np.float32),
        (),
        np.zeros(0, np.int64),
    )


@pytest.fixture
def ctx() -> zmq.Context:
    c = zmq.Context()
    yield c
    c.destroy(linger=0)  # closes whatever a failed test left open, so teardown never hangs


def test_subscriber_of_cam1_never_gets_cam10(ctx: zmq.Context) -> None:
    ep = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqPublisher(ZmqOutputConfig(endpoint=ep, wait_subscribers=1), ctx)
    pub.start()
    sub = AlertSubscriber(ep, ["zone_presence.s.cam1."], ctx)
    assert pub.wait_for_subscribers()
    st = AlertStamper("s")
    for src in ("cam10", "cam1", "cam10", "cam1"):
        pub.send(st.stamp(event(src)))
    got = [sub.recv(2.0) for _ in range(2)]
    assert [g[1]["data"]["sensors"] for g in got if g] == [["cam1"], ["cam1"]]
    assert [g[1]["seq"] for g in got if g] == [2, 4]  # gaps show what this console skipped
    assert sub.recv(0.3) is None
    sub.close()
    pub.close()


def test_burst_of_20000_alerts_arrives_complete_and_in_order(ctx: zmq.Context) -> None:
    ep = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqPublisher(ZmqOutputConfig(endpoint=ep, wait_subscribers=1), ctx)
    pub.start()
    sub = AlertSubscriber(ep, [], ctx)
    assert pub.wait_for_subscribers()
    st = AlertStamper("s")
    n = 20_000
    for i in range(n):
        pub.send(st.stamp(event("cam1", i)))
    seqs = []
    while len(seqs) < n and (m := sub.recv(5.0)) is not None:
        seqs.append(m[1]["seq"])
    assert seqs == list(range(1, n + 1))
    sub.close()
    pub.close()


def test_wait_for_subscribers_times_out(ctx: zmq.Context) -> None:
    ep = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqPublisher(ZmqOutputConfig(endpoint=ep, wait_subscribers=2, wait_timeout_s=0.3), ctx)
    pub.start()
    sub = AlertSubscriber(ep, [], ctx)
    try:
        assert not pub.wait_for_subscribers()
        assert pub.subscribers == 1
    finally:
        sub.close()
        pub.close()


def test_two_consoles_on_the_same_topic_count_twice(ctx: zmq.Context) -> None:
    ep = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqPublisher(ZmqOutputConfig(endpoint=ep, wait_subscribers=2, wait_timeout_s=5), ctx)
    pub.start()
    subs = [AlertSubscriber(ep, [], ctx) for _ in range(2)]
    assert pub.wait_for_subscribers()
    pub.send(AlertStamper("s").stamp(event("cam1")))
    assert all(s.recv(2.0) is not None for s in subs)
    for s in subs:
        s.close()
    pub.close()


def test_endpoint_in_use_is_a_publish_error(ctx: zmq.Context) -> None:
    ep = f"tcp://127.0.0.1:{free_port()}"
    first = ZmqPublisher(ZmqOutputConfig(endpoint=ep), ctx)
    first.start()
    second = ZmqPublisher(ZmqOutputConfig(endpoint=ep), ctx)
    with pytest.raises(PublishError, match=f"cannot publish on {ep}"):
        second.start()
    second.close()
    first.close()


def test_publisher_is_usable_from_another_thread(ctx: zmq.Context) -> None:
    """The runtime's publisher thread owns the socket after the main thread created it."""
    ep = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqPublisher(ZmqOutputConfig(endpoint=ep, wait_subscribers=1), ctx)
    pub.start()
    sub = AlertSubscriber(ep, [], ctx)
    assert pub.wait_for_subscribers()
    t = threading.Thread(target=lambda: pub.send(AlertStamper("s").stamp(event("x"))))
    t.start()
    t.join(5)
    assert sub.recv(2.0) is not None
    sub.close()
    pub.close()


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_constructors_start_no_threads_and_close_is_safe_before_and_after_start(
    ctx: zmq.Context, tmp_path: Path
) -> None:
    from engine.alerts.replay import ReplayServer
    from engine.console import WebConsole
    from engine.console.web import WebAccess

    ep, replay = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    cfg = ZmqOutputConfig(endpoint=ep, replay_endpoint=replay, journal=tmp_path / "j.db")
    before = _threads()
    never = ZmqPublisher(cfg, ctx)
    server = ReplayServer(f"tcp://127.0.0.1:{free_port()}", tmp_path / "j.db", ctx)
    console = WebConsole(ep, replay, port=0, access=WebAccess(password_hash="x"))
    assert _threads() == before, "a constructor started a thread"
    for closeable in (never, server, console):  # never started: nothing to stop, twice
        closeable.close()
        closeable.close()
    pub = ZmqPublisher(cfg, ctx)
    pub.start()
    assert "lookout-replay" in _threads() - before
    pub.close()
    pub.close()
    assert "lookout-replay" not in _threads(), "close did not join the replay thread"
