"""Where events become alerts: stamped with the stream's sequence numbers, merged across
sensors, handed to every sink (the ZeroMQ sink journals before it sends), and the heartbeat.

One per deployment: the single-box runner's publisher thread owns one, and so does the cluster
hub. Not thread-safe: one thread calls it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import zmq

from engine.alerts import AlertStamper, JsonlSink, ZmqPublisher
from engine.config import Config, JsonlOutputConfig, ZmqOutputConfig
from engine.fusion import IncidentMerger
from engine.types import Alert, Event, HealthEvent

__all__ = ["AlertOutlet", "Sink"]

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where alerts go."""

    sent: int

    def send_many(self, alerts: list[Alert]) -> None: ...
    def tick(self, stats: Callable[[], dict[str, Any]] | None = None) -> None: ...
    def close(self) -> None: ...


class AlertOutlet:
    """The stamper, the incident merger and the sinks of a config.

    Args:
        cfg: the config (site, routing, outputs, fusion).
        context: the ZeroMQ context the publishers use (owned by the caller).
        merge: merge one incident seen by several sensors into one alert stream (fusion).

    Raises:
        PublishError: an output cannot be opened (the message names it); nothing stays open.
    """

    def __init__(self, cfg: Config, context: zmq.Context, merge: bool) -> None:
        self.stamper = AlertStamper(cfg.site, cfg.routing)
        fu = cfg.fusion
        self._merger = IncidentMerger(fu.merge_m, fu.merge_s) if merge else None
        self.sinks: list[Sink] = []
        try:
            for out in cfg.outputs:
                if isinstance(out, ZmqOutputConfig):
                    self.sinks.append(ZmqPublisher(out, context, self.stamper.epoch, cfg.site))
                elif isinstance(out, JsonlOutputConfig):
                    self.sinks.append(JsonlSink(out))
        except BaseException:
            self.close()
            raise

    def wait_for_subscribers(self) -> None:
        """Wait for the consoles a ZeroMQ output expects (`wait_subscribers`)."""
        for sink in self.sinks:
            if isinstance(sink, ZmqPublisher) and sink.cfg.wait_subscribers:
                sink.wait_for_subscribers()

    def publish(self, batch: list[Event | HealthEvent]) -> list[Alert]:
        """Stamp and send a batch; the alerts (a failing sink is logged, the others go on)."""
        if self._merger is not None:
            batch = [self._merger(e) if isinstance(e, Event) else e for e in batch]
        alerts = [self.stamper.stamp(event) for event in batch]
        for sink in self.sinks:
            try:
                sink.send_many(alerts)
            except Exception:
                log.exception("sink %s failed on alerts %d-%d", type(sink).__name__,
                              alerts[0].seq, alerts[-1].seq)  # fmt: skip
        return alerts

    def tick(self, stats: Callable[[], dict[str, Any]] | None = None) -> None:
        """Let the sinks beat their heart (call often)."""
        for sink in self.sinks:
            try:
                sink.tick(stats)
            except Exception:
                log.exception("sink %s failed its heartbeat", type(sink).__name__)

    def close(self) -> None:
        """Close every sink (idempotent): queued alerts go out, journals close."""
        for sink in self.sinks:
            sink.close()
        self.sinks = []
