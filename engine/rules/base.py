"""What every rule shares: the view of the scene, incident lifecycles, per-track memory, events.

A rule is a plain object with three verbs:
    step(tracks, frame, view) -> list[Event]   one frame's tracks
    forget(track_ids)                          those tracks ended: free their state
    close(frame) -> list[Event]                the stream ended: end open incidents
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from engine.config import Anchor, ZoneConfig
from engine.errors import ConfigError
from engine.preprocess.ground_register import apply_homography
from engine.rules.geometry import anchor_points, points_in_polygon
from engine.types import Event, EventPhase, EventStage, Frame, Tracks

__all__ = [
    "Incident",
    "Rule",
    "TrackMemory",
    "View",
    "ZoneRule",
    "ZoneRuleConfig",
    "class_ids",
    "covered",
    "in_zone",
    "make_event",
]


def _no_boxes() -> npt.NDArray[np.float32]:
    return np.zeros((0, 4), np.float32)


@dataclass(frozen=True, slots=True)
class View:
    """How this frame's image relates to the scene, beyond the tracks.

    Attributes:
        to_scene_h: 3x3 homography from image pixels to scene coordinates, which stay put
            while the camera moves: a drone's frame registered to the ground (its telemetry),
            or its image shift since the first frame (no telemetry); None on a fixed camera,
            whose scene is its image.
        moving: the camera moves (a drone): what it saw may be out of view, then seen again.
        static_xyxy: f32 [n, 4] regions the background model sees as new and still (fixed
            cameras; empty where not computed), in image pixels.
        static_age_s: f32 [n] how long each region has been still.
    """

    to_scene_h: npt.NDArray[np.float64] | None = None
    moving: bool = False
    static_xyxy: npt.NDArray[np.float32] = field(default_factory=_no_boxes)
    static_age_s: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))

    def to_scene(self, xy: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
        """Image points (f [n, 2]) in scene coordinates."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        return xy if self.to_scene_h is None else apply_homography(self.to_scene_h, xy)

    def to_image(self, xy: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
        """Scene points (f [n, 2]) in this frame's image pixels."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        if self.to_scene_h is None:
            return xy
        return apply_homography(np.linalg.inv(self.to_scene_h), xy)

    def scene_box(self, xyxy: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
        """An image box (xyxy) as the scene box that holds its four corners."""
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        c = self.to_scene(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]))
        return np.array([*c.min(axis=0), *c.max(axis=0)], np.float32)

    def centre(self, xyxy: npt.NDArray[np.floating[Any]]) -> tuple[float, float]:
        """The scene point of an image box's centre."""
        x, y = self.to_scene(np.array([[(xyxy[0] + xyxy[2]) / 2, (xyxy[1] + xyxy[3]) / 2]]))[0]
        return float(x), float(y)


class Rule(Protocol):
    """The contract of every rule (see the module docstring)."""

    id: str
    source_id: str
    # the runtime runs a background model for the source (View.foreground) when a rule asks
    needs_foreground: bool

    def step(self, tracks: Tracks, frame: Frame, view: View | None = None) -> list[Event]:
        """Events caused by this frame (usually none)."""
        ...

    def forget(self, track_ids: list[int]) -> None:
        """Free state kept for tracks that ended."""
        ...

    def close(self, frame: Frame) -> list[Event]:
        """End open incidents because the stream ended."""
        ...


class ZoneRuleConfig(Protocol):
    """What every zone rule's configuration has (engine.config.rules)."""

    @property
    def id(self) -> str:
        """The rule's id."""
        ...

    @property
    def zone(self) -> str:
        """The id of the zone it watches."""
        ...


C = TypeVar("C", bound=ZoneRuleConfig)


class ZoneRule(Generic[C]):
    """What every rule that watches a zone holds: its config, id, source, zone and polygon.

    Generic over the rule's configuration model, so that each rule's `self.cfg` has its own
    type: `class CrowdRule(ZoneRule[CrowdRuleConfig])`.

    Args:
        cfg: the rule's configuration (its `id` names the rule).
        zone: the zone it watches, in its source's image pixels.
    """

    def __init__(self, cfg: C, zone: ZoneConfig) -> None:
        self.cfg: C = cfg
        self.id: str = cfg.id
        self.source_id: str = zone.source
        self.needs_foreground = False  # rules that read View.foreground set it
        self.zone = zone
        self._polygon = np.asarray(zone.polygon, np.float64)


def class_ids(rule_id: str, wanted: Iterable[str], class_names: tuple[str, ...]) -> frozenset[int]:
    """Ids of the named classes.

    Raises:
        ConfigError: a class the detector does not know.
    """
    wanted = list(wanted)
    unknown = [c for c in wanted if c not in class_names]
    if unknown:
        raise ConfigError(
            f"rule {rule_id}: classes {unknown} are not known to the detector "
            f"(it knows: {', '.join(class_names)})"
        )
    return frozenset(class_names.index(c) for c in wanted)


def in_zone(
    tracks: Tracks,
    ids: frozenset[int],
    min_score: float,
    anchor: Anchor,
    polygon: npt.NDArray[np.float64] | None,
) -> npt.NDArray[np.bool_]:
    """Tracks of the classes `ids` (all when empty), scored >= min_score, whose anchor point
    lies in `polygon` (image pixels; None: anywhere) -> bool [n]."""
    mask = tracks.score >= min_score
    if ids:
        mask &= np.isin(tracks.class_id, np.fromiter(ids, np.int32, len(ids)))
    if polygon is not None and mask.any():
        mask[mask] = points_in_polygon(anchor_points(tracks.xyxy[mask], anchor), polygon)
    return mask


def covered(box: npt.NDArray[np.float32], others: npt.NDArray[np.float32]) -> bool:
    """Half or more of `box` (xyxy) lies inside one of `others` (f32 [n, 4])."""
    if not len(others):
        return False
    iw = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    area = max(1e-6, float((box[2] - box[0]) * (box[3] - box[1])))
    return bool((iw * ih / area >= 0.5).any())


class Incident:
    """One incident's lifecycle: an event id from start to end, update pacing and a cooldown
    after it ends so that the same situation is not reported twice in a row."""

    def __init__(self, cooldown_s: float) -> None:
        self.cooldown_s = cooldown_s
        self.event_id: str | None = None
        self.started_pts = 0.0
        self.last_emit_pts = 0.0
        self._ended_pts = -math.inf

    @property
    def open(self) -> bool:
        """An incident is under way."""
        return self.event_id is not None

    def can_start(self, pts: float) -> bool:
        """No incident open, and the cooldown since the last one has passed."""
        return self.event_id is None and pts - self._ended_pts >= self.cooldown_s

    def start(self, pts: float) -> str:
        """Open an incident; returns its event id."""
        self.event_id = uuid.uuid4().hex
        self.started_pts = self.last_emit_pts = pts
        return self.event_id

    def update_due(self, pts: float, every_s: float) -> bool:
        """An update is due (every_s > 0 and that long since the last emitted phase)."""
        if self.event_id is None or every_s <= 0 or pts - self.last_emit_pts < every_s:
            return False
        self.last_emit_pts = pts
        return True

    def end(self, pts: float) -> str:
        """Close the incident; returns its event id."""
        assert self.event_id is not None
        event_id, self.event_id = self.event_id, None
        self._ended_pts = pts
        return event_id


class TrackMemory:
    """A short history per track, in scene coordinates: (pts, x, y, box height, box diagonal).

    Bounded: `horizon_s` of history per track, and a track's entry goes when `forget` is called.
    """

    def __init__(self, horizon_s: float = 3.0) -> None:
        self.horizon_s = horizon_s
        self._h: dict[int, deque[tuple[float, float, float, float, float]]] = {}

    def add(
        self, track_id: int, pts: float, xy: tuple[float, float], height: float, diag: float
    ) -> None:
        """Record a track's position at `pts`."""
        h = self._h.setdefault(track_id, deque())
        h.append((pts, xy[0], xy[1], height, diag))
        while h and pts - h[0][0] > self.horizon_s:
            h.popleft()

    def velocity(self, track_id: int, window_s: float = 1.0) -> tuple[float, float] | None:
        """Scene velocity (px/s) over about `window_s`, or None without enough history."""
        h = self._h.get(track_id)
        if not h or len(h) < 3:
            return None
        last = h[-1]
        first = next((e for e in h if last[0] - e[0] <= window_s), h[0])
        dt = last[0] - first[0]
        if dt < window_s * 0.5:
            return None
        return (last[1] - first[1]) / dt, (last[2] - first[2]) / dt

    def size(self, track_id: int) -> tuple[float, float]:
        """Median (box height, box diagonal) over the history: robust to a bad box."""
        h = self._h.get(track_id)
        if not h:
            return 0.0, 0.0
        return float(np.median([e[3] for e in h])), float(np.median([e[4] for e in h]))

    def span(self, track_id: int, window_s: float) -> tuple[float, float] | None:
        """(seconds covered, largest distance from the latest position) over the last
        `window_s`: a track that stayed within a small distance for long is still."""
        h = self._h.get(track_id)
        if not h:
            return None
        last = h[-1]
        pts = [e for e in h if last[0] - e[0] <= window_s]
        dist = max(math.hypot(e[1] - last[1], e[2] - last[2]) for e in pts)
        return last[0] - pts[0][0], dist

    def forget(self, track_ids: Iterable[int]) -> None:
        """Drop the history of ended tracks."""
        for t in track_ids:
            self._h.pop(t, None)

    def __len__(self) -> int:
        return len(self._h)


def make_event(
    *,
    rule_id: str,
    kind: str,
    phase: EventPhase,
    event_id: str,
    frame: Frame,
    severity: str,
    xyxy: npt.NDArray[np.float32] | None = None,
    score: npt.NDArray[np.float32] | None = None,
    labels: tuple[str, ...] = (),
    track_id: npt.NDArray[np.int64] | None = None,
    zone_id: str | None = None,
    attributes: dict[str, Any] | None = None,
    stage: EventStage | None = None,
) -> Event:
    """An Event with the objects involved (or none)."""
    n = 0 if xyxy is None else len(xyxy)
    return Event(
        event_id=event_id,
        kind=kind,
        phase=phase,
        source_id=frame.source_id,
        rule_id=rule_id,
        pts_s=frame.pts_s,
        capture_ns=frame.capture_ns,
        xyxy=np.ascontiguousarray(xyxy if xyxy is not None else _no_boxes(), np.float32),
        score=np.ascontiguousarray(score if score is not None else np.zeros(n), np.float32),
        labels=labels or ("",) * n,
        track_id=np.ascontiguousarray(
            track_id if track_id is not None else np.full(n, -1), np.int64
        ),
        zone_id=zone_id,
        severity=severity,  # type: ignore[arg-type]
        attributes=attributes or {},
        frame_size=(frame.width, frame.height),
        stage=stage,
    )
