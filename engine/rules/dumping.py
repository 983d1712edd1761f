"""Illegal dumping, in stages of one incident (one event id), each a field of its alert:

1. `suspected` (start, warning): a vehicle track whose scene position stays within
   `stop_speed` box diagonals per second for `stop_s` is stopped, and once it has stood
   `suspect_after_s` the incident starts while it is still there: its box, track, stop time and
   arrival heading, and a snapshot. Its place, and a small copy of the frame, are kept.
2. `confirmed` (critical, before|after snapshot): a pile is new debris (a debris-class track
   first seen after the stop, or on fixed cameras a new static region of the background model
   that is not the vehicle itself, once the vehicle has gone) within `near` vehicle sizes of
   where it stood, seen for `confirm_s`.
3. `vehicle_left`: the vehicle drove off; when, and in which direction. Seen back where it
   stood (it was hidden for a while, or a drone looked away), it had not left: the incident
   goes on, and says so again when it really leaves.
4. The end: `cleared` when the vehicle left and no pile was found within `clear_after_s` (a
   delivery stop: not a dumping), or on a moving sensor within `revisit_s` (a patrolling drone
   sees the place again on its next pass: a pile found then confirms the incident); else
   `closed` once the vehicle has gone, or the pile has not been seen, for `clear_after_s`
   (counted from the confirmation at the earliest).
With `suspect_after_s` None, the incident starts at confirmation. Stops are forgotten
`memory_s` after their vehicle left; debris state goes with its track.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from engine.config import DumpingRuleConfig, ZoneConfig
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
from engine.types import Event, EventPhase, EventStage, Frame, Tracks

__all__ = ["DumpingRule", "before_after_jpeg"]

F32 = npt.NDArray[np.float32]
LEAVE_S = 1.0  # gone or moving this long: the vehicle has left


def before_after_jpeg(
    before: npt.NDArray[np.uint8], after: npt.NDArray[np.uint8], width: int = 960
) -> bytes:
    """One JPEG with `before` on the left and `after` on the right, `width` pixels in all."""
    half = width // 2
    h = max(1, round(before.shape[0] * half / before.shape[1]))
    pair = np.hstack(
        [
            cv2.resize(before, (half, h), interpolation=cv2.INTER_AREA),
            cv2.resize(after, (half, h), interpolation=cv2.INTER_AREA),
        ]
    )
    ok, buf = cv2.imencode(".jpg", pair, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes() if ok else b""


@dataclass(slots=True)
class _Stop:
    """A vehicle that stopped: where (scene coordinates), since when, and what lay there."""

    track_id: int
    label: str
    since_pts: float
    box: F32  # scene xyxy at the stop
    before: npt.NDArray[np.uint8]  # small copy of the frame when it stopped
    incident: Incident
    # bearing of its motion as it arrived, in the scene (0: up, 90: right; from a registered
    # drone: 0 north, 90 east)
    heading_deg: float | None
    left_pts: float | None = None
    away_since: float | None = None  # gone or moving since (not yet long enough to have left)
    departure_deg: float | None = None  # bearing of its motion as it left
    pile_seen_pts: float = 0.0
    confirmed: bool = False
    confirmed_pts: float = 0.0
    left_reported: bool = False
    done: bool = False  # its incident ended: one dumping per stop

    @property
    def diag(self) -> float:
        return math.hypot(float(self.box[2] - self.box[0]), float(self.box[3] - self.box[1]))

    def near(self, xy: tuple[float, float], factor: float) -> bool:
        """`xy` within `factor` vehicle sizes of the stop's box."""
        m = factor * self.diag
        b = self.box
        return bool(b[0] - m <= xy[0] <= b[2] + m and b[1] - m <= xy[1] <= b[3] + m)


def _small(image: npt.NDArray[np.uint8], width: int = 480) -> npt.NDArray[np.uint8]:
    h = max(1, round(image.shape[0] * width / image.shape[1]))
    return np.asarray(cv2.resize(image, (width, h), interpolation=cv2.INTER_AREA), np.uint8)


