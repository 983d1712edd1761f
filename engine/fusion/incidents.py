"""One incident, one alert: events of the same kind at the same place from several sensors merge.

An incident's `start` from one sensor opens a merged incident. A `start` of the same kind from
another sensor within `merge_m` of it (ground positions) and `merge_s` of its last activity
becomes an `update` of that incident, under its event id, listing every sensor that sees it
(`Event.sensors`). Later phases of a merged sensor's own incident are renamed likewise; its
`end` is an `update` until the last sensor's incident ends. Events without a ground position pass
through unchanged. Times are capture times (one monotonic clock for all sources).

A staged incident (dumping) stands where its furthest sensor has taken it: once any sensor has
confirmed it, another sensor's `suspected` says `confirmed`, a sensor's end that is not the
last says where the incident stands, and the last end says `closed` (not `cleared`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from engine.types import Event

__all__ = ["IncidentMerger"]

_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(slots=True)
class _Merged:
    event_id: str
    kind: str
    east: float
    north: float
    last_ns: int
    open_by: dict[str, str] = field(default_factory=dict)  # sensor -> its own event id
    sensors: list[str] = field(default_factory=list)
    confirmed: bool = False  # a sensor confirmed this (staged) incident
    severity: str = "info"  # the highest any sensor gave it


class IncidentMerger:
    """Merges events about the same incident seen by several sensors (one thread only).

    Args:
        merge_m: ground distance within which two sensors' incidents are one.
        merge_s: ... and time since the merged incident's last event.
    """

    def __init__(self, merge_m: float, merge_s: float) -> None:
        self.merge_m = merge_m
        self.merge_s = merge_s
        self._open: list[_Merged] = []
        self._alias: dict[str, _Merged] = {}  # a sensor's event id -> its merged incident
        self.merged = 0  # starts turned into updates

    def __call__(self, event: Event) -> Event:
        """The event as it goes out (renamed and re-phased when merged)."""
        self._expire(event.capture_ns)
        m = self._alias.get(event.event_id)
        if m is None and event.phase == "start":
            m = self._join(event)
            if m is None:
                return event
        if m is None:
            return event
        m.last_ns = max(m.last_ns, event.capture_ns)
        m.confirmed = m.confirmed or event.stage == "confirmed"
        if _RANK[event.severity] > _RANK[m.severity]:
            m.severity = event.severity
        phase, stage = event.phase, event.stage
        if phase == "start":
            if event.event_id != m.event_id:
                self.merged += 1
                phase = "update"
        elif phase == "end":
            m.open_by.pop(event.source_id, None)
            self._alias.pop(event.event_id, None)
            if m.open_by:
                phase = "update"
            else:
                self._open.remove(m)
        if stage is not None and m.confirmed:
            if phase == "end":
                stage = "closed"
            elif stage in ("suspected", "cleared", "closed"):
                stage = "confirmed"
        elif stage in ("cleared", "closed") and phase == "update":
            stage = "suspected"  # that sensor is done; the others still suspect it
        own_id = event.event_id if event.event_id != m.event_id else event.sensor_event_id
        return dataclasses.replace(
            event,
            event_id=m.event_id,
            phase=phase,
            sensors=tuple(m.sensors),
            sensor_event_id=own_id,
            stage=stage,
            severity=m.severity if stage is not None else event.severity,  # type: ignore[arg-type]
        )

    def _join(self, event: Event) -> _Merged | None:
        pos = event.position
        if pos is None:
            return None
        east, north = pos.east_m, pos.north_m
        best = None
        for m in self._open:
            if m.kind != event.kind or event.source_id in m.open_by:
                continue
            if event.capture_ns - m.last_ns > self.merge_s * 1e9:
                continue  # too long since that incident last said anything
            d = math.hypot(m.east - east, m.north - north)
            if d <= self.merge_m and (best is None or d < best[0]):
                best = (d, m)
        if best is None:
            m = _Merged(event.event_id, event.kind, east, north, event.capture_ns)
            self._open.append(m)
        else:
            m = best[1]
        m.open_by[event.source_id] = event.event_id
        if event.source_id not in m.sensors:
            m.sensors.append(event.source_id)
        self._alias[event.event_id] = m
        return m

    def _expire(self, now_ns: int) -> None:
        # silent for an hour: its sensors' incidents will not come back (bounded memory)
        for m in [m for m in self._open if now_ns - m.last_ns > 3600e9]:
            self._open.remove(m)
            for eid in m.open_by.values():
                self._alias.pop(eid, None)

    def __len__(self) -> int:
        return len(self._open)
