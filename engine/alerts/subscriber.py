"""A subscriber to a Lookout alert stream (what a console runs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import zmq

__all__ = ["AlertSubscriber"]


class AlertSubscriber:
    """Connects to a publisher and receives alerts as (topic, dict).

    Args:
        endpoint: e.g. tcp://127.0.0.1:5556.
        topics: topic prefixes to receive (empty: everything).
        context: the ZeroMQ context (owned by the caller).
    """

    def __init__(self, endpoint: str, topics: Sequence[str], context: zmq.Context) -> None:
        self._sock = context.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RCVHWM, 0)  # never drop on our side; the publisher bounds it
        for t in topics or [""]:
            self._sock.setsockopt(zmq.SUBSCRIBE, t.encode())
        self._sock.connect(endpoint)

    def recv(self, timeout_s: float) -> tuple[str, dict[str, Any]] | None:
        """The next alert, or None if none came within `timeout_s`."""
        if not self._sock.poll(int(timeout_s * 1000)):
            return None
        parts = self._sock.recv_multipart()
        return parts[0].decode(), json.loads(parts[1])

    def close(self) -> None:
        """Disconnect."""
        self._sock.close(0)