class DumpingRule(ZoneRule[DumpingRuleConfig]):
    """Watches one no-dumping zone.

    Args:
        cfg: the rule's configuration.
        zone: the zone (image pixels of its source).
        class_names: the detector's class names.
    """

    kind = "dumping"

    def __init__(
        self, cfg: DumpingRuleConfig, zone: ZoneConfig, class_names: tuple[str, ...]
    ) -> None:
        super().__init__(cfg, zone)
        self.needs_foreground = cfg.use_foreground
        self._vehicles = class_ids(cfg.id, cfg.vehicle_classes, class_names)
        self._debris = class_ids(cfg.id, cfg.debris_classes, class_names)
        self._memory = TrackMemory(horizon_s=cfg.stop_s + 1.0)
        self._stops: dict[int, _Stop] = {}
        self._debris_first: dict[int, float] = {}  # debris track -> first seen
        # vehicles seen driving: only they can "stop" (a box that never moved is a parked car,
        # or a false detection on a kiosk or a bench)
        self._drove: set[int] = set()
        self._bearing: dict[int, float] = {}  # vehicle -> scene bearing while it last moved
        self._moving_view = False  # the view slides (a drone): piles may show on a later pass

    def step(self, tracks: Tracks, frame: Frame, view: View | None = None) -> list[Event]:
        """Follow vehicles and piles; start, update or end dumping incidents."""
        view = view or View()
        pts = frame.pts_s
        cfg = self.cfg
        self._moving_view = self._moving_view or view.moving
        vehicles = in_zone(tracks, self._vehicles, cfg.min_score, "bottom_center", self._polygon)
        present: set[int] = set()
        for i in np.flatnonzero(vehicles & (tracks.track_id >= 0)):
            present.add(int(tracks.track_id[i]))
            self._follow_vehicle(tracks, int(i), frame, view)
        for tid, stop in self._stops.items():
            if stop.left_pts is not None:
                if tid in present and not stop.done and self._back_at(stop, tid, tracks, view):
                    # it had not left: hidden for a while, or a drone looked away
                    stop.left_pts = stop.away_since = stop.departure_deg = None
                    stop.left_reported = False
                continue
            if tid not in present or self._moving(tid):
                stop.away_since = pts if stop.away_since is None else stop.away_since
                if pts - stop.away_since >= LEAVE_S:  # not a missed frame or a jittery box
                    stop.left_pts = stop.away_since
                    stop.departure_deg = self._motion_bearing(tid)
            else:
                stop.away_since = None
        piles = self._piles(tracks, view, pts)
        events: list[Event] = []
        for stop in list(self._stops.values()):
            events += self._stop_step(stop, piles, tracks, frame, view)
        expired = [
            t
            for t, s in self._stops.items()
            if s.left_pts is not None
            and not s.incident.open
            and (s.done or pts - s.left_pts > cfg.memory_s)
        ]
        for tid in expired:
            del self._stops[tid]
        return events

    def _follow_vehicle(self, tracks: Tracks, i: int, frame: Frame, view: View) -> None:
        box = tracks.xyxy[i]
        tid = int(tracks.track_id[i])
        cx, cy = view.centre(box)
        diag = math.hypot(float(box[2] - box[0]), float(box[3] - box[1]))
        self._memory.add(tid, frame.pts_s, (float(cx), float(cy)), float(box[3] - box[1]), diag)
        if self._moving(tid):
            self._drove.add(tid)
            bearing = self._motion_bearing(tid)
            if bearing is not None:
                self._bearing[tid] = bearing
        stop = self._stops.get(tid)
        if tid not in self._drove or (stop is not None and stop.left_pts is None):
            return
        span = self._memory.span(tid, self.cfg.stop_s)
        _, median_diag = self._memory.size(tid)
        if span is None or span[0] < self.cfg.stop_s * 0.9:
            return
        if span[1] > self.cfg.stop_speed * median_diag * self.cfg.stop_s:
            return
        if stop is not None and stop.incident.open:
            return  # it left and came back during its own incident: same incident
        scene_box = view.scene_box(box)
        self._stops[tid] = _Stop(
            tid,
            tracks.class_names[tracks.class_id[i]] if tracks.class_names else "",
            frame.pts_s - span[0],
            scene_box,
            _small(frame.image),
            incident=Incident(self.cfg.cooldown_s),
            heading_deg=self._bearing.get(tid),
        )

    def _motion_bearing(self, tid: int) -> float | None:
        """Scene bearing of the track's recent motion (0: up, 90: right), if moving."""
        v = self._memory.velocity(tid, 1.0)
        if v is None or math.hypot(*v) < 1e-6:
            return None
        return round(math.degrees(math.atan2(v[0], -v[1])) % 360.0, 1)

    def _moving(self, tid: int) -> bool:
        span = self._memory.span(tid, 1.0)
        _, diag = self._memory.size(tid)
        return span is not None and span[0] >= 0.5 and span[1] > 2 * self.cfg.stop_speed * diag

    def _piles(
        self, tracks: Tracks, view: View, pts: float
    ) -> list[tuple[tuple[float, float], F32, float, float, int]]:
        """Candidate piles: (scene centre, image box, first seen pts, score, track id or -1)."""
        out = []
        debris = in_zone(tracks, self._debris, self.cfg.min_score, "center", self._polygon)
        for i in np.flatnonzero(debris):
            tid = int(tracks.track_id[i])
            first = self._debris_first.setdefault(tid, pts) if tid >= 0 else pts
            box = tracks.xyxy[i]
            out.append((view.centre(box), box, first, float(tracks.score[i]), tid))
        if self.cfg.use_foreground and not view.moving:
            others = tracks.xyxy[tracks.score >= 0.2]
            for box, age in zip(view.static_xyxy, view.static_age_s, strict=True):
                if covered(box, others):
                    continue  # a vehicle or a person standing still, not a pile
                c = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                out.append(((float(c[0]), float(c[1])), box, pts - float(age), 0.0, -1))
        return out

    def _stop_step(
        self,
        stop: _Stop,
        piles: list[tuple[tuple[float, float], F32, float, float, int]],
        tracks: Tracks,
        frame: Frame,
        view: View,
    ) -> list[Event]:
        cfg = self.cfg
        pts = frame.pts_s
        inc = stop.incident
        if stop.done:
            return []
        # a debris detection counts while the vehicle stands there; a new static region of the
        # background only once the vehicle has gone (until then it may be its shadow or its
        # edge), and it must then still be there `confirm_s` later
        gone = stop.left_pts is not None and self._clear_of(stop, tracks, view)
        fresh = [
            p
            for p in piles
            if stop.near(p[0], cfg.near)
            and p[2] >= stop.since_pts - 0.5
            and pts - p[2] >= cfg.confirm_s
            and (p[4] >= 0 or (gone and not self._beside_vehicle(p[1], tracks)))
        ]
        if fresh:
            stop.pile_seen_pts = pts
        if not inc.open:
            if not inc.can_start(pts):
                return []
            if fresh:  # straight to confirmed (no suspected stage, or the stop was seen late)
                inc.start(pts)
                stop.confirmed, stop.confirmed_pts = True, pts
                stop.left_reported = stop.left_pts is not None  # the start says so already
                return [self._event("start", "confirmed", stop, fresh, tracks, frame, view)]
            wait = cfg.suspect_after_s
            if wait is not None and stop.left_pts is None and pts - stop.since_pts >= wait:
                inc.start(pts)
                return [self._event("start", "suspected", stop, fresh, tracks, frame, view)]
            return []
        events = []
        if fresh and not stop.confirmed:
            stop.confirmed, stop.confirmed_pts = True, pts
            events.append(self._event("update", "confirmed", stop, fresh, tracks, frame, view))
        if stop.left_pts is not None and not stop.left_reported:
            stop.left_reported = True
            events.append(self._event("update", "vehicle_left", stop, fresh, tracks, frame, view))
        if not stop.confirmed:
            # a moving sensor may see the place again only on its next pass
            wait = max(cfg.clear_after_s, cfg.revisit_s if self._moving_view else 0.0)
            if stop.left_pts is not None and pts - stop.left_pts >= wait:
                # it left and nothing was found where it stood: a delivery stop
                events.append(self._event("end", "cleared", stop, fresh, tracks, frame, view))
            return events
        since = max(stop.left_pts if stop.left_pts is not None else math.inf, stop.confirmed_pts)
        if pts - since >= cfg.clear_after_s or pts - stop.pile_seen_pts >= cfg.clear_after_s:
            events.append(self._event("end", "closed", stop, fresh, tracks, frame, view))
        return events

    def _back_at(self, stop: _Stop, tid: int, tracks: Tracks, view: View) -> bool:
        """The stop's vehicle is seen again, standing where it stood."""
        return not self._moving(tid) and not self._clear_of(stop, tracks, view)

    def _clear_of(self, stop: _Stop, tracks: Tracks, view: View) -> bool:
        """The stop's vehicle is out of sight, or a vehicle length away from where it stood."""
        vi = np.flatnonzero(tracks.track_id == stop.track_id)
        if not len(vi):
            return True
        box = tracks.xyxy[vi[0]]
        c = view.centre(box)
        b = stop.box
        return bool(math.hypot(c[0] - (b[0] + b[2]) / 2, c[1] - (b[1] + b[3]) / 2) > stop.diag)

    def _beside_vehicle(self, region: F32, tracks: Tracks) -> bool:
        """A region touching a vehicle box grown by a quarter: its shadow, most likely."""
        veh = np.isin(tracks.class_id, np.fromiter(self._vehicles, np.int32, len(self._vehicles)))
        for box in tracks.xyxy[veh]:
            mx, my = 0.25 * (box[2] - box[0]), 0.25 * (box[3] - box[1])
            if (
                region[0] < box[2] + mx
                and region[2] > box[0] - mx
                and region[1] < box[3] + my
                and region[3] > box[1] - my
            ):
                return True
        return False

    def _event(
        self,
        phase: EventPhase,
        stage: EventStage,
        stop: _Stop,
        piles: list[tuple[tuple[float, float], F32, float, float, int]],
        tracks: Tracks,
        frame: Frame,
        view: View,
    ) -> Event:
        inc = stop.incident
        event_id = inc.end(frame.pts_s) if phase == "end" else inc.event_id
        stop.done = stop.done or phase == "end"
        assert event_id is not None
        boxes: list[F32] = []
        scores: list[float] = []
        labels: list[str] = []
        ids: list[int] = []
        vi = np.flatnonzero(tracks.track_id == stop.track_id)
        if len(vi):
            boxes.append(tracks.xyxy[vi[0]])
            scores.append(float(tracks.score[vi[0]]))
            labels.append(stop.label)
            ids.append(stop.track_id)
        for _, box, _, score, tid in piles[:5]:
            boxes.append(box)
            scores.append(score)
            labels.append("debris" if tid >= 0 else "new_static_object")
            ids.append(tid)
        pile = piles[0] if piles else None
        attributes: dict[str, object] = {
            "vehicle_track_id": stop.track_id,
            "vehicle_class": stop.label,
            "stopped_pts_s": round(stop.since_pts, 3),
            "stopped_for_s": round((stop.left_pts or frame.pts_s) - stop.since_pts, 1),
            "vehicle_heading_deg": stop.heading_deg,
            "vehicle_left": stop.left_pts is not None,
            "confirmed": stop.confirmed,
        }
        if stop.left_pts is not None:
            attributes["departed_pts_s"] = round(stop.left_pts, 3)
            attributes["departure_heading_deg"] = stop.departure_deg
        if pile is not None:
            px, py = view.to_image(np.array([pile[0]]))[0]
            attributes["pile_px"] = [round(float(px), 1), round(float(py), 1)]
            attributes["pile_evidence"] = "debris_class" if pile[4] >= 0 else "background_model"
        cfg = self.cfg
        event = make_event(
            rule_id=self.id,
            kind=self.kind,
            phase=phase,
            event_id=event_id,
            frame=frame,
            severity=cfg.severity if stop.confirmed else cfg.suspect_severity,
            xyxy=np.array(boxes, np.float32).reshape(-1, 4),
            score=np.array(scores, np.float32),
            labels=tuple(labels),
            track_id=np.array(ids, np.int64),
            zone_id=self.zone.id,
            attributes=attributes,
            stage=stage,
        )
        if stage == "confirmed":
            attributes["snapshot_layout"] = "before|after"
            return _with(event, before_after_jpeg(stop.before, frame.image))
        if stage == "suspected":
            return _with(event, _jpeg(frame.image))
        return event

    def forget(self, track_ids: list[int]) -> None:
        """Ended tracks: drop vehicle histories and debris first-seen times."""
        self._memory.forget(track_ids)
        for t in track_ids:
            self._debris_first.pop(t, None)
            self._drove.discard(t)
            self._bearing.pop(t, None)
        # stops stay: `step` marks their vehicle gone, and they expire `memory_s` later

    def close(self, frame: Frame) -> list[Event]:
        """End open incidents (the stream ended)."""
        return [
            self._event("end", "closed", s, [], Tracks.empty(), frame, View())
            for s in self._stops.values()
            if s.incident.open
        ]

    @property
    def tracked(self) -> int:
        """Entries held in memory (stops, vehicle histories, debris)."""
        held = len(self._stops) + len(self._memory) + len(self._debris_first)
        return held + len(self._drove) + len(self._bearing)


def _jpeg(image: npt.NDArray[np.uint8]) -> bytes:
    ok, buf = cv2.imencode(".jpg", _small(image, 960), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes() if ok else b""


def _with(event: Event, jpeg: bytes) -> Event:
    import dataclasses

    return dataclasses.replace(event, snapshot=jpeg or None)
