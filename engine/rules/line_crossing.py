"""Line crossing with hysteresis and direction.

Each track's side of the line is remembered only once its anchor is clearly on one side (more
than `hysteresis` box heights away); a crossing is a change between clear sides. A box that
flickers on the line never gets clear of it, so it makes no crossings. Crossings close together
in time are one incident: a start, an update per further crossing, an end after a quiet spell.
"""

from __future__ import annotations

import numpy as np

from engine.config import LineCrossingRuleConfig
from engine.rules.base import Incident, View, class_ids, in_zone, make_event
from engine.rules.geometry import anchor_points
from engine.types import Event, Frame, Tracks

__all__ = ["LineCrossingRule"]


class LineCrossingRule:
    """Counts crossings of one line in one source's image.

    Args:
        cfg: the rule's configuration.
        class_names: the detector's class names.
    """

    kind = "line_crossing"

    def __init__(self, cfg: LineCrossingRuleConfig, class_names: tuple[str, ...]) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.source_id = cfg.source
        self.needs_foreground = False
        self._ids = class_ids(cfg.id, cfg.classes, class_names)
        a, b = np.asarray(cfg.line, np.float64)
        self._a = a
        self._len = float(np.linalg.norm(b - a))
        self._dir = (b - a) / self._len
        self._side: dict[int, int] = {}  # track id -> +1 (left of A->B) or -1, once clear
        self._incident = Incident(cfg.cooldown_s)
        self._last_crossing_pts = 0.0
        self.count_in = 0
        self.count_out = 0

    def _signed_distance(self, pts: np.ndarray) -> np.ndarray:
        d = pts - self._a
        # image y points down: the cross product's sign is flipped so that 'left' is as seen
        return -(self._dir[0] * d[:, 1] - self._dir[1] * d[:, 0])

    def step(self, tracks: Tracks, frame: Frame, view: View | None = None) -> list[Event]:
        """Events for crossings completed in this frame."""
        mask = in_zone(tracks, self._ids, self.cfg.min_score, self.cfg.anchor, None)
        events: list[Event] = []
        idx = np.flatnonzero(mask & (tracks.track_id >= 0))
        crossed: list[tuple[int, str]] = []
        if len(idx):
            pts = anchor_points(tracks.xyxy[idx], self.cfg.anchor)
            dist = self._signed_distance(pts)
            height = tracks.xyxy[idx, 3] - tracks.xyxy[idx, 1]
            along = (pts - self._a) @ self._dir  # position along A->B
            for k, i in enumerate(idx):
                margin = self.cfg.hysteresis * float(height[k])
                if abs(dist[k]) <= margin:
                    continue  # on the line: the side stays what it was
                if not 0.0 <= along[k] <= self._len:
                    # beyond the segment's ends: passing there crosses nothing
                    self._side.pop(int(tracks.track_id[i]), None)
                    continue
                tid = int(tracks.track_id[i])
                side = 1 if dist[k] > 0 else -1
                before = self._side.get(tid)
                self._side[tid] = side
                if before is None or before == side:
                    continue
                direction = "in" if side == 1 else "out"
                if direction == "in":
                    self.count_in += 1
                else:
                    self.count_out += 1
                if self.cfg.direction in ("both", direction):
                    crossed.append((int(i), direction))
        pts_s = frame.pts_s
        inc = self._incident
        for j, direction in crossed:
            self._last_crossing_pts = pts_s
            if not inc.open:
                if not inc.can_start(pts_s):
                    continue
                inc.start(pts_s)
                events.append(self._event("start", frame, tracks, j, direction))
            else:
                events.append(self._event("update", frame, tracks, j, direction))
        if inc.open and not crossed and pts_s - self._last_crossing_pts >= self.cfg.clear_after_s:
            events.append(self._event("end", frame, tracks, None, None))
        return events

    def _event(
        self, phase: str, frame: Frame, tracks: Tracks, i: int | None, direction: str | None
    ) -> Event:
        inc = self._incident
        event_id = inc.end(frame.pts_s) if phase == "end" else inc.event_id
        assert event_id is not None
        sel = slice(i, i + 1) if i is not None else slice(0, 0)
        return make_event(
            rule_id=self.id,
            kind=self.kind,
            phase=phase,  # type: ignore[arg-type]
            event_id=event_id,
            frame=frame,
            severity=self.cfg.severity,
            xyxy=tracks.xyxy[sel],
            score=tracks.score[sel],
            labels=tuple(tracks.labels()[sel]) if i is not None else (),
            track_id=tracks.track_id[sel],
            attributes={
                "direction": direction,
                "count_in": self.count_in,
                "count_out": self.count_out,
            },
        )

    def forget(self, track_ids: list[int]) -> None:
        """Ended tracks: drop their remembered side."""
        for t in track_ids:
            self._side.pop(t, None)

    def close(self, frame: Frame) -> list[Event]:
        """End the open incident (the stream ended)."""
        if not self._incident.open:
            return []
        empty = Tracks.empty()
        return [self._event("end", frame, empty, None, None)]
