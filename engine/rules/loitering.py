"""Loitering: someone in a zone for longer than `dwell_s`, one incident per person.

Per person, a stay: the time since they entered the zone. Seen outside the zone for less than
`grace_s` (a brief step out), or not seen at all for less than `hidden_s` (hidden behind others,
missed by the detector), they are still there and the clock keeps running. A new track that
appears within `reid_radius` box heights of where a person was last seen, no further than they
could have lingered in the time since (`walk_speed`), continues that person's stay (an identity
switch): when the old track ended or has not been seen since, within `reid_s` (or
`hidden_s` when they were not seen leaving, or `clear_after_s` for someone already reported),
so the same person is not reported twice. A track that comes back takes its stay back. Where
moving about is required (`min_movement`, over the whole stay), a box that stood still for the
last 10 s is a structure, and someone last seen walking (faster than `walk_speed_mps` on the
ground where the source maps to it, else `walk_speed` box heights per second) was passing
through: nobody continues either, so passers-by at a busy gate are not chained into one long
stay. A stay pieced together from a few stray detections
(seen for less than `min_seen` of it) is no person either. Once reported, a loiterer stays one
incident while they are there, moving or not.

Someone standing among `crowd_size` or more people (within `crowd_radius` box heights of them,
each in the zone for `crowd_standing_s`) is part of a gathered crowd, not a loiterer: their clock
restarts while the crowd is there, so they loiter only if they stay `dwell_s` after it has gone.

State is freed once a person has been out of the zone, or gone, for longer than those
allowances and their incident has ended.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from engine.config import LoiteringRuleConfig, ZoneConfig
from engine.rules.base import Incident, View, ZoneRule, class_ids, in_zone, make_event
from engine.rules.geometry import anchor_points
from engine.types import Event, EventPhase, Frame, Tracks

__all__ = ["LoiteringRule"]

# where movement is required (min_movement), a box that stood still this long is taken for
# something fixed: no other track continues it, and it is not reported (see _structure)
_STILL_S = 10.0


@dataclass(slots=True)
class _Stay:
    """One person's time in the zone, across their tracks."""

    first_pts: float  # first seen in the zone (never restarts)
    entered_pts: float  # the dwell clock's start
    last_in_pts: float
    xy: tuple[float, float]  # scene coordinates, last seen in the zone
    height: float
    incident: Incident
    last_loiter_pts: float = -math.inf
    out_pts: float = -math.inf  # last seen outside the zone
    max_dwell: float = 0.0
    lo: tuple[float, float] = (math.inf, math.inf)  # extent of the positions during the stay
    hi: tuple[float, float] = (-math.inf, -math.inf)
    seen_s: float = 0.0  # of the dwell, the time they were seen (gaps over 1 s not counted)
    ground_speed: float = math.nan  # metres per second, last seen (where the source maps)
    tracks: deque[int] = field(default_factory=lambda: deque(maxlen=8))  # latest track ids
    recent: deque[tuple[float, float, float]] = field(  # (pts, x, y) of the last 10 s in the zone
        default_factory=lambda: deque(maxlen=1024)
    )

    @property
    def dwell(self) -> float:
        return self.last_in_pts - self.entered_pts

    def moved(self) -> float:
        """Largest extent of the positions seen during the stay, in box heights."""
        if self.hi[0] < self.lo[0]:
            return 0.0
        return max(self.hi[0] - self.lo[0], self.hi[1] - self.lo[1]) / max(self.height, 1.0)

    def moved_lately(self) -> float:
        """The same over the last `_STILL_S` of the stay (a stay that hopped onto a fixed
        structure reads as still once it has stood there that long)."""
        since = max(self.entered_pts, self.last_in_pts - _STILL_S)
        xs = [x for t, x, _ in self.recent if t >= since]
        ys = [y for t, _, y in self.recent if t >= since]
        if not xs:
            return 0.0
        return max(max(xs) - min(xs), max(ys) - min(ys)) / max(self.height, 1.0)

    def walking(self, speed_mps: float, speed_heights: float) -> bool:
        """Last seen moving faster than a walker's speed: in metres per second on the ground
        where the source maps to it, else in box heights per second over their last 2 s."""
        if math.isfinite(self.ground_speed):
            return self.ground_speed > speed_mps
        return self.speed() > speed_heights

    def speed(self) -> float:
        """Box heights per second over the last 2 s they were seen (0 with under 0.5 s)."""
        if len(self.recent) < 2:
            return 0.0
        t1, x1, y1 = self.recent[-1]
        t0, x0, y0 = next(r for r in self.recent if t1 - r[0] <= 2.0)
        if t1 - t0 < 0.5:
            return 0.0
        return math.hypot(x1 - x0, y1 - y0) / (t1 - t0) / max(self.height, 1.0)

    def seen_at(self, pts: float, xy: tuple[float, float]) -> None:
        """Record a position in the zone (the last `_STILL_S` are kept)."""
        self.recent.append((pts, xy[0], xy[1]))
        while pts - self.recent[0][0] > _STILL_S:
            self.recent.popleft()

    def restart(self, pts: float) -> None:
        """Start the dwell clock (and the movement extent) again."""
        self.entered_pts = pts
        self.seen_s = 0.0
        self.lo, self.hi = (math.inf, math.inf), (-math.inf, -math.inf)


