"""One source's processing after ingest: detect (directly or through the shared batcher), then
track, place on the ground and fuse, rules, clips and snapshots. Not thread-safe: one per source
thread. Built by `engine.pipeline.build_pipeline` only (the runner, the cluster worker and the
benches alike).

`stage` always names the step in progress, so that when a step raises, the supervisor can say
which stage failed. Outputs that can fail (clips, snapshots) fail alone: the events go on
without them and one `sink.failing` health event says so (`sink.recovered` once they work
again); they never make the stage fail. Rules can be swapped between frames (`set_rules`, for
config reloads): the rules that did not change keep their state; the others end their open
incidents.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from engine.alerts import with_snapshot
from engine.config import (
    Config,
    DroneSourceConfig,
    FileSourceConfig,
    RtspSourceConfig,
)
from engine.detect.inference import DetectFn, SourceInference
from engine.fusion import WorldTracker
from engine.geo.geodesy import GeoOrigin
from engine.geo.locate import Locator
from engine.geo.positions import GroundTracks, with_position
from engine.record.clips import ClipRecorder, with_clip
from engine.record.output_health import OutputHealth
from engine.rules import Rule
from engine.rules.scene_view import SceneView
from engine.track import ByteTracker
from engine.types import Detections, Event, Frame, HealthEvent, Tracks

__all__ = ["SharedWorld", "SourcePipeline", "StageClock"]

log = logging.getLogger(__name__)


@dataclass
class SharedWorld:
    """The world tracker shared by the sources of one engine, and the lock that guards it."""

    tracker: WorldTracker
    lock: threading.Lock = field(default_factory=threading.Lock)


class StageClock(Protocol):
    """Where a pipeline reports that a stage finished a frame (the runtime's metrics)."""

    def stage_done(
        self, source: str, stage: str, capture_ns: int, now_ns: int | None = None
    ) -> None: ...


class SourcePipeline:
    """Everything one source's frames go through after ingest.

    Args:
        cfg: the whole config (tracking, zones, clips settings).
        source_cfg: this source's config.
        detect: runs the detector (directly or through the shared batcher).
        class_names: the detector's classes.
        rules: this source's rules.
        locator: maps this source's pixels to the ground, or None.
        world: the shared world tracker (used when `locator` is set).
        clock: where stage latencies go (None: not measured).
        snapshots: attach a JPEG of the frame to each event.
        on_health: receives the health events of this source's outputs (clips, snapshots).
    """

    def __init__(
        self,
        cfg: Config,
        source_cfg: FileSourceConfig | RtspSourceConfig | DroneSourceConfig,
        detect: DetectFn,
        class_names: tuple[str, ...],
        rules: Sequence[Rule],
        locator: Locator | None,
        world: SharedWorld,
        clock: StageClock | None,
        snapshots: bool,
        on_health: Callable[[HealthEvent], None] | None = None,
    ) -> None:
        self.id: str = source_cfg.id
        self.cfg = cfg
        self.stage = "setup"
        self.last: Frame | None = None
        self._src_cfg = source_cfg
        self._world = world
        self._clock = clock
        self.global_ids: dict[int, int] = {}  # the last frame's: track id -> global track id
        self._snapshots = snapshots
        self._on_health = on_health
        self._snapshot_health = OutputHealth("snapshots", self.id, on_health)
        self._detect = detect
        self._class_names = class_names
        self._locator = locator
        self._ground = GroundTracks(locator) if locator is not None else None
        tc = cfg.tracking
        self._tracker = ByteTracker(tc, class_names) if tc.enabled else None
        moving = source_cfg.moving
        self._moving = moving if moving is not None else isinstance(source_cfg, DroneSourceConfig)
        self.rules: list[Rule] = []
        self._zones: list[list[tuple[float, float]]] = []
        self._infer: SourceInference | None = None
        self._scene = SceneView(self._moving, [], self._origin())
        self._clips: ClipRecorder | None = None
        self._set_rules(list(rules), cfg)

    def _origin(self) -> GeoOrigin | None:
        """The site origin, where this source maps to the ground."""
        return self._locator.origin if self._locator is not None else None

    @property
    def inferences(self) -> int:
        """Frames that went to the detector."""
        return self._infer.inferences if self._infer is not None else 0

    def detect(self, frames: list[Frame]) -> list[Detections]:
        """Detections of consecutive frames of this source, in one detector call; then
        `analyse` each, in order."""
        self.stage = "detect"
        assert self._infer is not None
        found = self._infer.detections_many(frames)
        now = time.monotonic_ns()
        for frame in frames:
            self._stage_done("detect", frame, now)
        return found

    def analyse(self, frame: Frame, dets: Detections) -> tuple[Tracks, list[Event]]:
        """Everything after detection, for one frame: track, place on the ground and fuse
        (`global_ids`), rules, then clips and snapshots on the events. Its tracks and the
        events it caused."""
        tracks = self._track(frame, dets)
        if self._ground is not None:
            tracks = self._place(frame, tracks)
        self._stage_done("track", frame)
        events = self._apply_rules(frame, tracks)
        if self._clips is not None:
            self.stage = "clips"
            events = self._with_clips(frame, events)
        if events and self._snapshots:
            events = self._with_snapshot(events, frame)
        self.last = frame
        self.stage = "publish"
        return tracks, events

    def _stage_done(self, stage: str, frame: Frame, now_ns: int | None = None) -> None:
        if self._clock is not None:
            self._clock.stage_done(self.id, stage, frame.capture_ns, now_ns)

    def _track(self, frame: Frame, dets: Detections) -> Tracks:
        """Identities across frames (untracked detections when tracking is off)."""
        self.stage = "track"
        tracker = self._tracker
        if tracker is None:
            return Tracks.untracked(dets)
        tracks = tracker.update(dets, frame.pts_s)
        if tracker.ended:
            self._forget(tracker.ended)
        return tracks

    def _place(self, frame: Frame, tracks: Tracks) -> Tracks:
        """Tracks on the ground, and their global identities in the shared world."""
        assert self._ground is not None
        self.stage = "ground"
        tracks = self._ground(tracks, frame)
        site_time = frame.pts_s + self._src_cfg.clock_offset_s
        with self._world.lock:
            gids = self._world.tracker.update(self.id, tracks, site_time)
        self.global_ids = dict(zip(tracks.track_id.tolist(), gids.tolist(), strict=True))
        return tracks

    def _apply_rules(self, frame: Frame, tracks: Tracks) -> list[Event]:
        """Every rule's events for this frame, placed on the ground where the source is."""
        self.stage = "rules"
        rules = self.rules
        view = self._scene.view(frame, tracks) if rules else None
        events = [e for rule in rules for e in rule.step(tracks, frame, view)]
        if self._locator is not None and events:
            events = [with_position(e, self._locator, frame, self.global_ids) for e in events]
        return events

    def set_rules(self, rules: Sequence[Rule], cfg: Config) -> list[Event]:
        """Swap in a new rule set (config reload) between frames. Rules equal to a current one
        (same id and configuration) keep the current instance and its state; the rest of the
        current rules end their open incidents: those events are returned."""
        keep = {id(r) for r in rules}
        closing = self._close_rules([r for r in self.rules if id(r) not in keep])
        self._set_rules(list(rules), cfg)
        return closing

    def close(self) -> list[Event]:
        """End every open incident (the stream ended, or the stage is restarted)."""
        if self._clips is not None:  # finished first: the end events say what became of them
            try:
                self._clips.close()
            except Exception:
                log.exception("source %s: closing its clips failed", self.id)
        return self._close_rules(self.rules)

    def _with_clips(self, frame: Frame, events: list[Event]) -> list[Event]:
        """The frame offered to the clips, and the events naming theirs; a clip failure (even
        a bug) leaves the events as they are."""
        clips = self._clips
        assert clips is not None
        try:
            clips.add(frame)
            return [with_clip(e, clips) for e in events]
        except Exception as exc:
            log.exception("source %s: clips failed", self.id)
            clips.health.failed(f"clips failed: {exc!r}")
            return events

    def _with_snapshot(self, events: list[Event], frame: Frame) -> list[Event]:
        """The events with a JPEG of the frame; without one when it cannot be made."""
        try:
            done = with_snapshot(events, frame)
        except Exception as exc:
            log.debug("source %s: snapshot failed", self.id, exc_info=True)
            self._snapshot_health.failed(f"snapshot not made: {exc!r}")
            return events
        if any(e.snapshot for e in done):
            self._snapshot_health.ok()
        else:
            self._snapshot_health.failed("the frame could not be encoded as JPEG")
        return done

    def _set_rules(self, rules: list[Rule], cfg: Config) -> None:
        zones = [z.polygon for z in cfg.zones if z.source == self.id]
        if self._infer is None or zones != self._zones:
            sc = self._src_cfg
            old, self._infer = (
                self._infer,
                SourceInference(
                    self._detect,
                    sc.motion,
                    sc.tiling,
                    zones,
                    cfg.detector.max_det,
                ),
            )
            if old is not None:  # counters go on across a reload
                self._infer.frames, self._infer.inferences = old.frames, old.inferences
            self._zones = zones
        needs = any(r.needs_foreground for r in rules)
        had = any(r.needs_foreground for r in self.rules)
        if needs != had or not self.rules:
            self._scene = SceneView(self._moving, rules, self._origin())
        if rules and self._clips is None and cfg.clips is not None:
            self._clips = ClipRecorder(cfg.clips, self.id, self._on_health)
        self.rules = rules

    def _close_rules(self, rules: Sequence[Rule]) -> list[Event]:
        last = self.last
        if last is None or not rules:
            return []
        self.stage = "close"
        closing: list[Event] = []
        for rule in rules:  # one broken rule must not leave the others' incidents open
            try:
                closing += rule.close(last)
            except Exception:
                log.exception("source %s: rule %s failed to end its incidents", self.id, rule.id)
        if closing and self._clips is not None:
            clips = self._clips
            try:
                closing = [with_clip(e, clips) if e.phase != "start" else e for e in closing]
            except Exception:
                log.exception("source %s: clip states of ending incidents failed", self.id)
        if closing and self._snapshots:
            closing = self._with_snapshot(closing, last)
        return closing

    def _forget(self, ended: list[int]) -> None:
        for rule in self.rules:
            rule.forget(ended)
        if self._ground is not None:
            self._ground.forget(ended)
            with self._world.lock:
                self._world.tracker.forget(self.id, ended)
