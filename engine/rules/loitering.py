"""Loitering: someone in a zone for longer than `dwell_s`.

Per track, the time since it entered the zone; an absence shorter than `grace_s` (a brief step
out, a missed detection) keeps the clock running. When a track ends and a new one appears within
`reid_s` and `reid_radius` box heights of where it was last seen (an identity switch after an
occlusion), the new track continues the old one's clock. State is freed once a track has been out
of the zone, or gone, for longer than those allowances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.config import LoiteringRuleConfig, ZoneConfig
from engine.rules.base import Incident, View, ZoneRule, class_ids, in_zone, make_event
from engine.rules.geometry import anchor_points
from engine.types import Event, Frame, Tracks

__all__ = ["LoiteringRule"]


@dataclass(slots=True)
class _Stay:
    entered_pts: float
    last_in_pts: float
    xy: tuple[float, float]  # scene coordinates, last seen in the zone
    height: float
    lo: tuple[float, float] = (math.inf, math.inf)  # extent of the positions during the stay
    hi: tuple[float, float] = (-math.inf, -math.inf)

    def moved(self) -> float:
        """Largest extent of the positions seen, in box heights."""
        if self.hi[0] < self.lo[0]:
            return 0.0
        return max(self.hi[0] - self.lo[0], self.hi[1] - self.lo[1]) / max(self.height, 1.0)


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
        self._stays: dict[int, _Stay] = {}
        self._lost: list[_Stay] = []  # stays of ended tracks, for identity switches
        self._incident = Incident(cfg.cooldown_s)
        self._last_loiter_pts = 0.0
        self._max_dwell = 0.0

    def _continue_lost(self, xy: tuple[float, float], height: float, pts: float) -> _Stay | None:
        """The lost stay this new track continues, if any (it is consumed)."""
        best, best_d = None, math.inf
        for k, s in enumerate(self._lost):
            if pts - s.last_in_pts > self.cfg.reid_s:
                continue
            d = math.hypot(xy[0] - s.xy[0], xy[1] - s.xy[1])
            if d <= self.cfg.reid_radius * max(height, s.height) and d < best_d:
                best, best_d = k, d
        if best is None:
            return None
        return self._lost.pop(best)

    def step(self, tracks: Tracks, frame: Frame, view: View | None = None) -> list[Event]:
        """Update dwell times; start, update or end the incident."""
        view = view or View()
        pts = frame.pts_s
        cfg = self.cfg
        mask = in_zone(tracks, self._ids, cfg.min_score, cfg.anchor, self._polygon)
        idx = np.flatnonzero(mask & (tracks.track_id >= 0))
        if len(idx):
            xy = view.to_scene(anchor_points(tracks.xyxy[idx], cfg.anchor))
            for k, i in enumerate(idx):
                tid = int(tracks.track_id[i])
                height = float(tracks.xyxy[i, 3] - tracks.xyxy[i, 1])
                p = (float(xy[k, 0]), float(xy[k, 1]))
                stay = self._stays.get(tid)
                if stay is None or pts - stay.last_in_pts > cfg.grace_s:
                    lost = self._continue_lost(p, height, pts) if stay is None else None
                    stay = lost or _Stay(pts, pts, p, height)
                    self._stays[tid] = stay
                stay.last_in_pts, stay.xy, stay.height = pts, p, height
                stay.lo = (min(stay.lo[0], p[0]), min(stay.lo[1], p[1]))
                stay.hi = (max(stay.hi[0], p[0]), max(stay.hi[1], p[1]))
        self._lost = [s for s in self._lost if pts - s.last_in_pts <= cfg.reid_s]
        stale = [t for t, s in self._stays.items() if pts - s.last_in_pts > cfg.grace_s + 1.0]
        for t in stale:
            del self._stays[t]
        loiterers = {
            t: s
            for t, s in self._stays.items()
            if pts - s.last_in_pts <= cfg.grace_s
            and s.last_in_pts - s.entered_pts >= cfg.dwell_s
            and s.moved() >= cfg.min_movement
        }
        return self._lifecycle(tracks, frame, loiterers)

    def _lifecycle(self, tracks: Tracks, frame: Frame, loiterers: dict[int, _Stay]) -> list[Event]:
        pts = frame.pts_s
        inc = self._incident
        if loiterers:
            self._last_loiter_pts = pts
            dwell = max(s.last_in_pts - s.entered_pts for s in loiterers.values())
            self._max_dwell = max(self._max_dwell if inc.open else 0.0, dwell)
            if not inc.open:
                if inc.can_start(pts):
                    inc.start(pts)
                    return [self._event("start", frame, tracks, loiterers)]
                return []
            if inc.update_due(pts, self.cfg.update_every_s):
                return [self._event("update", frame, tracks, loiterers)]
            return []
        if inc.open and pts - self._last_loiter_pts >= self.cfg.clear_after_s:
            return [self._event("end", frame, tracks, {})]
        return []

    def _event(
        self, phase: str, frame: Frame, tracks: Tracks, loiterers: dict[int, _Stay]
    ) -> Event:
        inc = self._incident
        event_id = inc.end(frame.pts_s) if phase == "end" else inc.event_id
        assert event_id is not None
        sel = np.isin(tracks.track_id, np.fromiter(loiterers, np.int64, len(loiterers)))
        labels = tuple(lb for lb, s in zip(tracks.labels(), sel, strict=True) if s)
        dwell = {str(t): round(s.last_in_pts - s.entered_pts, 1) for t, s in loiterers.items()}
        return make_event(
            rule_id=self.id,
            kind=self.kind,
            phase=phase,  # type: ignore[arg-type]
            event_id=event_id,
            frame=frame,
            severity=self.cfg.severity,
            xyxy=tracks.xyxy[sel],
            score=tracks.score[sel],
            labels=labels,
            track_id=tracks.track_id[sel],
            zone_id=self.zone.id,
            attributes={
                "loiterers": len(loiterers),
                "dwell_s": dwell,
                "max_dwell_s": round(self._max_dwell, 1),
                "threshold_s": self.cfg.dwell_s,
            },
        )

    def forget(self, track_ids: list[int]) -> None:
        """Ended tracks: keep their stay briefly for an identity switch, then it is dropped."""
        for t in track_ids:
            stay = self._stays.pop(t, None)
            if stay is not None:
                self._lost.append(stay)

    def close(self, frame: Frame) -> list[Event]:
        """End the open incident (the stream ended)."""
        if not self._incident.open:
            return []
        return [self._event("end", frame, Tracks.empty(), {})]

    @property
    def tracked(self) -> int:
        """Stays held in memory (bounded by the people in or recently in the zone)."""
        return len(self._stays) + len(self._lost)