class LoiteringRule(ZoneRule[LoiteringRuleConfig]):
    """Watches one zone for people staying too long.

    Args:
        cfg: the rule's configuration.
        zone: the zone it watches.
        class_names: the detector's class names.
    """

    kind = "loitering"

    def __init__(
        self, cfg: LoiteringRuleConfig, zone: ZoneConfig, class_names: tuple[str, ...]
    ) -> None:
        super().__init__(cfg, zone)
        self._ids = class_ids(cfg.id, cfg.classes, class_names)
        self._stays: dict[int, _Stay] = {}  # live track -> its person's stay
        self._lost: list[_Stay] = []  # stays of ended or unseen tracks, for identity switches

    def _allowance(self, stay: _Stay) -> float:
        """How long they may go unseen in the zone and still be there."""
        left = stay.out_pts >= stay.last_in_pts  # seen outside since
        return self.cfg.grace_s if left else max(self.cfg.grace_s, self.cfg.hidden_s)

    def _reid_window(self, stay: _Stay) -> float:
        cfg = self.cfg
        window = max(cfg.reid_s, self._allowance(stay))
        return max(window, cfg.clear_after_s) if stay.incident.open else window

    def _structure(self, stay: _Stay) -> bool:
        """A box that has stood still (within half of min_movement) for `_STILL_S`, or dwell_s
        if shorter, where moving about is required: a false detection on something fixed."""
        cfg = self.cfg
        return (
            cfg.min_movement > 0
            and stay.dwell >= min(cfg.dwell_s, _STILL_S)
            and stay.moved_lately() < cfg.min_movement / 2
        )

    def _taken_back(self, tid: int, pts: float) -> _Stay | None:
        """The stay of a track that is back after another track took it over (it looked like
        an identity switch, but was someone passing while this one was missed): it is its own
        again, and the other track starts afresh."""
        for owner, stay in list(self._stays.items()):
            if tid in stay.tracks:
                stay.tracks.remove(owner)
                fresh = _Stay(pts, pts, pts, stay.xy, stay.height, Incident(self.cfg.cooldown_s))
                fresh.tracks.append(owner)
                self._stays[owner] = fresh
                return stay
        for stay in self._lost:
            if tid in stay.tracks:
                self._lost.remove(stay)
                return stay
        return None

    def _reachable(
        self, s: _Stay, xy: tuple[float, float], height: float, pts: float
    ) -> float | None:
        """How far (scene units) a new track at `xy` is from where the stay's person was last
        seen, if they could have got there: within `reid_radius` box heights (the smaller
        box's), and no further than someone lingering moves (`walk_speed`) in the time since,
        plus half a box height (a box's jitter); else None. (Image units: a box whose feet are
        hidden puts them metres away on the ground, but only a fraction of its height away in
        the image.)"""
        cfg = self.cfg
        gap = max(pts - s.last_in_pts, 0.0)
        d = math.hypot(xy[0] - s.xy[0], xy[1] - s.xy[1])
        size = min(height, s.height)  # a tall box over two people does not stretch the reach
        return d if d <= size * min(cfg.reid_radius, 0.5 + cfg.walk_speed * gap) else None

    def _someone_else_next(self, s: _Stay) -> bool:
        """A new track where this stay's person was is someone else: it was a structure, or
        they were walking through (someone reported stays them, moving or not)."""
        if s.incident.open:
            return False
        return self._structure(s) or s.walking(self.cfg.walk_speed_mps, self.cfg.walk_speed)

    def _continued(
        self, xy: tuple[float, float], height: float, pts: float, present: set[int]
    ) -> _Stay | None:
        """The stay a new track at `xy` continues, if any: a lost one, or one whose track is
        not seen in this frame (it is taken from that track)."""
        unseen = [(t, s) for t, s in self._stays.items() if t not in present]
        best, best_d = None, math.inf
        for owner, s in [(None, s) for s in self._lost] + unseen:
            if pts - s.last_in_pts > self._reid_window(s) or self._someone_else_next(s):
                continue
            d = self._reachable(s, xy, height, pts)
            if d is not None and d < best_d:
                best, best_d = (owner, s), d
        if best is None:
            return None
        owner, stay = best
        if owner is None:
            self._lost.remove(stay)
        else:
            del self._stays[owner]
        return stay

    def step(self, tracks: Tracks, frame: Frame, view: View | None = None) -> list[Event]:
        """Update each person's stay; start, update or end their incidents."""
        view = view or View()
        pts = frame.pts_s
        cfg = self.cfg
        mask = in_zone(tracks, self._ids, cfg.min_score, cfg.anchor, self._polygon)
        idx = np.flatnonzero(mask & (tracks.track_id >= 0))
        present = {int(t) for t in tracks.track_id if t >= 0}  # seen anywhere in the frame
        xy = view.to_scene(anchor_points(tracks.xyxy[idx], cfg.anchor)) if len(idx) else None
        heights = tracks.xyxy[idx, 3] - tracks.xyxy[idx, 1]
        for k, i in enumerate(idx):
            assert xy is not None
            tid = int(tracks.track_id[i])
            height = float(heights[k])
            p = (float(xy[k, 0]), float(xy[k, 1]))
            stay = self._stays.get(tid)
            if (
                stay is not None
                and not stay.incident.open  # someone reported stays one incident
                and pts - stay.last_in_pts > self._allowance(stay)
            ):
                stay.restart(pts)  # back after a long absence: the clock starts again
            if stay is None:
                stay = (
                    self._taken_back(tid, pts)
                    or self._continued(p, height, pts, present)
                    or _Stay(pts, pts, pts, p, height, Incident(cfg.cooldown_s))
                )
                if tid not in stay.tracks:
                    stay.tracks.append(tid)
                self._stays[tid] = stay
            gap = max(pts - max(stay.last_in_pts, stay.entered_pts), 0.0)
            stay.seen_s += gap if gap <= 1.0 else 0.0  # a longer gap is time unseen
            stay.last_in_pts, stay.xy, stay.height = pts, p, height
            ground_speed = float(tracks.speed_mps[i])
            if math.isfinite(ground_speed):
                stay.ground_speed = ground_speed
            stay.seen_at(pts, p)
            stay.lo = (min(stay.lo[0], p[0]), min(stay.lo[1], p[1]))
            stay.hi = (max(stay.hi[0], p[0]), max(stay.hi[1], p[1]))
        if xy is not None and cfg.crowd_size > 0:
            for j in np.flatnonzero(self._in_crowd(xy, heights, idx, tracks, pts)):
                stay = self._stays[int(tracks.track_id[idx[j]])]
                if not stay.incident.open:  # a crowd forming round a loiterer: still them
                    stay.restart(pts)
        outside = in_zone(tracks, self._ids, cfg.min_score, cfg.anchor, None) & ~mask
        for tid in tracks.track_id[outside]:
            if int(tid) in self._stays:
                self._stays[int(tid)].out_pts = pts
        gone = [t for t, s in self._stays.items() if pts - s.last_in_pts > self._allowance(s) + 1]
        for t in gone:
            self._lost.append(self._stays.pop(t))
        self._lost = [
            s for s in self._lost if s.incident.open or pts - s.last_in_pts <= self._reid_window(s)
        ]
        events = []
        for live, stay in self._stays.items():
            events += self._lifecycle(stay, live, tracks, frame)
        for stay in self._lost:
            events += self._lifecycle(stay, None, tracks, frame)
        return events

    def _in_crowd(
        self,
        xy: npt.NDArray[np.float64],
        heights: npt.NDArray[np.float32],
        idx: npt.NDArray[np.intp],
        tracks: Tracks,
        pts: float,
    ) -> npt.NDArray[np.bool_]:
        """Which of the people in the zone stand among a gathered crowd: at least
        `crowd_size` people (themselves included) within `crowd_radius` of their box height,
        each of the others in the zone for `crowd_standing_s` (passers-by are no crowd)."""
        cfg = self.cfg
        standing = np.array(
            [
                pts - self._stays[int(tracks.track_id[i])].first_pts >= cfg.crowd_standing_s
                for i in idx
            ]
        )
        d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        near = (d <= cfg.crowd_radius * heights[:, None]) & standing[None, :]
        np.fill_diagonal(near, False)
        return np.asarray(near.sum(axis=1) + 1 >= cfg.crowd_size)

    def _lifecycle(self, stay: _Stay, tid: int | None, tracks: Tracks, frame: Frame) -> list[Event]:
        pts = frame.pts_s
        cfg = self.cfg
        inc = stay.incident
        loitering = (
            tid is not None
            and pts - stay.last_in_pts <= self._allowance(stay)
            and stay.dwell >= cfg.dwell_s
            and (  # once reported, they loiter while they stay, moving or not
                inc.open
                or (
                    stay.seen_s >= cfg.min_seen * stay.dwell
                    and stay.moved() >= cfg.min_movement
                    and not self._structure(stay)
                )
            )
        )
        if loitering:
            stay.last_loiter_pts = pts
            stay.max_dwell = max(stay.max_dwell if inc.open else 0.0, stay.dwell)
            if not inc.open:
                if inc.can_start(pts) and stay.last_in_pts == pts:  # seen now
                    inc.start(pts)
                    return [self._event("start", stay, tid, frame, tracks)]
                return []
            if inc.update_due(pts, cfg.update_every_s):
                return [self._event("update", stay, tid, frame, tracks)]
            return []
        if inc.open and pts - stay.last_loiter_pts >= cfg.clear_after_s:
            return [self._event("end", stay, None, frame, tracks)]
        return []

    def _event(
        self, phase: EventPhase, stay: _Stay, tid: int | None, frame: Frame, tracks: Tracks
    ) -> Event:
        inc = stay.incident
        event_id = inc.end(frame.pts_s) if phase == "end" else inc.event_id
        assert event_id is not None
        sel = tracks.track_id == (-2 if tid is None else tid)
        return make_event(
            rule_id=self.id,
            kind=self.kind,
            phase=phase,
            event_id=event_id,
            frame=frame,
            severity=self.cfg.severity,
            xyxy=tracks.xyxy[sel],
            score=tracks.score[sel],
            labels=tuple(lb for lb, s in zip(tracks.labels(), sel, strict=True) if s),
            track_id=tracks.track_id[sel],
            zone_id=self.zone.id,
            attributes={
                "loiterers": 1,
                "dwell_s": {str(stay.tracks[-1] if tid is None else tid): round(stay.dwell, 1)},
                "max_dwell_s": round(stay.max_dwell, 1),
                "threshold_s": self.cfg.dwell_s,
                "track_ids": list(stay.tracks),
            },
        )

    def forget(self, track_ids: list[int]) -> None:
        """Ended tracks: keep their stay briefly for an identity switch, then it is dropped."""
        for t in track_ids:
            stay = self._stays.pop(t, None)
            if stay is not None:
                self._lost.append(stay)

    def close(self, frame: Frame) -> list[Event]:
        """End the open incidents (the stream ended)."""
        stays = [*self._stays.values(), *self._lost]
        return [
            self._event("end", s, None, frame, Tracks.empty()) for s in stays if s.incident.open
        ]

    @property
    def tracked(self) -> int:
        """Stays held in memory (bounded by the people in or recently in the zone)."""
        return len(self._stays) + len(self._lost)
