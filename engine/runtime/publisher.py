"""The hand-over from the sources to the one publisher thread, and that thread's loop.

Sources put their events into one bounded queue (a source waits while the publisher catches up;
health events never wait: capture must not block). The publisher takes them in batches, stamps
them into alerts through the alert outlet (journal, then ZeroMQ and the other sinks) and lets the
sinks beat their heart.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.alerts.outlet import AlertOutlet
from engine.runtime.metrics import RuntimeMetrics
from engine.types import Alert, Event, HealthEvent

__all__ = ["ENGINE", "EventQueue", "RunReport", "publish_loop"]

log = logging.getLogger(__name__)

EVENT_QUEUE_SIZE = 10_000
PUBLISH_BATCH = 500
ENGINE = "@engine"  # health events about the engine itself (not a valid source id)


@dataclass
class RunReport:
    """What a run did."""

    frames: dict[str, int] = field(default_factory=dict)  # processed, per source
    inferences: dict[str, int] = field(default_factory=dict)  # below frames: motion gating
    alerts: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    reloads: int = 0
    elapsed_s: float = 0.0


class EventQueue:
    """The bounded queue between every source's thread and the publisher."""

    def __init__(self, size: int = EVENT_QUEUE_SIZE) -> None:
        self._q: queue.Queue[Event | HealthEvent] = queue.Queue(maxsize=size)

    def qsize(self) -> int:
        """Events waiting for the publisher."""
        return self._q.qsize()

    def put_health(self, event: HealthEvent) -> None:
        """From any thread: never blocks capture; a full queue is logged, not waited."""
        try:
            self._q.put_nowait(event)
        except queue.Full:
            log.error(
                "event queue full: health event %s of %s not published", event.kind, event.source_id
            )

    def put_all(self, events: list[Event], stop: threading.Event) -> None:
        """Queue events, waiting while the publisher catches up. Only at shutdown, with the
        queue still full, is an event dropped, and then it is logged as an error."""
        for event in events:
            while True:
                try:
                    self._q.put(event, timeout=0.5)
                    break
                except queue.Full:
                    log.warning("event queue full; source %s waits", event.source_id)
                    if stop.is_set() and self._q.full():
                        log.error("dropping event %s at shutdown: queue full", event.event_id)
                        break

    def take(self, most: int, timeout_s: float) -> list[Event | HealthEvent]:
        """The next event (waiting up to `timeout_s`) and those waiting behind it, up to `most`;
        [] when none came."""
        try:
            batch = [self._q.get(timeout=timeout_s)]
        except queue.Empty:
            return []
        while len(batch) < most:
            try:
                batch.append(self._q.get_nowait())
            except queue.Empty:
                break
        return batch


def publish_loop(
    events: EventQueue,
    outlet: AlertOutlet,
    metrics: RuntimeMetrics,
    sources_done: threading.Event,
    report: RunReport,
    on_alert: Callable[[Alert], None] | None,
    stop: threading.Event | None = None,
) -> None:
    """The publisher thread, until the sources are done and the queue is empty.

    Stamp events in batches (up to PUBLISH_BATCH waiting ones), hand each batch to every sink
    (the ZeroMQ sink journals it before sending), and let sinks beat their heart. A sink that
    says the run must stop (a journal failing under `journal_on_failure: stop`) sets `stop` and
    leaves its error in the report; the events queued meanwhile still go out.
    """

    def stats() -> dict[str, Any]:
        return metrics.summary()

    while True:
        outlet.tick(stats)
        if (fatal := outlet.fatal) and ENGINE not in report.errors:
            report.errors[ENGINE] = fatal  # the run ends with this error (exit status 1)
            if stop is not None:
                stop.set()
        batch = events.take(PUBLISH_BATCH, 0.1)
        if not batch:
            if sources_done.is_set():
                return
            continue
        try:
            alerts = outlet.publish(batch)
        except Exception:  # a bug in stamping or merging: the batch is lost, not the stream
            log.exception("publishing %d events failed; they are lost", len(batch))
            continue
        report.alerts += len(alerts)
        now = time.monotonic_ns()
        for alert in alerts:
            e = alert.event
            if isinstance(e, Event):
                metrics.stage_done(e.source_id, "alert", e.capture_ns, now)
            metrics.published(e.kind)
            if on_alert is not None:
                try:
                    on_alert(alert)
                except Exception:  # a caller's hook (say, stdout gone) must not stop alerts
                    log.exception("on_alert failed on alert %d", alert.seq)
