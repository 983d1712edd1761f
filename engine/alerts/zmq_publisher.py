"""ZeroMQ publisher of alerts: an XPUB socket that subscribers connect to.

XPUB rather than PUB so that the publisher sees subscriptions arrive and can wait for the expected
consoles before the first alert (ZeroMQ drops messages for subscribers not yet joined). The send
high-water mark is raised far above ZeroMQ's default of 1000, which drops silently under bursts.
"""

from __future__ import annotations

import logging
import time

import zmq

from engine.alerts.wire import encode_alert
from engine.config import ZmqOutputConfig
from engine.errors import PublishError
from engine.types import Alert

__all__ = ["ZmqPublisher"]

log = logging.getLogger(__name__)


class ZmqPublisher:
    """Binds a socket and sends each alert as [topic, JSON].

    Args:
        cfg: endpoint, high-water mark, how many subscribers to wait for.
        context: the ZeroMQ context (one per process, owned by the caller).

    Raises:
        PublishError: the endpoint cannot be bound (in use, bad address).
    """

    def __init__(self, cfg: ZmqOutputConfig, context: zmq.Context) -> None:
        self.cfg = cfg
        self.subscribers = 0  # subscriptions seen (a console subscribing to 2 topics counts 2)
        self.sent = 0
        self._sock = context.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.SNDHWM, cfg.sndhwm)
        self._sock.setsockopt(zmq.LINGER, 2000)  # bounded flush of queued alerts on close
        # Pass every (un)subscribe, also duplicates, so two consoles on one topic count as two.
        self._sock.setsockopt(zmq.XPUB_VERBOSER, 1)
        try:
            self._sock.bind(cfg.endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(0)
            raise PublishError(f"cannot publish on {cfg.endpoint}: {exc.strerror}") from None
        log.info("publishing alerts on %s", cfg.endpoint)

    def _drain_subscriptions(self, timeout_ms: int) -> None:
        """Read subscribe/unsubscribe notices (XPUB delivers them as messages)."""
        while self._sock.poll(timeout_ms, zmq.POLLIN):
            msg = self._sock.recv()
            if msg[:1] == b"\x01":
                self.subscribers += 1
            elif msg[:1] == b"\x00":
                self.subscribers = max(0, self.subscribers - 1)
            timeout_ms = 0

    def wait_for_subscribers(self) -> bool:
        """Block until `cfg.wait_subscribers` subscriptions arrived or the timeout passed."""
        want = self.cfg.wait_subscribers
        deadline = time.monotonic() + self.cfg.wait_timeout_s
        while self.subscribers < want:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning(
                    "%s: %d of %d subscribers after %.1f s; publishing anyway",
                    self.cfg.endpoint, self.subscribers, want, self.cfg.wait_timeout_s,
                )  # fmt: skip
                return False
            self._drain_subscriptions(int(min(left, 0.1) * 1000) + 1)
        return True

    def send(self, alert: Alert) -> None:
        """Publish one alert (never blocks: beyond the high-water mark ZeroMQ drops)."""
        self._drain_subscriptions(0)
        self._sock.send_multipart(encode_alert(alert), copy=False)
        self.sent += 1

    def close(self) -> None:
        """Close the socket, letting queued alerts go out for up to 2 s."""
        self._sock.close()
