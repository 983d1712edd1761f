"""The runner: composes sources, detector, rules and sinks, and owns their threads.

Stages, each on its own threads with bounded hand-overs:
- ingest: one thread per source decodes into a small buffer (live cameras and native-rate files
  drop the oldest frame when the engine is behind, counted; max-rate files wait);
- inference: one shared thread batches frames of all sources into one detector call;
- per source, one worker: tracking, ground positions, rules, clips, snapshots;
- one publisher: stamps events into alerts (journal, then ZeroMQ) and beats the heartbeat.
A supervisor restarts a source's worker that failed, with backoff, and reports it on the alert
stream (`stage.failed`, `stage.restarted`); the other sources go on. Metrics per source and
stage go to Prometheus (`metrics:`) and into the heartbeat. Zones and rules are reloaded from
the config file between frames. Every blocking call has a timeout, so `stop` ends the run within
a bound: open incidents are ended, queued alerts published, the journal and sockets closed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq

from engine.alerts.outlet import AlertOutlet
from engine.config import Config
from engine.detect import OnnxDetector, build_detector
from engine.errors import EngineError, SourceError
from engine.fusion import WorldTracker
from engine.geo.positions import build_locators
from engine.rules import Rule, build_rules
from engine.runtime.batcher import InferenceBatcher
from engine.runtime.metrics import RuntimeMetrics, SourceProbe
from engine.runtime.metrics_http import MetricsServer
from engine.runtime.pipeline import SharedWorld, SourcePipeline, wants_snapshots
from engine.runtime.reload import ConfigWatcher, plan_rules
from engine.runtime.supervisor import RestartPolicy, StageFailed, supervise
from engine.sources import Source, TruncatedFile, build_source
from engine.types import Alert, Event, Frame, HealthEvent, HealthKind, Tracks

__all__ = ["FrameHook", "RunReport", "Runner"]

log = logging.getLogger(__name__)

EVENT_QUEUE_SIZE = 10_000
PUBLISH_BATCH = 500
SHUTDOWN_S = 10.0  # every thread joined within this, all together
WATCH_EVERY_S = 1.0  # config file polls
HEALTH_KEPT = 1000  # health events kept in memory (all are published and journaled)
ENGINE = "@engine"  # health events about the engine itself (not a valid source id)


FrameHook = Callable[[Frame, Tracks, list[Event]], None]


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


class Runner:
    """Builds every stage of a config; `run` drives them until the sources end or `stop` is set.

    Args:
        cfg: a validated config.
        context: ZeroMQ context for the publishers (created and owned here if None).
        watch: the config file to reload zones and rules from when it changes (None: no reload).

    Raises:
        EngineError: a model, output or the metrics endpoint cannot be set up; the message
            names it. Sources are opened by `run`, each in its own worker thread: one that
            cannot be opened (or read on) ends alone with its error (`source.failed` health
            event, `RunReport.errors`) while the others run to their end.
    """

    def __init__(
        self, cfg: Config, context: zmq.Context | None = None, watch: ConfigWatcher | None = None
    ) -> None:
        self.cfg = cfg
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._outlet: AlertOutlet | None = None
        self._batcher: InferenceBatcher | None = None
        self._metrics_server: MetricsServer | None = None
        self._watch = watch
        self._reload_asked = threading.Event()
        self._snapshots = wants_snapshots(cfg)
        self._events: queue.Queue[Event | HealthEvent] = queue.Queue(maxsize=EVENT_QUEUE_SIZE)
        self._rules_lock = threading.Lock()
        self._pending: dict[str, tuple[list[Rule], Config]] = {}
        self._leftover: dict[str, list[Frame]] = {}  # frames a failed worker had not processed
        self.health: deque[HealthEvent] = deque(maxlen=HEALTH_KEPT)  # the latest, for callers
        self.inference_calls = 0  # detector calls of the shared batcher (known once closed)
        self.inference_images = 0
        self.metrics = RuntimeMetrics([s.id for s in cfg.sources])
        sv = cfg.supervisor
        self._policy = RestartPolicy(
            sv.backoff_initial_s, sv.backoff_max_s, sv.healthy_s, sv.max_restarts
        )
        try:
            self.detector: OnnxDetector = build_detector(cfg.detector)
            det = cfg.detector
            self._batcher = (
                InferenceBatcher(self.detector, det.batch_max, det.batch_wait_ms)
                if det.batch_max > 1
                else None
            )
            self.rules: dict[str, list[Rule]] = build_rules(cfg, self.detector.class_names)
            self._locators = build_locators(cfg)
            fu = cfg.fusion
            groups = tuple(tuple(g) for g in cfg.tracking.class_groups)
            self.world = WorldTracker(fu.gate_m, fu.lost_s, groups)
            self._shared_world = SharedWorld(self.world, threading.Lock())
            self.sources: list[Source] = [build_source(s, self._on_health) for s in cfg.sources]
            for src in self.sources:  # opened by their workers: one that cannot ends alone
                self.metrics.probe(src.id, _probe(src))
            self.metrics.queue("events", self._events.qsize)
            if self._batcher is not None:
                self.metrics.queue("inference", self._batcher.pending)
            merge = fu.merge_incidents and bool(self._locators)
            self._outlet = AlertOutlet(cfg, self._context, merge)
            if cfg.metrics is not None:
                self._metrics_server = MetricsServer(cfg.metrics, self.metrics)
        except BaseException:
            self.close()
            raise

    @property
    def metrics_url(self) -> str | None:
        """Where the Prometheus endpoint serves (None when not configured)."""
        return self._metrics_server.url if self._metrics_server is not None else None

    def request_reload(self) -> None:
        """Reload zones and rules from the watched file now (SIGHUP)."""
        self._reload_asked.set()

    def run(
        self,
        stop: threading.Event,
        on_alert: Callable[[Alert], None] | None = None,
        on_frame: FrameHook | None = None,
    ) -> RunReport:
        """Process every source until all end or `stop` is set; then flush and close.

        Args:
            stop: set it (from a signal handler, say) to end the run.
            on_alert: called in the publisher thread with each alert after it was sent.
            on_frame: called in the source's worker thread after each frame, with the frame,
                its tracks and the events it caused (recorders, previews). If it raises, the
                worker is restarted like any failed stage.
        """
        report = RunReport()
        t0 = time.monotonic()
        outlet = self._outlet
        assert outlet is not None
        outlet.wait_for_subscribers()
        sources_done = threading.Event()
        publisher = threading.Thread(
            target=self._publish_loop,
            args=(outlet, sources_done, report, on_alert, stop),
            name="lookout-publisher",
            daemon=True,  # joined within the shutdown bound; never keeps the process alive
        )
        publisher.start()
        workers = [
            threading.Thread(
                target=self._supervised,
                args=(src, stop, report, on_frame),
                name=f"lookout-worker-{src.id}",
                daemon=True,
            )
            for src in self.sources
        ]
        for w in workers:
            w.start()
        next_watch = time.monotonic() + WATCH_EVERY_S
        try:
            while any(w.is_alive() for w in workers) and not stop.wait(0.1):
                if self._reload_asked.is_set():
                    self._reload_asked.clear()
                    self._reload(report, force=True)
                if time.monotonic() >= next_watch:
                    next_watch += WATCH_EVERY_S
                    if self._watch is not None and self._watch.changed():
                        self._reload(report)
        finally:
            deadline = time.monotonic() + SHUTDOWN_S
            for src in self.sources:
                src.close()
            for w in workers:
                _join(w, deadline)
            sources_done.set()
            _join(publisher, deadline)
            self.close()
        report.elapsed_s = time.monotonic() - t0
        return report

    # --- per source -----------------------------------------------------------------------------

    def _supervised(
        self, src: Source, stop: threading.Event, report: RunReport, on_frame: FrameHook | None
    ) -> None:
        def restarted(stage: str) -> None:
            self.metrics.restarted(src.id, stage)
            report.restarts[src.id] = report.restarts.get(src.id, 0) + 1

        try:
            src.open()  # here, in the source's own thread: a source that cannot ends alone
        except SourceError as exc:
            self._source_failed(src, exc, report)
            return
        except Exception as exc:  # a bug in opening: this source ends alone too, and says why
            log.exception("source %s: opening failed", src.id)
            self._source_failed(src, SourceError(f"source {src.id}: cannot open: {exc!r}"), report)
            return

        def work() -> None:
            try:
                self._work(src, stop, report, on_frame)
            except SourceError as exc:  # the source cannot be read on: it ends, the rest run
                self._source_failed(src, exc, report)
                raise

        error = supervise(src.id, work, stop, self._on_health, restarted, self._policy)
        if error is not None:
            report.errors[src.id] = error

    def _source_failed(self, src: Source, exc: SourceError, report: RunReport) -> None:
        """A source that ended with an error: one health event, and the error in the report."""
        report.errors[src.id] = str(exc)
        kind: HealthKind = "source.truncated" if isinstance(exc, TruncatedFile) else "source.failed"
        attrs = dict(getattr(exc, "attributes", {}))
        self._on_health(HealthEvent(kind, src.id, time.monotonic_ns(), str(exc), attrs))

    def _work(
        self, src: Source, stop: threading.Event, report: RunReport, on_frame: FrameHook | None
    ) -> None:
        """One source's worker: frames from its ingest buffer through its pipeline. Raises
        StageFailed (restart) or EngineError (the source is done for)."""
        with self._rules_lock:
            self._pending.pop(src.id, None)
            if src.id in report.restarts:  # a restarted worker starts with fresh rules
                self.rules[src.id] = build_rules(self.cfg, self.detector.class_names)[src.id]
            rules, cfg = self.rules[src.id], self.cfg
        pipe = SourcePipeline(
            cfg,
            src.cfg,
            self._batcher.detect if self._batcher else self.detector.detect_images,
            self.detector.class_names,
            rules,
            self._locators.get(src.id),
            self._shared_world,
            self.metrics,
            self._snapshots,
            self._on_health,
        )
        base = report.inferences.get(src.id, 0)
        sid = src.id
        take = self.cfg.detector.batch_max if self.detector.info.batch_dynamic else 1
        try:
            while not stop.is_set():
                if sid in self._pending:
                    with self._rules_lock:
                        new_rules, new_cfg = self._pending.pop(sid)
                    self._put_all(pipe.set_rules(new_rules, new_cfg), stop)
                frames = self._take(src, take)
                if not frames:
                    break
                done = 0
                try:
                    found = pipe.detect(frames)
                    for frame, dets in zip(frames, found, strict=True):
                        done += 1
                        tracks, events = pipe.follow(frame, dets)
                        self._put_all(events, stop)
                        self.metrics.stage_done(sid, "rules", frame.capture_ns)
                        report.frames[sid] = report.frames.get(sid, 0) + 1
                        report.inferences[sid] = base + pipe.inferences
                        self.metrics.inferred(sid, base + pipe.inferences)
                        if on_frame is not None:
                            pipe.stage = "frame hook"
                            on_frame(frame, tracks, events)
                except Exception as exc:  # also ModelError: inference may work again
                    # the frame that failed is lost; those behind it wait for the restart
                    self._leftover[sid] = frames[max(done, 1) :]
                    raise StageFailed(pipe.stage, exc) from exc
        finally:
            try:
                self._put_all(pipe.close(), stop)
            except Exception:
                log.exception("source %s: closing its open incidents failed", sid)

    def _take(self, src: Source, most: int) -> list[Frame]:
        """The next frame (waiting for it) and those already waiting behind it, up to `most`:
        [] at the end of the source. Frames a failed worker left come first."""
        left = self._leftover.pop(src.id, [])
        if left:
            return left
        first = src.read()
        if first is None:
            return []
        frames = [first]
        while len(frames) < most and src.queued > 0:
            nxt = src.read()
            if nxt is None:
                break
            frames.append(nxt)
        for _ in frames:
            self.metrics.frame_in(src.id)
        return frames

    # --- reload ---------------------------------------------------------------------------------

    def _reload(self, report: RunReport, force: bool = False) -> None:
        """Apply the watched file's zones and rules; a bad file is refused, the run goes on.
        The CURVE allow-lists are re-read too (by the publisher thread: it owns the sockets),
        so a revoked console key stops receiving at once."""
        if self._outlet is not None:
            self._outlet.reload_access(self._on_health)
        if self._watch is None:
            log.warning("reload asked, but the engine was not started from a config file")
            return
        try:
            new_cfg = self._watch.load()
            built = build_rules(new_cfg, self.detector.class_names)
        except EngineError as exc:
            log.error("config reload refused; the running config stays: %s", exc)
            self._on_health(
                HealthEvent(
                    "config.rejected", ENGINE, time.monotonic_ns(), f"config reload refused: {exc}"
                )
            )
            return
        with self._rules_lock:
            plan = plan_rules(self.cfg, self.rules, new_cfg, built)
            running = {s.id for s in self.sources}
            self.rules = {sid: plan.rules.get(sid, []) for sid in running}
            self.cfg = self.cfg.model_copy(update={"zones": new_cfg.zones, "rules": new_cfg.rules})
            for sid, rules in self.rules.items():
                self._pending[sid] = (rules, self.cfg)
        report.reloads += 1
        text = f"config reloaded{' (asked)' if force else ''}: {plan.describe()}"
        log.info("%s", text)
        self._on_health(
            HealthEvent(
                "config.reloaded",
                ENGINE,
                time.monotonic_ns(),
                text,
                {
                    "added": plan.added,
                    "replaced": plan.replaced,
                    "removed": plan.removed,
                    "kept": plan.kept,
                    "needs_restart": plan.needs_restart,
                },
            )
        )

    # --- events and alerts ----------------------------------------------------------------------

    def _on_health(self, event: HealthEvent) -> None:
        """From any thread: never blocks capture; a full queue is logged, not waited."""
        self.health.append(event)
        try:
            self._events.put_nowait(event)
        except queue.Full:
            log.error(
                "event queue full: health event %s of %s not published", event.kind, event.source_id
            )

    def _put_all(self, events: list[Event], stop: threading.Event) -> None:
        for event in events:
            self._put(event, stop)

    def _put(self, event: Event, stop: threading.Event) -> None:
        """Queue an event, waiting while the publisher catches up. Only at shutdown, with the
        queue still full, is an event dropped, and then it is logged as an error."""
        while True:
            try:
                self._events.put(event, timeout=0.5)
                return
            except queue.Full:
                log.warning("event queue full; source %s waits", event.source_id)
                if stop.is_set() and self._events.full():
                    log.error("dropping event %s at shutdown: queue full", event.event_id)
                    return

    def _stats(self) -> dict[str, Any]:
        return self.metrics.summary()

    def _publish_loop(
        self,
        outlet: AlertOutlet,
        sources_done: threading.Event,
        report: RunReport,
        on_alert: Callable[[Alert], None] | None,
        stop: threading.Event | None = None,
    ) -> None:
        """Stamp events in batches (up to PUBLISH_BATCH waiting ones), hand each batch to every
        sink (the ZeroMQ sink journals it before sending), and let sinks beat their heart. A
        sink that says the run must stop (a journal failing under `journal_on_failure: stop`)
        sets `stop` and leaves its error in the report; the events queued meanwhile still go out."""
        while True:
            outlet.tick(self._stats)
            if (fatal := outlet.fatal) and ENGINE not in report.errors:
                report.errors[ENGINE] = fatal  # the run ends with this error (exit status 1)
                if stop is not None:
                    stop.set()
            try:
                batch = [self._events.get(timeout=0.1)]
            except queue.Empty:
                if sources_done.is_set():
                    return
                continue
            while len(batch) < PUBLISH_BATCH:
                try:
                    batch.append(self._events.get_nowait())
                except queue.Empty:
                    break
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
                    self.metrics.stage_done(e.source_id, "alert", e.capture_ns, now)
                self.metrics.published(e.kind)
                if on_alert is not None:
                    try:
                        on_alert(alert)
                    except Exception:  # a caller's hook (say, stdout gone) must not stop alerts
                        log.exception("on_alert failed on alert %d", alert.seq)

    def close(self) -> None:
        """Close sources, the batcher, sinks and the metrics endpoint (idempotent); `run` does it
        when it returns."""
        for src in getattr(self, "sources", []):
            src.close()
        if self._batcher is not None:
            self.inference_calls = self._batcher.calls
            self.inference_images = self._batcher.images
            self._batcher.close()
            self._batcher = None
        if self._outlet is not None:
            self._outlet.close()
        if self._metrics_server is not None:
            self._metrics_server.close()
            self._metrics_server = None
        if self._own_context and not self._context.closed:
            self._context.term()


def _probe(src: Source) -> SourceProbe:
    return SourceProbe(lambda: src.dropped, lambda: src.queued)


def _join(thread: threading.Thread, deadline: float) -> None:
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        log.error(
            "thread %s did not stop within the %.0f s shutdown bound", thread.name, SHUTDOWN_S
        )
