"""The runner: composes sources, detector, rules and sinks, and owns their threads.

One named thread per source reads frames, runs the (shared, thread-safe) detector and that
source's rules, and puts events on a bounded queue; one publisher thread stamps them into alerts
and hands them to every sink. Live sources' health events (online, offline, stalled, ...) take
the same queue and go out on the alert stream under the `health.` topic. A failure in one source
is logged and recorded; the others go on. Every blocking call has a timeout, so `stop` ends the
run within a bound.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import zmq

from engine.alerts import AlertStamper, JsonlSink, ZmqPublisher, with_snapshot
from engine.config import Config, DroneSourceConfig, JsonlOutputConfig, ZmqOutputConfig
from engine.detect import OnnxDetector, build_detector
from engine.errors import EngineError
from engine.fusion import IncidentMerger, WorldTracker
from engine.rules import Rule, build_rules
from engine.runtime.batcher import InferenceBatcher
from engine.runtime.clips import ClipRecorder, with_clip
from engine.runtime.inference import SourceInference
from engine.runtime.positions import GroundTracks, build_locators, with_position
from engine.runtime.scene_view import SceneView
from engine.sources import Source, build_source
from engine.track import ByteTracker, TrackerSettings
from engine.types import Alert, Event, Frame, HealthEvent, Tracks

__all__ = ["FrameHook", "RunReport", "Runner"]

log = logging.getLogger(__name__)

EVENT_QUEUE_SIZE = 10_000
PUBLISH_BATCH = 500
JOIN_TIMEOUT_S = 10.0


FrameHook = Callable[[Frame, Tracks, list[Event]], None]


class Sink(Protocol):
    """Where alerts go."""

    sent: int

    def send_many(self, alerts: list[Alert]) -> None: ...
    def tick(self, stats: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


@dataclass
class RunReport:
    """What a run did."""

    frames: dict[str, int] = field(default_factory=dict)
    inferences: dict[str, int] = field(default_factory=dict)  # below frames: motion gating
    alerts: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0


class Runner:
    """Builds every stage of a config; `run` drives them until the sources end or `stop` is set.

    Args:
        cfg: a validated config.
        context: ZeroMQ context for the publishers (created and owned here if None).

    Raises:
        EngineError: a model, source or output cannot be set up; the message names it.
    """

    def __init__(self, cfg: Config, context: zmq.Context | None = None) -> None:
        self.cfg = cfg
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._sinks: list[Sink] = []
        self._batcher: InferenceBatcher | None = None
        self._stamper = AlertStamper(cfg.site, cfg.routing)
        self._snapshots = any(isinstance(o, ZmqOutputConfig) and o.snapshots for o in cfg.outputs)
        self._events: queue.Queue[Event | HealthEvent] = queue.Queue(maxsize=EVENT_QUEUE_SIZE)
        self.health: list[HealthEvent] = []
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
            self._merger = (IncidentMerger(fu.merge_m, fu.merge_s)
                            if fu.merge_incidents and self._locators else None)  # fmt: skip
            groups = tuple(tuple(g) for g in cfg.tracking.class_groups)
            self.world = WorldTracker(fu.gate_m, fu.lost_s, groups)
            self._world_lock = threading.Lock()
            self.sources: list[Source] = [build_source(s, self._on_health) for s in cfg.sources]
            for src in self.sources:
                src.open()
            for out in cfg.outputs:
                if isinstance(out, ZmqOutputConfig):
                    self._sinks.append(
                        ZmqPublisher(out, self._context, self._stamper.epoch, cfg.site)
                    )
                elif isinstance(out, JsonlOutputConfig):
                    self._sinks.append(JsonlSink(out))
        except BaseException:
            self.close()
            raise

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
            on_frame: called in the source's thread after each frame, with the frame, its tracks
                and the events it caused (recorders, previews).
        """
        report = RunReport()
        t0 = time.monotonic()
        for sink in self._sinks:
            if isinstance(sink, ZmqPublisher) and sink.cfg.wait_subscribers:
                sink.wait_for_subscribers()
        sources_done = threading.Event()
        publisher = threading.Thread(
            target=self._publish_loop,
            args=(sources_done, report, on_alert),
            name="lookout-publisher",
        )
        publisher.start()
        workers = [
            threading.Thread(
                target=self._source_loop,
                args=(src, stop, report, on_frame),
                name=f"lookout-source-{src.id}",
            )
            for src in self.sources
        ]
        for w in workers:
            w.start()
        try:
            while any(w.is_alive() for w in workers) and not stop.is_set():
                stop.wait(0.1)
        finally:
            for src in self.sources:
                src.close()
            for w in workers:
                w.join(JOIN_TIMEOUT_S)
                if w.is_alive():
                    log.error("thread %s did not stop within %.0f s", w.name, JOIN_TIMEOUT_S)
            sources_done.set()
            publisher.join(JOIN_TIMEOUT_S)
            self.close()
        report.elapsed_s = time.monotonic() - t0
        return report

    def _source_loop(
        self,
        src: Source,
        stop: threading.Event,
        report: RunReport,
        on_frame: FrameHook | None,
    ) -> None:
        rules = self.rules.get(src.id, [])
        cfg = src.cfg
        infer = SourceInference(
            self._batcher.detect if self._batcher else self.detector.detect_images,
            getattr(cfg, "motion", None),
            getattr(cfg, "tiling", None),
            [z.polygon for z in self.cfg.zones if z.source == src.id],
            self.cfg.detector.max_det,
        )
        tc = self.cfg.tracking
        tracker = ByteTracker(TrackerSettings(
            high_score=tc.high_score, new_track_score=tc.new_track_score, lost_s=tc.lost_s,
            stationary_s=tc.stationary_s, stationary_lost_s=tc.stationary_lost_s,
            class_groups=tuple(tuple(g) for g in tc.class_groups),
        ), self.detector.class_names) if tc.enabled else None  # fmt: skip
        moving = cfg.moving if cfg.moving is not None else isinstance(cfg, DroneSourceConfig)
        scene = SceneView(moving, rules)
        clips = ClipRecorder(self.cfg.clips, src.id) if self.cfg.clips and rules else None
        locator = self._locators.get(src.id)
        on_ground = GroundTracks(locator) if locator is not None else None
        last: Frame | None = None
        try:
            while not stop.is_set():
                frame = src.read()
                if frame is None:
                    break
                dets = infer.detections(frame)
                tracks = (tracker.update(dets, frame.pts_s) if tracker is not None
                          else Tracks.untracked(dets))  # fmt: skip
                if tracker is not None and tracker.ended:
                    for rule in rules:
                        rule.forget(tracker.ended)
                    if on_ground is not None:
                        on_ground.forget(tracker.ended)
                        with self._world_lock:
                            self.world.forget(src.id, tracker.ended)
                global_ids: dict[int, int] = {}
                if on_ground is not None:
                    tracks = on_ground(tracks, frame)
                    with self._world_lock:
                        gids = self.world.update(src.id, tracks, frame.pts_s + cfg.clock_offset_s)
                    global_ids = dict(zip(tracks.track_id.tolist(), gids.tolist(), strict=True))
                report.inferences[src.id] = infer.inferences
                view = scene.view(frame, tracks) if rules else None
                events = [e for rule in rules for e in rule.step(tracks, frame, view)]
                if locator is not None and events:
                    events = [with_position(e, locator, frame, global_ids) for e in events]
                if clips is not None:
                    clips.add(frame)
                    events = [with_clip(e, clips) for e in events]
                if events and self._snapshots:
                    events = with_snapshot(events, frame)
                for event in events:
                    self._put(event, stop)
                last = frame
                report.frames[src.id] = frame.seq + 1
                if on_frame is not None:
                    on_frame(frame, tracks, events)
        except EngineError as exc:
            report.errors[src.id] = str(exc)
            log.error("%s", exc)
        except Exception as exc:  # a bug in one stream must not take the others down
            report.errors[src.id] = f"source {src.id}: internal error: {exc!r}"
            log.exception("source %s failed", src.id)
        finally:
            if clips is not None:
                clips.close()
            if last is not None:
                closing = [e for rule in rules for e in rule.close(last)]
                if closing and self._snapshots:
                    closing = with_snapshot(closing, last)
                for event in closing:
                    self._put(event, stop)

    def _on_health(self, event: HealthEvent) -> None:
        """From a source's threads: never blocks capture; a full queue is logged, not waited."""
        self.health.append(event)
        try:
            self._events.put_nowait(event)
        except queue.Full:
            log.error("event queue full: health event %s of %s not published", event.kind,
                      event.source_id)  # fmt: skip

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

    def _publish_loop(
        self,
        sources_done: threading.Event,
        report: RunReport,
        on_alert: Callable[[Alert], None] | None,
    ) -> None:
        """Stamp events in batches (up to PUBLISH_BATCH waiting ones), hand each batch to every
        sink (the ZeroMQ sink journals it before sending), and let sinks beat their heart."""
        while True:
            for sink in self._sinks:
                try:
                    sink.tick({"frames": dict(report.frames), "alerts": report.alerts})
                except Exception:
                    log.exception("sink %s failed its heartbeat", type(sink).__name__)
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
            if self._merger is not None:
                batch = [self._merger(e) if isinstance(e, Event) else e for e in batch]
            alerts = [self._stamper.stamp(event) for event in batch]
            for sink in self._sinks:
                try:
                    sink.send_many(alerts)
                except Exception:
                    log.exception("sink %s failed on alerts %d-%d", type(sink).__name__,
                                  alerts[0].seq, alerts[-1].seq)  # fmt: skip
            report.alerts += len(alerts)
            if on_alert is not None:
                for alert in alerts:
                    on_alert(alert)

    def close(self) -> None:
        """Close sources, the batcher and sinks (idempotent); `run` does it when it returns."""
        for src in getattr(self, "sources", []):
            src.close()
        if self._batcher is not None:
            self._batcher.close()
            self._batcher = None
        self._close_sinks()
        if self._own_context and not self._context.closed:
            self._context.term()

    def _close_sinks(self) -> None:
        for sink in self._sinks:
            sink.close()
        self._sinks = []
