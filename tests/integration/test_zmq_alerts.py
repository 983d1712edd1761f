"""Real ZeroMQ peers on 127.0.0.1: topics, bursts without loss, waiting for subscribers."""

import threading

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
    with pytest.raises(PublishError, match=f"cannot publish on {ep}"):
        ZmqPublisher(ZmqOutputConfig(endpoint=ep), ctx)
    first.close()


def test_publisher_is_usable_from_another_thread(ctx: zmq.Context) -> None:
    """The runtime's publisher thread owns the socket after the main thread created it."""
    ep = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqPublisher(ZmqOutputConfig(endpoint=ep, wait_subscribers=1), ctx)
    sub = AlertSubscriber(ep, [], ctx)
    assert pub.wait_for_subscribers()
    t = threading.Thread(target=lambda: pub.send(AlertStamper("s").stamp(event("x"))))
    t.start()
    t.join(5)
    assert sub.recv(2.0) is not None
    sub.close()
    pub.close()
