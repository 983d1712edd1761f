"""Zone presence: objects of given classes in a polygon, one incident from arrival to departure.

The incident starts once matching objects have been inside for `min_frames` consecutive frames,
sends an `update` every `update_every_s` while they stay (if asked), and ends once the zone has
been empty for `clear_after_s` of stream time, so that a flickering box is one incident, not many.
"""

from __future__ import annotations

import uuid

import numpy as np
import numpy.typing as npt

from engine.config import ZoneConfig, ZonePresenceRuleConfig
from engine.errors import ConfigError
from engine.rules.geometry import anchor_points, points_in_polygon
from engine.types import Detections, Event, EventPhase, Frame, Tracks

__all__ = ["ZonePresenceRule"]

KIND = "zone_presence"


class ZonePresenceRule:
    """Watches one zone of one source.

    Args:
        cfg: the rule's configuration.
        zone: the zone it watches.
        class_names: the detector's class names (to resolve `cfg.classes`).

    Raises:
        ConfigError: a class in `cfg.classes` is not one the detector knows.
    """

    def __init__(
        self, cfg: ZonePresenceRuleConfig, zone: ZoneConfig, class_names: tuple[str, ...]
    ) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.source_id = zone.source
        self.zone = zone
        self._polygon = np.asarray(zone.polygon, np.float64)
        unknown = [c for c in cfg.classes if c not in class_names]
        if unknown:
            raise ConfigError(
                f"rule {cfg.id}: classes {unknown} are not known to the detector "
                f"(it knows: {', '.join(class_names)})"
            )
        self._class_ids = np.asarray([class_names.index(c) for c in cfg.classes], np.int32)
        self._event_id: str | None = None
        self._consecutive = 0
        self._started_pts = 0.0
        self._last_seen_pts = 0.0
        self._last_emit_pts = 0.0
        self._max_count = 0

    @property
    def active(self) -> bool:
        """An incident is open."""
        return self._event_id is not None

    def inside(self, tracks: Tracks) -> npt.NDArray[np.bool_]:
        """Which tracks count: right class, score, and anchor point inside the zone (bool [n])."""
        mask = tracks.score >= self.cfg.min_score
        if len(self._class_ids):
            mask &= np.isin(tracks.class_id, self._class_ids)
        if mask.any():
            pts = anchor_points(tracks.xyxy[mask], self.cfg.anchor)
            mask[mask] = points_in_polygon(pts, self._polygon)
        return mask

    def step(self, tracks: Tracks, frame: Frame) -> list[Event]:
        """Events caused by this frame's tracks (usually none)."""
        mask = self.inside(tracks)
        pts = frame.pts_s
        if mask.any():
            self._consecutive += 1
            self._last_seen_pts = pts
            count = int(mask.sum())
            if self._event_id is None:
                if self._consecutive >= self.cfg.min_frames:
                    self._event_id = uuid.uuid4().hex
                    self._started_pts = pts
                    self._max_count = count
                    self._last_emit_pts = pts
                    return [self._event("start", tracks, mask, frame)]
                return []
            self._max_count = max(self._max_count, count)
            every = self.cfg.update_every_s
            if every > 0 and pts - self._last_emit_pts >= every:
                self._last_emit_pts = pts
                return [self._event("update", tracks, mask, frame)]
            return []
        self._consecutive = 0
        if self._event_id is not None and pts - self._last_seen_pts >= self.cfg.clear_after_s:
            return [self._event("end", tracks, mask, frame)]
        return []

    def forget(self, track_ids: list[int]) -> None:
        """Tracks that ended (the tracker says so each frame): free any state kept for them.
        This rule counts objects per frame and keeps none."""

    def close(self, frame: Frame) -> list[Event]:
        """End an open incident because the stream ended; `frame` is the last one seen."""
        if self._event_id is None:
            return []
        no_tracks = Tracks.untracked(Detections.empty())
        empty = np.zeros(0, bool)
        return [self._event("end", no_tracks, empty, frame, reason="stream_ended")]

    def _event(
        self,
        phase: EventPhase,
        tracks: Tracks,
        mask: npt.NDArray[np.bool_],
        frame: Frame,
        reason: str | None = None,
    ) -> Event:
        assert self._event_id is not None
        event_id = self._event_id
        attributes: dict[str, object] = {
            "count": int(mask.sum()),
            "max_count": self._max_count,
            "duration_s": round(self._last_seen_pts - self._started_pts, 3),
            "classes": list(self.cfg.classes),
        }
        if reason:
            attributes["reason"] = reason
        if phase == "end":
            self._event_id = None
            self._consecutive = 0
        all_labels = tracks.labels() if mask.any() else []
        labels = tuple(all_labels[i] for i in np.flatnonzero(mask))
        return Event(
            event_id=event_id,
            kind=KIND,
            phase=phase,
            source_id=frame.source_id,
            rule_id=self.id,
            pts_s=frame.pts_s,
            capture_ns=frame.capture_ns,
            xyxy=tracks.xyxy[mask],
            score=tracks.score[mask],
            labels=labels,
            track_id=tracks.track_id[mask],
            zone_id=self.zone.id,
            severity=self.cfg.severity,
            attributes=attributes,
            frame_size=(frame.width, frame.height),
        )
