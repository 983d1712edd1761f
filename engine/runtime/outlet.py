"""Where events become alerts: stamped with the stream's sequence numbers, merged across
sensors, handed to every sink (the ZeroMQ sink journals before it sends), and the heartbeat.

One per deployment: the single-box runner's publisher thread owns one, and so does the cluster
hub. Not thread-safe: one thread calls it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import zmq

from engine.alerts import AlertStamper, JsonlSink, ZmqPublisher
from engine.config import Config, JsonlOutputConfig, ZmqOutputConfig
from engine.errors import PublishError
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
        self._access_asked = threading.Event()
        self._access_report: Callable[[HealthEvent], None] | None = None
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
        if self._access_asked.is_set():
            self._access_asked.clear()
            self._apply_access_reload()
        for sink in self.sinks:
            try:
                sink.tick(stats)
            except Exception:
                log.exception("sink %s failed its heartbeat", type(sink).__name__)

    def reload_access(self, report: Callable[[HealthEvent], None]) -> None:
        """Ask, from any thread, that the ZeroMQ outputs re-read their CURVE allow-lists; the
        thread that calls `tick` applies it (it owns the sockets) and `report`s an
        `access.reloaded` health event with the counts (never key material)."""
        self._access_report = report
        self._access_asked.set()

    def _apply_access_reload(self) -> None:
        added = revoked = allowed = 0
        errors = []
        secured = [s for s in self.sinks if isinstance(s, ZmqPublisher) and s.cfg.curve]
        for sink in secured:
            try:
                a, r, n = sink.reload_access()
            except PublishError as exc:
                log.error("%s: allow-list not reloaded: %s", sink.cfg.endpoint, exc)
                errors.append(str(exc))
                continue
            added, revoked, allowed = added + a, revoked + r, allowed + n
        if not secured or self._access_report is None:
            return
        text = f"console keys reloaded: {added} added, {revoked} revoked, {allowed} allowed"
        if errors:
            text += "; not reloaded: " + "; ".join(errors)
        log.info("%s", text)
        figures = {"added": added, "revoked": revoked, "allowed": allowed, "failed": len(errors)}
        self._access_report(
            HealthEvent("access.reloaded", "@engine", time.monotonic_ns(), text, figures)
        )

    def close(self) -> None:
        """Close every sink (idempotent): queued alerts go out, journals close."""
        for sink in self.sinks:
            sink.close()
        self.sinks = []
