"""Abandoned objects: something left still in a zone with nobody near it for `unattended_s`.

Objects are still tracks of `object_classes` and, on fixed cameras, new static regions of the
background model that no tracked box covers (so a bag the detector has no class for is still
seen). The owner is anyone of `owner_classes` within `owner_radius` object sizes; while someone
is that close (for `attend_s`, and not walking past at over `walk_speed_mps` where the source
maps to the ground) the clock does not run. An object that first shows where a vehicle of
`vehicle_classes` stands or stood shortly before is the vehicle's (a dumped load, which the
dumping rule reports, or the place a parked car left) and is never reported. One incident per
object however it is seen: a detection and a background region at the same place, or a new track
where an object's lost track was, are the same object. It ends once the object is gone for
`clear_after_s`; objects unseen for longer are forgotten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from engine.config import AbandonedObjectRuleConfig, ZoneConfig
from engine.rules.base import (
    Incident,
    TrackMemory,
    View,
    ZoneRule,
    class_ids,
    covered,
    in_zone,
    make_event,
)
from engine.rules.geometry import anchor_points, points_in_polygon
from engine.types import Event, Frame, Tracks

__all__ = ["AbandonedObjectRule"]

F32 = npt.NDArray[np.float32]


_VEHICLE_SETTLES_S = 4.0  # an object this new may still turn out to be a stopping vehicle's

# (scene centre, size, image box, track id or -1, still since)
_Candidate = tuple[tuple[float, float], float, F32, int, float]


@dataclass(slots=True)
class _Object:
    xy: tuple[float, float]  # scene centre
    size: float
    box: F32  # image box when last seen
    first_pts: float
    last_seen_pts: float
    attended_pts: float
    track_id: int  # its latest track; -1: seen by the background model only
    incident: Incident
    evidence: set[str]  # "detector", "background_model"
    by_vehicle: bool = False  # first seen where a vehicle stood: its load, not abandoned
    # owner track -> (within reach since, last seen within reach)
    near: dict[int, tuple[float, float]] = field(default_factory=dict)


class AbandonedObjectRule(ZoneRule[AbandonedObjectRuleConfig]):
    """Watches one zone for objects left behind.

    Args:
        cfg: the rule's configuration.
        zone: the zone it watches.
        class_names: the detector's class names.
    """

    kind = "abandoned_object"

    def __init__(
        self, cfg: AbandonedObjectRuleConfig, zone: ZoneConfig, class_names: tuple[str, ...]
    ) -> None:
        super().__init__(cfg, zone)
        self.needs_foreground = cfg.use_foreground
        self._objects_cls = class_ids(cfg.id, cfg.object_classes, class_names)
        self._owners = class_ids(cfg.id, cfg.owner_classes, class_names)
        self._memory = TrackMemory(horizon_s=3.0)
        self._objects: list[_Object] = []
        self._vehicles = class_ids(
            cfg.id, [c for c in cfg.vehicle_classes if c in class_names], class_names
        )
        self._vehicle_memory = TrackMemory(horizon_s=3.0)
        self._drove: set[int] = set()  # vehicle tracks seen driving (a parked one leaves no mark)
        # still vehicle's track id -> (scene box x0, y0, x1, y1 grown by half its size, last seen)
        self._footprints: dict[int, tuple[tuple[float, float, float, float], float]] = {}

    def _candidates(self, tracks: Tracks, frame: Frame, view: View) -> list[_Candidate]:
        """(scene centre, size, image box, track id or -1, still since) of still objects in the
        zone."""
        cfg = self.cfg
        out = []
        if self._objects_cls:
            mask = in_zone(tracks, self._objects_cls, cfg.min_score, "center", self._polygon)
            for i in np.flatnonzero(mask & (tracks.track_id >= 0)):
                box = tracks.xyxy[i]
                tid = int(tracks.track_id[i])
                c = view.centre(box)
                size = float(max(box[2] - box[0], box[3] - box[1]))
                self._memory.add(tid, frame.pts_s, c, size, size)
                span = self._memory.span(tid, 2.0)
                if _still(span, size):
                    assert span is not None
                    out.append((c, size, box, tid, frame.pts_s - span[0]))
        if cfg.use_foreground and not view.moving and len(view.static_xyxy):
            covering = tracks.xyxy[tracks.score >= 0.2]
            boxes = view.static_xyxy
            centres = np.stack(
                [(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1
            ).astype(np.float64)
            inside = points_in_polygon(centres, self._polygon)
            for box, age, ok, c in zip(boxes, view.static_age_s, inside, centres, strict=True):
                w, h = float(box[2] - box[0]), float(box[3] - box[1])
                size = max(w, h)
                if not ok or not cfg.min_size_px <= size <= cfg.max_size_px:
                    continue
                if h > 1.8 * w or covered(box, covering):
                    continue  # someone standing still (detected or not) is no object
                out.append(((float(c[0]), float(c[1])), size, box, -1, frame.pts_s - float(age)))
        return out

    def _match(
        self, xy: tuple[float, float], size: float, tid: int, live: set[int]
    ) -> _Object | None:
        """The object a candidate is: the one of its track, else the nearest one at its place
        (within 0.6 sizes) that another live track of this frame does not hold."""
        if tid >= 0:
            for obj in self._objects:
                if obj.track_id == tid:
                    return obj
        best, best_d = None, math.inf
        for obj in self._objects:
            if tid >= 0 and obj.track_id >= 0 and obj.track_id != tid and obj.track_id in live:
                continue  # another object, tracked right now
            d = math.hypot(xy[0] - obj.xy[0], xy[1] - obj.xy[1])
            if d <= 0.6 * max(size, obj.size) and d < best_d:
                best, best_d = obj, d
        return best

    def step(self, tracks: Tracks, frame: Frame, view: View | None = None) -> list[Event]:
        """Follow still objects and their owners; start or end incidents."""
        view = view or View()
        pts = frame.pts_s
        cfg = self.cfg
        owners = in_zone(tracks, self._owners, 0.0, "center", None)
        owner_xy = view.to_scene(anchor_points(tracks.xyxy[owners], "center"))
        owner_ids = tracks.track_id[owners]
        # walking past (ground speed, where the source maps to it): they attend nothing
        walking = {
            int(t)
            for t, v in zip(owner_ids, tracks.speed_mps[owners], strict=True)
            if v > cfg.walk_speed_mps  # nan (unmapped) compares false
        }
        events: list[Event] = []
        self._note_vehicles(tracks, view, pts)
        candidates = self._candidates(tracks, frame, view)
        live = {c[3] for c in candidates if c[3] >= 0}
        for xy, size, box, tid, since in candidates:
            obj = self._match(xy, size, tid, live)
            reach = cfg.owner_radius * max(size, 1.0)
            close = [int(t) for t in owner_ids[_within(owner_xy, xy, reach)]]
            new = obj is None
            if obj is None:
                # unattended from when it became still: the owner, if near, resets it below
                obj = _Object(
                    xy, size, box, since, pts, since, tid, Incident(cfg.cooldown_s), set()
                )
                # who is by it as it shows left it: they attend it at once
                obj.near = {t: (since - cfg.attend_s, pts) for t in close if t >= 0}
                self._objects.append(obj)
            if not obj.by_vehicle and (new or pts - obj.first_pts <= _VEHICLE_SETTLES_S):
                # a load may show while its vehicle is still pulling up (not yet still long
                # enough to leave a footprint): look again in its first seconds
                obj.by_vehicle = self._where_vehicle_was(xy, tid)
            obj.evidence.add("detector" if tid >= 0 else "background_model")
            if tid >= 0:
                obj.track_id = tid
            elif obj.track_id >= 0 and obj.track_id in live:
                continue  # its detection this frame says where it is
            obj.xy, obj.size, obj.box, obj.last_seen_pts = xy, size, box, pts
            if self._attended(obj, close, walking, pts):
                obj.attended_pts = pts
            unattended = pts - obj.attended_pts
            if (
                not obj.incident.open
                and not obj.by_vehicle
                and unattended >= cfg.unattended_s
                and (obj.incident.can_start(pts))
            ):
                obj.incident.start(pts)
                events.append(self._event("start", obj, frame, unattended))
        keep = []
        for obj in self._objects:
            gone = pts - obj.last_seen_pts
            if obj.incident.open and gone >= cfg.clear_after_s:
                events.append(self._event("end", obj, frame, pts - obj.attended_pts))
            if gone < max(cfg.clear_after_s, 2.0) or obj.incident.open:
                keep.append(obj)
        self._objects = keep
        return events

    def _attended(self, obj: _Object, close: list[int], walking: set[int], pts: float) -> bool:
        """Someone (track ids `close`, within reach now) has been within reach of the object for
        attend_s, not walking past (`walking`: their clock starts again, unless they attend it
        already), or was there when it showed (untracked people count at once)."""
        # within reach since, last seen there; a missed detection (under 1 s) keeps the entry
        near = {t: v for t, v in obj.near.items() if pts - v[1] <= 1.0}
        for t in close:
            if t >= 0:
                since = near.get(t, (pts, pts))[0]
                if t in walking and pts - since < self.cfg.attend_s:
                    since = pts  # walking past; one who attends it already goes on attending
                near[t] = (since, pts)
        obj.near = near
        return any(t < 0 for t in close) or any(
            pts - since >= self.cfg.attend_s for t, (since, _) in near.items() if t in close
        )

    def _note_vehicles(self, tracks: Tracks, view: View, pts: float) -> None:
        """Remember where vehicles that drove in stand still (scene boxes grown by half their
        size each side); one driving past, or parked all along, leaves no footprint."""
        if not self._vehicles:
            return
        mask = in_zone(tracks, self._vehicles, self.cfg.min_score, "center", None)
        for i in np.flatnonzero(mask & (tracks.track_id >= 0)):
            box = tracks.xyxy[i]
            tid = int(tracks.track_id[i])
            size = float(max(box[2] - box[0], box[3] - box[1]))
            self._vehicle_memory.add(tid, pts, view.centre(box), size, size)
            span = self._vehicle_memory.span(tid, 2.0)
            if span and span[0] >= 1.0 and span[1] > 0.3 * size:
                self._drove.add(tid)
            if not _still(span, size) or tid not in self._drove:
                continue  # moving, or never seen driving (parked all along)
            x0, y0, x1, y1 = view.scene_box(box)
            gx, gy = (x1 - x0) / 2, (y1 - y0) / 2
            self._footprints[tid] = ((x0 - gx, y0 - gy, x1 + gx, y1 + gy), pts)
        horizon = self.cfg.vehicle_memory_s
        self._footprints = {k: v for k, v in self._footprints.items() if pts - v[1] <= horizon}

    def _where_vehicle_was(self, xy: tuple[float, float], tid: int) -> bool:
        """A new object at `xy` lies where a vehicle stands or stood (and is not that vehicle's
        own track)."""
        return any(
            k != tid and b[0] <= xy[0] <= b[2] and b[1] <= xy[1] <= b[3]
            for k, (b, _) in self._footprints.items()
        )

    def _event(self, phase: str, obj: _Object, frame: Frame, unattended: float) -> Event:
        event_id = obj.incident.end(frame.pts_s) if phase == "end" else obj.incident.event_id
        assert event_id is not None
        return make_event(
            rule_id=self.id,
            kind=self.kind,
            phase=phase,  # type: ignore[arg-type]
            event_id=event_id,
            frame=frame,
            severity=self.cfg.severity,
            xyxy=obj.box[None, :],
            score=np.zeros(1, np.float32),
            labels=("object" if obj.track_id < 0 else "tracked_object",),
            track_id=np.array([obj.track_id], np.int64),
            zone_id=self.zone.id,
            attributes={
                "unattended_s": round(unattended, 1),
                "still_for_s": round(frame.pts_s - obj.first_pts, 1),
                "evidence": "+".join(sorted(obj.evidence)),
            },
        )

    def forget(self, track_ids: list[int]) -> None:
        """Ended tracks: drop their histories (objects and footprints expire by themselves)."""
        self._memory.forget(track_ids)
        self._vehicle_memory.forget(track_ids)
        self._drove.difference_update(track_ids)

    def close(self, frame: Frame) -> list[Event]:
        """End open incidents (the stream ended)."""
        return [
            self._event("end", o, frame, frame.pts_s - o.attended_pts)
            for o in self._objects
            if o.incident.open
        ]

    @property
    def tracked(self) -> int:
        """Entries held in memory."""
        return (
            len(self._objects)
            + len(self._memory)
            + len(self._vehicle_memory)
            + len(self._footprints)
        )


def _still(span: tuple[float, float] | None, size: float) -> bool:
    """A track's (seconds covered, largest distance) over its last 2 s says it stands still:
    1.5 s seen within 0.3 of its size."""
    return span is not None and span[0] >= 1.5 and span[1] <= 0.3 * size


def _within(
    xy: npt.NDArray[np.float64], centre: tuple[float, float], reach: float
) -> npt.NDArray[np.bool_]:
    """Which of the points `xy` [n, 2] lie within `reach` of `centre`."""
    return np.asarray(np.hypot(xy[:, 0] - centre[0], xy[:, 1] - centre[1]) <= reach)
