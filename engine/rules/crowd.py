"""Crowds: gathering (people in a zone rising fast to a crowd) and dispersal (a crowd running
apart, as after an attack). Two kinds of incident from one rule, each with its own lifecycle.

Gathering starts when the zone holds at least `min_count` people (and `min_density` per m2 when
the zone's area is known) and the count rose by `gather_rise` within `gather_window_s`; it ends
once the count has stayed below `min_count` for `clear_after_s`. Dispersal starts when, within
`memory_s` of a crowd, at least `min_runners` people run (speed in body heights per second, in
scene coordinates) and most of them head away from where the crowd stood.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from engine.config import CrowdRuleConfig, ZoneConfig
from engine.rules.base import Incident, TrackMemory, View, ZoneRule, class_ids, in_zone, make_event
from engine.rules.geometry import anchor_points
from engine.types import Event, Frame, Tracks

__all__ = ["CrowdRule"]


class CrowdRule(ZoneRule[CrowdRuleConfig]):
    """Watches one zone for crowds forming and scattering.

    Args:
        cfg: the rule's configuration.
        zone: the zone it watches.
        class_names: the detector's class names.
    """

    def __init__(
        self, cfg: CrowdRuleConfig, zone: ZoneConfig, class_names: tuple[str, ...]
    ) -> None:
        super().__init__(cfg, zone)
        self._ids = class_ids(cfg.id, cfg.classes, class_names)
        self._counts: deque[tuple[float, int]] = deque()
        self._memory = TrackMemory(horizon_s=2.0)
        self._gathering = Incident(cfg.cooldown_s)
        self._dispersal = Incident(cfg.cooldown_s)
        self._below_since: float | None = None
        self._calm_since: float | None = None
        self._crowd_pts = -math.inf
        self._crowd_xy = (0.0, 0.0)  # scene coordinates of the last crowd's centre
        self._max_count = 0
        self._first_pts: float | None = None
        self._coming = 0  # people the forecast puts in one crowd
        self._view = View()  # this frame's view (where the image lies in the scene)

    def step(self, tracks: Tracks, frame: Frame, view: View | None = None) -> list[Event]:
        """Count, follow people, and run both lifecycles."""
        view = view or View()
        cfg = self.cfg
        pts = frame.pts_s
        people = in_zone(tracks, self._ids, cfg.min_score, cfg.anchor, None)
        inside = in_zone(tracks, self._ids, cfg.min_score, cfg.anchor, self._polygon)
        idx = np.flatnonzero(people & (tracks.track_id >= 0))
        xy = view.to_scene(anchor_points(tracks.xyxy[idx], cfg.anchor)) if len(idx) else None
        for k, i in enumerate(idx):
            box = tracks.xyxy[i]
            h = float(box[3] - box[1])
            assert xy is not None
            self._memory.add(
                int(tracks.track_id[i]),
                pts,
                (float(xy[k, 0]), float(xy[k, 1])),
                h,
                math.hypot(float(box[2] - box[0]), h),
            )
        members = self._cluster(tracks, inside)
        count = int(members.sum())
        self._coming = 0
        self._view = view
        coming = np.zeros(len(tracks), bool)
        if cfg.forecast_s > 0:
            coming = self._cluster(tracks, inside, cfg.forecast_s)
            self._coming = int(coming.sum()) if coming.sum() >= cfg.min_count else 0
        self._first_pts = pts if self._first_pts is None else self._first_pts
        if pts - self._first_pts >= 2.0:  # tracks being born at the start are no rise
            self._counts.append((pts, count))
        while self._counts and pts - self._counts[0][0] > cfg.gather_window_s:
            self._counts.popleft()
        crowd = count >= cfg.min_count and self._dense(count)
        if crowd:
            centre = view.to_scene(anchor_points(tracks.xyxy[members], cfg.anchor)).mean(axis=0)
            self._crowd_xy = (float(centre[0]), float(centre[1]))
            self._crowd_pts = pts
            inside = members
        converging = self._coming - count >= cfg.gather_rise
        if converging and not crowd:
            # where they are heading: the mean of their positions `forecast_s` ahead
            feet = view.to_scene(anchor_points(tracks.xyxy[coming], cfg.anchor))
            ahead = []
            for (x, y), tid in zip(feet, tracks.track_id[coming], strict=True):
                v = self._memory.velocity(int(tid), window_s=1.0) or (0.0, 0.0)
                ahead.append((x + v[0] * cfg.forecast_s, y + v[1] * cfg.forecast_s))
            centre = np.mean(ahead, axis=0)
            self._crowd_xy = (float(centre[0]), float(centre[1]))
        events = self._gather_step(tracks, frame, inside, count, crowd, converging)
        events += self._disperse_step(tracks, frame, idx, xy)
        return events

    def _cluster(self, tracks: Tracks, inside: np.ndarray, ahead_s: float = 0.0) -> np.ndarray:
        """The people in the zone around the one with the most neighbours within
        `cluster_radius` body heights (bool [n]); with `ahead_s`, where each will be by then
        if it keeps its velocity."""
        idx = np.flatnonzero(inside)
        out = np.zeros(len(tracks), bool)
        if len(idx) == 0:
            return out
        feet = anchor_points(tracks.xyxy[idx], self.cfg.anchor)
        if ahead_s > 0:
            for k, i in enumerate(idx):
                v = self._memory.velocity(int(tracks.track_id[i]), window_s=1.0)
                if v is not None:
                    feet[k] += (v[0] * ahead_s, v[1] * ahead_s)
        heights = np.maximum(1.0, tracks.xyxy[idx, 3] - tracks.xyxy[idx, 1]).astype(np.float64)
        dy = (feet[:, None, 1] - feet[None, :, 1]) * self.cfg.depth_factor
        dist = np.hypot(feet[:, None, 0] - feet[None, :, 0], dy)
        # people at the same distance from the camera look about as tall: one much taller or
        # shorter is nearer or farther, however close their feet look in the picture
        ratio = heights[:, None] / heights[None, :]
        near = (dist <= self.cfg.cluster_radius * heights[:, None]) & (ratio > 0.7) & (ratio < 1.43)
        best = int(np.argmax(near.sum(axis=1)))
        out[idx[near[best]]] = True
        return out

    def _centre_px(self) -> list[float]:
        """The crowd's centre in this frame's image pixels."""
        x, y = self._view.to_image(np.array([self._crowd_xy]))[0]
        return [round(float(x), 1), round(float(y), 1)]

    def _history_s(self) -> float:
        return self._counts[-1][0] - self._counts[0][0] if self._counts else 0.0

    def _dense(self, count: int) -> bool:
        if self.cfg.min_density is None or self.cfg.area_m2 is None:
            return True
        return count / self.cfg.area_m2 >= self.cfg.min_density

    def _attrs(self, count: int) -> dict[str, object]:
        a: dict[str, object] = {
            "count": count,
            "max_count": self._max_count,
            "centre_px": self._centre_px(),
        }
        if self.cfg.area_m2:
            a["density_per_m2"] = round(count / self.cfg.area_m2, 3)
        return a

    def _gather_step(
        self,
        tracks: Tracks,
        frame: Frame,
        inside: np.ndarray,
        count: int,
        crowd: bool,
        converging: bool,
    ) -> list[Event]:
        pts = frame.pts_s
        inc = self._gathering
        # a rise needs history: tracks being born when the stream starts are no gathering
        known = self._history_s() >= min(5.0, 0.5 * self.cfg.gather_window_s)
        if crowd or (converging and not inc.open):
            self._below_since = None
            self._max_count = max(self._max_count if inc.open else 0, count)
            rise = count - min(c for _, c in self._counts) if self._counts else 0
            rising = crowd and rise >= self.cfg.gather_rise
            if not inc.open and known and (rising or converging) and inc.can_start(pts):
                inc.start(pts)
                attrs = {
                    **self._attrs(count),
                    "rise": rise,
                    "converging": self._coming,
                    "window_s": self.cfg.gather_window_s,
                }
                return [self._event(inc, "crowd_gathering", "start", frame, tracks, inside, attrs)]
            return []
        if not inc.open:
            return []
        self._below_since = pts if self._below_since is None else self._below_since
        if pts - self._below_since >= self.cfg.clear_after_s:
            return [
                self._event(
                    inc, "crowd_gathering", "end", frame, tracks, inside, self._attrs(count)
                )
            ]
        return []

    def _disperse_step(
        self, tracks: Tracks, frame: Frame, idx: np.ndarray, xy: np.ndarray | None
    ) -> list[Event]:
        cfg = self.cfg
        pts = frame.pts_s
        inc = self._dispersal
        runners: list[int] = []
        outward = 0
        if cfg.disperse and pts - self._crowd_pts <= cfg.memory_s:
            for k, i in enumerate(idx):
                tid = int(tracks.track_id[i])
                v = self._memory.velocity(tid, window_s=0.6)
                height, _ = self._memory.size(tid)
                if v is None or height <= 0:
                    continue
                speed = math.hypot(*v) / height
                if speed < cfg.run_speed:
                    continue
                runners.append(int(i))
                assert xy is not None
                dx, dy = xy[k, 0] - self._crowd_xy[0], xy[k, 1] - self._crowd_xy[1]
                outward += int(v[0] * dx + v[1] * dy > 0)
        scattering = len(runners) >= cfg.min_runners and outward >= cfg.outward_fraction * len(
            runners
        )
        mask = np.zeros(len(tracks), bool)
        mask[runners] = True
        if scattering:
            self._calm_since = None
            if not inc.open and inc.can_start(pts):
                inc.start(pts)
                attrs = {
                    "runners": len(runners),
                    "outward": outward,
                    "centre_px": self._centre_px(),
                }
                return [self._event(inc, "crowd_dispersal", "start", frame, tracks, mask, attrs)]
            return []
        if not inc.open:
            return []
        self._calm_since = pts if self._calm_since is None else self._calm_since
        if pts - self._calm_since >= cfg.clear_after_s:
            return [
                self._event(
                    inc, "crowd_dispersal", "end", frame, tracks, mask, {"runners": len(runners)}
                )
            ]
        return []

    def _event(
        self,
        inc: Incident,
        kind: str,
        phase: str,
        frame: Frame,
        tracks: Tracks,
        mask: np.ndarray,
        attributes: dict[str, object],
    ) -> Event:
        event_id = inc.end(frame.pts_s) if phase == "end" else inc.event_id
        assert event_id is not None
        labels = tuple(lb for lb, s in zip(tracks.labels(), mask, strict=True) if s)
        return make_event(
            rule_id=self.id,
            kind=kind,
            phase=phase,  # type: ignore[arg-type]
            event_id=event_id,
            frame=frame,
            severity=self.cfg.severity,
            xyxy=tracks.xyxy[mask],
            score=tracks.score[mask],
            labels=labels,
            track_id=tracks.track_id[mask],
            zone_id=self.zone.id,
            attributes=attributes,
        )

    def forget(self, track_ids: list[int]) -> None:
        """Ended tracks: drop their history."""
        self._memory.forget(track_ids)

    def close(self, frame: Frame) -> list[Event]:
        """End open incidents (the stream ended)."""
        empty = Tracks.empty()
        none = np.zeros(0, bool)
        out = []
        if self._gathering.open:
            out.append(
                self._event(
                    self._gathering,
                    "crowd_gathering",
                    "end",
                    frame,
                    empty,
                    none,
                    {"reason": "stream_ended"},
                )
            )
        if self._dispersal.open:
            out.append(
                self._event(
                    self._dispersal,
                    "crowd_dispersal",
                    "end",
                    frame,
                    empty,
                    none,
                    {"reason": "stream_ended"},
                )
            )
        return out
