"""The runner: composes sources, detector, rules and sinks, and owns their threads.

Stages, each on its own threads with bounded hand-overs:
- ingest: one thread per source decodes into a small buffer (live cameras and native-rate files
  drop the oldest frame when the engine is behind, counted; max-rate files wait);
- inference: one shared thread batches frames of all sources into one detector call;
- per source, one thread runs its source loop (`source_loop.py`) over the pipeline
  `engine.pipeline.build_pipeline` makes: tracking, ground positions, rules, clips, snapshots;
- one publisher (`publisher.py`): stamps events into alerts (journal, then ZeroMQ) and beats
  the heartbeat.
The source loop restarts a source's pipeline that failed, with backoff, and reports it on the
alert stream (`stage.failed`, `stage.restarted`); the other sources go on. Metrics per source and
stage go to Prometheus (`metrics:`) and into the heartbeat. Zones and rules are reloaded from
the config file between frames. Every blocking call has a timeout, so `stop` ends the run within
a bound: open incidents are ended, queued alerts published, the journal and sockets closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import zmq

from engine.alerts.outlet import AlertOutlet
from engine.config import Config
from engine.detect import OnnxDetector, build_detector
from engine.errors import EngineError
from engine.geo.positions import build_locators
from engine.pipeline import SourcePipeline, build_pipeline, new_world
from engine.rules import Rule, build_rules
from engine.runtime.batcher import InferenceBatcher
from engine.runtime.metrics import RuntimeMetrics, SourceProbe
from engine.runtime.metrics_http import MetricsServer
from engine.runtime.publisher import ENGINE, EventQueue, RunReport, publish_loop
from engine.runtime.reload import ConfigWatcher, plan_rules
from engine.runtime.source_loop import Emitted, SourceLoop
from engine.runtime.supervisor import RestartPolicy
from engine.sources import Source, build_source
from engine.types import Alert, Event, Frame, HealthEvent, Tracks

__all__ = ["FrameHook", "Runner"]

log = logging.getLogger(__name__)

SHUTDOWN_S = 10.0  # every thread joined within this, all together
WATCH_EVERY_S = 1.0  # config file polls
HEALTH_KEPT = 1000  # health events kept in memory (all are published and journaled)


FrameHook = Callable[[Frame, Tracks, list[Event]], None]


class Runner:
    """Builds every stage of a config; `run` drives them until the sources end or `stop` is set.

    Args:
        cfg: a validated config.
        context: ZeroMQ context for the publishers (created and owned here if None).
        watch: the config file to reload zones and rules from when it changes (None: no reload).

    Raises:
        EngineError: a model, output or the metrics endpoint cannot be set up; the message
            names it (an endpoint that cannot be bound, ZeroMQ or metrics: from `run`, which
            binds them). Sources are opened by `run`, each in its own worker thread: one that
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
        self._events = EventQueue()
        self._rules_lock = threading.Lock()
        self._pending: dict[str, tuple[list[Rule], Config]] = {}
        self._loops: dict[str, SourceLoop] = {}  # each source's, while the run lasts
        self.health: deque[HealthEvent] = deque(maxlen=HEALTH_KEPT)  # the latest, for callers
        self.inference_calls = 0  # detector calls of the shared batcher (known once closed)
        self.inference_images = 0
        self.metrics = RuntimeMetrics([s.id for s in cfg.sources])
        self._policy = RestartPolicy.of(cfg.supervisor)
        try:
            self.detector: OnnxDetector = build_detector(cfg.detector)
            det = cfg.detector
            self._batcher = (
                InferenceBatcher(self.detector, det.batch_max, det.batch_wait_ms)
                if det.batch_max > 1
                else None
            )
            self.rules: dict[str, list[Rule]] = build_rules(cfg, self.detector.class_names)
            placed = bool(build_locators(cfg))  # checks every calibration now, not per source
            self._world = new_world(cfg)
            self.world = self._world.tracker
            self.sources: list[Source] = [build_source(s, self._on_health) for s in cfg.sources]
            for src in self.sources:  # opened by their workers: one that cannot ends alone
                self.metrics.probe(src.id, _probe(src))
            self.metrics.queue("events", self._events.qsize)
            if self._batcher is not None:
                self.metrics.queue("inference", self._batcher.pending)
            merge = cfg.fusion.merge_incidents and placed
            self._outlet = AlertOutlet(cfg, self._context, merge)
            if cfg.metrics is not None:
                self._metrics_server = MetricsServer(cfg.metrics, self.metrics)
        except BaseException:
            self.close()
            raise

    @property
    def metrics_url(self) -> str | None:
        """Where the Prometheus endpoint serves (None when not configured, or before `run`)."""
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
        try:  # every thread of the run starts here, none in the constructor
            outlet.start()  # binds the ZeroMQ outputs, starts the replay and CURVE threads
            if self._metrics_server is not None:
                self._metrics_server.start()
            if self._batcher is not None:
                self._batcher.start()
        except BaseException:  # an endpoint that cannot be bound: what started is closed
            self.close()
            raise
        outlet.wait_for_subscribers()
        sources_done = threading.Event()
        publisher = threading.Thread(
            target=publish_loop,
            args=(self._events, outlet, self.metrics, sources_done, report, on_alert, stop),
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
            for sid, src_loop in self._loops.items():  # also of a worker that missed the bound
                if src_loop.restarts:
                    report.restarts[sid] = src_loop.restarts
            sources_done.set()
            _join(publisher, deadline)
            self.close()
        report.elapsed_s = time.monotonic() - t0
        return report

    # --- per source -----------------------------------------------------------------------------

    def _supervised(
        self, src: Source, stop: threading.Event, report: RunReport, on_frame: FrameHook | None
    ) -> None:
        """One source's worker thread: its loop (engine.runtime.source_loop) to the end."""
        sid = src.id

        def make_pipeline() -> SourcePipeline:
            with self._rules_lock:
                self._pending.pop(sid, None)
                if loop.restarts:  # a restarted worker starts with fresh rules
                    self.rules[sid] = build_rules(self.cfg, self.detector.class_names)[sid]
                rules, cfg = self.rules[sid], self.cfg
            detect = self._batcher.detect if self._batcher else self.detector.detect_images
            return build_pipeline(
                cfg,
                sid,
                detect,
                self.detector.class_names,
                self._world,
                rules=rules,
                clock=self.metrics,
                on_health=self._on_health,
            )

        def emit(out: Emitted) -> None:
            self._events.put_all(out.events, stop)
            if out.frame is None or out.tracks is None:
                return
            report.frames[sid] = report.frames.get(sid, 0) + 1
            report.inferences[sid] = loop.inferences
            if on_frame is not None and loop.pipeline is not None:
                loop.pipeline.stage = "frame hook"
                on_frame(out.frame, out.tracks, out.events)

        def between(pipe: SourcePipeline) -> list[Event]:
            if sid not in self._pending:
                return []
            with self._rules_lock:
                new_rules, new_cfg = self._pending.pop(sid)
            return pipe.set_rules(new_rules, new_cfg)

        take = self.cfg.detector.batch_max if self.detector.info.batch_dynamic else 1
        loop = SourceLoop(
            src,
            make_pipeline,
            emit,
            self._on_health,
            batch=take,
            policy=self._policy,
            metrics=self.metrics,
            between=between,
        )
        self._loops[sid] = loop
        end = loop.run(stop)
        if end.error is not None:
            report.errors[sid] = end.error

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

    # --- events ---------------------------------------------------------------------------------

    def _on_health(self, event: HealthEvent) -> None:
        """From any thread: kept for callers, and queued without waiting."""
        self.health.append(event)
        self._events.put_health(event)

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
