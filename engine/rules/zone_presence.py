"""Zone presence and intrusion: objects of given classes in a polygon, one incident from arrival
to departure, with the occupancy count.

The incident starts once matching objects have been inside for `min_frames` consecutive frames,
sends an `update` every `update_every_s` while they stay (if asked), and ends once the zone has
been empty for `clear_after_s` of stream time, so that a flickering box is one incident, not many.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.config import ZoneConfig, ZonePresenceRuleConfig
from engine.rules.base import Incident, View, ZoneRule, class_ids, in_zone
from engine.types import Detections, Event, EventPhase, Frame, Tracks

__all__ = ["ZonePresenceRule"]


class ZonePresenceRule(ZoneRule[ZonePresenceRuleConfig]):
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
        super().__init__(cfg, zone)
        self.kind = cfg.type  # "zone_presence", or "intrusion" for closed areas
        self._ids = class_ids(cfg.id, cfg.classes, class_names)
        self._incident = Incident(cfg.cooldown_s)
        self._consecutive = 0
        self._last_seen_pts = 0.0
        self._max_count = 0

    @property
    def active(self) -> bool:
        """An incident is open."""
        return self._incident.open

    def inside(self, tracks: Tracks) -> npt.NDArray[np.bool_]:
        """Which tracks count: right class, score, and anchor point inside the zone (bool [n])."""
        return in_zone(tracks, self._ids, self.cfg.min_score, self.cfg.anchor, self._polygon)

    def step(self, tracks: Tracks, frame: Frame, view: View | None = None) -> list[Event]:
        """Events caused by this frame's tracks (usually none)."""
        mask = self.inside(tracks)
        pts = frame.pts_s
        inc = self._incident
        if mask.any():
            self._consecutive += 1
            self._last_seen_pts = pts
            count = int(mask.sum())
            if not inc.open:
                if self._consecutive >= self.cfg.min_frames and inc.can_start(pts):
                    inc.start(pts)
                    self._max_count = count
                    return [self._event("start", tracks, mask, frame)]
                return []
            self._max_count = max(self._max_count, count)
            if inc.update_due(pts, self.cfg.update_every_s):
                return [self._event("update", tracks, mask, frame)]
            return []
        self._consecutive = 0
        if inc.open and pts - self._last_seen_pts >= self.cfg.clear_after_s:
            return [self._event("end", tracks, mask, frame)]
        return []

    def forget(self, track_ids: list[int]) -> None:
        """Tracks that ended (the tracker says so each frame): free any state kept for them.
        This rule counts objects per frame and keeps none."""

    def close(self, frame: Frame) -> list[Event]:
        """End an open incident because the stream ended; `frame` is the last one seen."""
        if not self._incident.open:
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
        inc = self._incident
        assert inc.event_id is not None
        event_id = inc.event_id
        attributes: dict[str, object] = {
            "count": int(mask.sum()),
            "max_count": self._max_count,
            "duration_s": round(self._last_seen_pts - inc.started_pts, 3),
            "classes": list(self.cfg.classes),
        }
        if reason:
            attributes["reason"] = reason
        if phase == "end":
            inc.end(frame.pts_s)
            self._consecutive = 0
        all_labels = tracks.labels() if mask.any() else []
        labels = tuple(all_labels[i] for i in np.flatnonzero(mask))
        return Event(
            event_id=event_id,
            kind=self.kind,
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
