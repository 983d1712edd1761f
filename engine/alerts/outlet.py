"""Where events become alerts: stamped with the stream's sequence numbers, merged across
sensors, handed to every sink (the ZeroMQ sink journals before it sends), and the heartbeat.

One per deployment: the single-box runner's publisher thread owns one, and so does the cluster
hub. Not thread-safe: one thread calls it.

Every sink fails alone: a sink that raises is reported once per failure episode (`sink.failing`,
then `sink.recovered` when it takes a batch again) and the others still get every alert. Health
events the sinks raise themselves (the journal failing, a damaged journal replaced) and the ends
of incidents a crashed run left open go out on the stream as alerts, after the batch that caused
them or at the first `tick`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import zmq

from engine.alerts.jsonl_sink import JsonlSink
from engine.alerts.wire import AlertStamper
from engine.alerts.zmq_publisher import ZmqPublisher
from engine.config import Config, JsonlOutputConfig, ZmqOutputConfig
from engine.errors import PublishError
from engine.fusion import IncidentMerger
from engine.types import Alert, Event, HealthEvent

__all__ = ["AlertOutlet", "Sink"]

log = logging.getLogger(__name__)

ENGINE = "@engine"  # health events about the engine itself (not a valid source id)
FOLLOW_UP_ROUNDS = 3  # health events about health events' alerts: bounded, never a loop
# Batches taken in a row that end a sink's failure episode: on a full disk small batches may fit
# where large ones do not, and one episode must not become a flood of failing/recovered.
RECOVER_AFTER = 3


class Sink(Protocol):
    """Where alerts go."""

    sent: int

    def send_many(self, alerts: list[Alert]) -> None: ...
    def tick(self, stats: Callable[[], dict[str, Any]] | None = None) -> None: ...
    def close(self) -> None: ...


class AlertOutlet:
    """The stamper, the incident merger and the sinks of a config.

    The constructor opens the sinks' files and journals; `start` binds the ZeroMQ endpoints and
    starts their threads (replay, CURVE); `close` closes every sink.

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
        # id(sink) -> [batches failed, batches taken in a row since] in its failure episode
        self._failing: dict[int, list[int]] = {}
        self._pending: list[Event | HealthEvent] = []
        head = self._head
        try:
            for out in cfg.outputs:
                if isinstance(out, ZmqOutputConfig):
                    self.sinks.append(
                        ZmqPublisher(out, context, self.stamper.epoch, cfg.site, head=head)
                    )
                elif isinstance(out, JsonlOutputConfig):
                    self.sinks.append(JsonlSink(out))
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        """Bind every ZeroMQ output and start its threads, before the first `publish`.

        Raises:
            PublishError: an endpoint cannot be bound (the message names it); then every sink
                is closed.
        """
        try:
            for sink in self.sinks:
                if isinstance(sink, ZmqPublisher):
                    sink.start()
        except BaseException:
            self.close()
            raise

    def wait_for_subscribers(self) -> None:
        """Wait for the consoles a ZeroMQ output expects (`wait_subscribers`)."""
        for sink in self.sinks:
            if isinstance(sink, ZmqPublisher) and sink.cfg.wait_subscribers:
                sink.wait_for_subscribers()

    def _head(self) -> int:
        return self.stamper.seq

    @property
    def fatal(self) -> str | None:
        """Why the run must stop (a journal failed under `journal_on_failure: stop`), or None."""
        for sink in self.sinks:
            if isinstance(sink, ZmqPublisher) and sink.fatal:
                return sink.fatal
        return None

    def publish(self, batch: list[Event | HealthEvent]) -> list[Alert]:
        """Stamp and send a batch, then the health events it caused; the alerts (a failing
        sink is reported, the others go on)."""
        if self._merger is not None:
            batch = [self._merger(e) if isinstance(e, Event) else e for e in batch]
        alerts = self._send([self.stamper.stamp(event) for event in batch])
        for _ in range(FOLLOW_UP_ROUNDS):
            follow = self._take_events()
            if not follow:
                break
            alerts += self._send([self.stamper.stamp(event) for event in follow])
        return alerts

    def _send(self, alerts: list[Alert]) -> list[Alert]:
        if not alerts:
            return alerts
        for sink in self.sinks:
            try:
                sink.send_many(alerts)
            except Exception as exc:
                self._sink_failed(sink, exc, alerts)
            else:
                self._sink_ok(sink)
        return alerts

    def _sink_failed(self, sink: Sink, exc: Exception, alerts: list[Alert]) -> None:
        name = _sink_name(sink)
        first, last = alerts[0].seq, alerts[-1].seq
        episode = self._failing.get(id(sink))
        if episode is not None:
            episode[0] += 1
            episode[1] = 0
            log.debug("sink %s still failing (alerts %d-%d): %s", name, first, last, exc)
            return
        self._failing[id(sink)] = [1, 0]
        text = f"{name} cannot take alerts from {first}: {exc}; the other outputs still get them"
        if isinstance(exc, OSError | ValueError):
            log.error("%s", text)
        else:  # not an I/O failure: a bug, keep its traceback once
            log.exception("%s", text)
        attributes = {"sink": name, "error": str(exc), "from_seq": first}
        self._pending.append(
            HealthEvent("sink.failing", ENGINE, time.monotonic_ns(), text, attributes)
        )

    def _sink_ok(self, sink: Sink) -> None:
        episode = self._failing.get(id(sink))
        if episode is None:
            return
        episode[1] += 1
        if episode[1] < RECOVER_AFTER:
            return
        del self._failing[id(sink)]
        failed = episode[0]
        name = _sink_name(sink)
        text = f"{name} takes alerts again after {failed} failed batch(es)"
        log.warning("%s", text)
        attributes = {"sink": name, "failures": failed}
        self._pending.append(
            HealthEvent("sink.recovered", ENGINE, time.monotonic_ns(), text, attributes)
        )

    def _take_events(self) -> list[Event | HealthEvent]:
        """Health events of the outlet and its sinks, and ends of incidents a crash left open
        (once each, even when several journals knew of the same incident)."""
        out, self._pending = self._pending, []
        seen: set[str] = set()
        for sink in self.sinks:
            if isinstance(sink, ZmqPublisher):
                for e in sink.take_events():
                    if isinstance(e, Event):
                        if e.event_id in seen:
                            continue
                        seen.add(e.event_id)
                    out.append(e)
        return out

    def tick(self, stats: Callable[[], dict[str, Any]] | None = None) -> None:
        """Publish what the sinks raised meanwhile (at the first call: the ends of incidents a
        crashed run left open) and let the sinks beat their heart (call often)."""
        if self._access_asked.is_set():
            self._access_asked.clear()
            self._apply_access_reload()
        if pending := self._take_events():
            self._send([self.stamper.stamp(event) for event in pending])
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


def _sink_name(sink: Sink) -> str:
    """The output a sink writes to, for events and logs."""
    if isinstance(sink, JsonlSink):
        return f"jsonl {sink.cfg.path}"
    if isinstance(sink, ZmqPublisher):
        return f"zmq {sink.cfg.endpoint}"
    return type(sink).__name__
