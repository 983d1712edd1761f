"""Alerts on the wire: CloudEvents 1.0 attributes around Lookout's event data, as JSON.

The message is multipart [topic, JSON]. The topic is `<kind>.<site>.<source>.`: it ends in the
delimiter, so a subscription to `zone_presence.site.cam1.` never matches `cam10`. Health events of
sources share the stream under their own topic, `health.<site>.<source>.`, with CloudEvents type
`lookout.source.<state>`.

Every alert says whether it is `durable`: journaled before it went out, so a console that
missed it can fetch it again. An alert published while the journal could not be written says
`"durable": false`: the engine holds it in memory (bounded) and replay still serves it until
the journal takes it again, but a crash before then loses it. Version 2 of the schema added it.
Version 3 added `stage`: where a staged incident (dumping) stands at this alert.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from engine.config import RouteConfig
from engine.redact import redact, redact_value
from engine.types import Alert, ClipRef, Event, GroundPosition, HealthEvent

__all__ = [
    "HEALTH_TOPIC",
    "SCHEMA_VERSION",
    "AlertStamper",
    "alert_body",
    "alert_to_dict",
    "encode_alert",
    "ending_from_body",
    "routes_for",
    "topic_for",
]

SCHEMA_VERSION = 3
HEALTH_TOPIC = "health"


def topic_for(kind: str, site: str, source_id: str) -> str:
    """`<kind>.<site>.<source>.`: ids contain no dots, so each part is exact."""
    return f"{kind}.{site}.{source_id}."


def routes_for(
    event: Event | HealthEvent, site: str, routes: Sequence[RouteConfig]
) -> tuple[str, ...]:
    """`@<agency>.<kind>.<site>.<source>.` for each agency whose route claims the event: any of
    its kinds, zones or sources matches (a route listing none claims everything)."""
    zone = event.zone_id if isinstance(event, Event) else None
    kind = HEALTH_TOPIC if isinstance(event, HealthEvent) else event.kind
    base = topic_for(kind, site, event.source_id)
    out = []
    for r in routes:
        claimed = not (r.kinds or r.zones or r.sources) or (
            event.kind in r.kinds
            or (zone is not None and zone in r.zones)
            or event.source_id in r.sources
        )
        if claimed:
            out.append(f"@{r.agency}.{base}")
    return tuple(out)


class AlertStamper:
    """Turns events into alerts: one epoch per publisher run, sequence numbers from 1.

    Not thread-safe: one publisher owns it.

    Args:
        site: the deployment's site name (in topics).
        routes: agencies and what they are responsible for (config `routing`).
    """

    def __init__(self, site: str, routes: Sequence[RouteConfig] = ()) -> None:
        self.site = site
        self.routes = tuple(routes)
        self.epoch = uuid.uuid4().hex[:16]
        self.seq = 0

    def stamp(self, event: Event | HealthEvent) -> Alert:
        """The next alert for `event`."""
        self.seq += 1
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        kind = HEALTH_TOPIC if isinstance(event, HealthEvent) else event.kind
        return Alert(
            event=event,
            topic=topic_for(kind, self.site, event.source_id),
            seq=self.seq,
            epoch=self.epoch,
            time_utc=now,
            site=self.site,
            routes=routes_for(event, self.site, self.routes),
        )


def _envelope(alert: Alert, type_: str, subject: str, durable: bool) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"{alert.epoch}-{alert.seq}",
        "source": f"lookout://{alert.site}/{alert.event.source_id}",
        "type": type_,
        "time": alert.time_utc,
        "datacontenttype": "application/json",
        "dataschema": f"lookout.alert/v{SCHEMA_VERSION}",
        "subject": subject,
        "seq": alert.seq,
        "epoch": alert.epoch,
        "durable": durable,
    }


def _health_to_dict(alert: Alert, h: HealthEvent, durable: bool) -> dict[str, Any]:
    return {
        **_envelope(alert, f"lookout.{h.kind}", h.source_id, durable),
        "data": {
            "schema_version": SCHEMA_VERSION,
            "kind": h.kind,
            "severity": h.severity,
            "site": alert.site,
            "sensors": [h.source_id],
            # whoever made it, nothing on the wire (alerts, journal, files) carries credentials
            "reason": redact(h.reason),
            "routes": [r.split(".", 1)[0][1:] for r in alert.routes],
            "attributes": redact_value(h.attributes),
        },
    }


def alert_to_dict(alert: Alert, durable: bool = True) -> dict[str, Any]:
    """The alert as a JSON-ready dict (CloudEvents 1.0 structured mode); `durable`: it was
    journaled (False: published while the journal could not be written)."""
    e = alert.event
    if isinstance(e, HealthEvent):
        return _health_to_dict(alert, e, durable)
    objects = [
        {
            "label": label,
            "score": round(float(s), 4),
            "box_xyxy": [round(float(v), 1) for v in box],
            "track_id": int(t) if t >= 0 else None,
        }
        for label, s, box, t in zip(e.labels, e.score, e.xyxy, e.track_id, strict=True)
    ]
    return {
        **_envelope(alert, f"lookout.{e.kind}.{e.phase}", e.event_id, durable),
        "data": {
            "schema_version": SCHEMA_VERSION,
            "event_id": e.event_id,
            "kind": e.kind,
            "phase": e.phase,
            "stage": e.stage,
            "severity": e.severity,
            "site": alert.site,
            "sensors": list(e.sensors or (e.source_id,)),
            "rule": e.rule_id,
            "zone": e.zone_id,
            "stream_pts_s": round(e.pts_s, 6),
            "frame": {"width": e.frame_size[0], "height": e.frame_size[1]},
            "objects": objects,
            "position": _position_to_wire(e.position),
            "snapshot": {"part": 2, "content_type": "image/jpeg", "bytes": len(e.snapshot)}
            if e.snapshot
            else None,
            "routes": [r.split(".", 1)[0][1:] for r in alert.routes],
            "attributes": _attributes_to_wire(e),
        },
    }


# The typed facts an engine adds to a rule's event travel in `attributes` under these keys too
# (as they did when they were attributes): consumers of schema v2 read them there.
_TYPED_KEYS = ("position", "global_ids", "clip", "sensors", "sensor_event_id")


def _position_to_wire(p: GroundPosition | None) -> dict[str, float] | None:
    if p is None:
        return None
    return {
        "lat": p.lat_deg,
        "lon": p.lon_deg,
        "uncertainty_m": p.uncertainty_m,
        "east_m": p.east_m,
        "north_m": p.north_m,
    }


def _clip_to_wire(c: ClipRef) -> dict[str, Any]:
    out: dict[str, Any] = {"file": c.file, "status": c.status}
    if c.size_bytes is not None:
        out["bytes"] = c.size_bytes
    if c.reason is not None:
        out["reason"] = c.reason
    return {**out, "pre_s": c.pre_s, "post_s": c.post_s}


def _attributes_to_wire(e: Event) -> dict[str, Any]:
    """The rule's attributes, then the typed facts under their keys of schema v2."""
    out = dict(e.attributes)
    if e.position is not None:
        out["position"] = _position_to_wire(e.position)
    if e.global_id is not None:
        out["global_ids"] = [int(g) for g in e.global_id.tolist()]
    if e.clip is not None:
        out["clip"] = _clip_to_wire(e.clip)
    if e.sensors:
        out["sensors"] = list(e.sensors)
    if e.sensor_event_id is not None:
        out["sensor_event_id"] = e.sensor_event_id
    return out


def _position_from_wire(p: Any) -> GroundPosition | None:
    try:
        return GroundPosition(
            float(p["lat"]),
            float(p["lon"]),
            float(p["uncertainty_m"]),
            float(p["east_m"]),
            float(p["north_m"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _clip_from_wire(c: Any) -> ClipRef | None:
    if not isinstance(c, dict) or c.get("status") not in ("recording", "written", "failed"):
        return None
    size, reason = c.get("bytes"), c.get("reason")
    return ClipRef(
        c["status"],
        None if c.get("file") is None else str(c["file"]),
        float(c.get("pre_s", 0.0)),
        float(c.get("post_s", 0.0)),
        None if size is None else int(size),
        None if reason is None else str(reason),
    )


def alert_body(alert: Alert, durable: bool = True) -> bytes:
    """The alert's JSON, as sent and journaled."""
    message = alert_to_dict(alert, durable)
    return json.dumps(message, separators=(",", ":"), sort_keys=False).encode()


def ending_from_body(body: bytes, reason: str) -> Event:
    """The `end` of the incident whose last alert is `body` (a journaled rule alert): same
    event id, kind, rule, zone, sensors, position and clip, no objects (so no global ids),
    `reason` in its attributes, stage `closed` for a staged incident. Used to end the
    incidents a crashed engine left open.

    Raises:
        ValueError: `body` is not a rule alert of this wire format.
    """
    try:
        message = json.loads(body)
        data = message["data"]
        source_id = str(message["source"]).rsplit("/", 1)[-1]
        frame = data.get("frame") or {}
        attributes = dict(data.get("attributes") or {})
        typed = {k: attributes.pop(k, None) for k in _TYPED_KEYS}
        sensor_event_id = typed["sensor_event_id"]
        return Event(
            event_id=str(data["event_id"]),
            kind=str(data["kind"]),
            phase="end",
            source_id=source_id,
            rule_id=str(data["rule"]),
            pts_s=float(data["stream_pts_s"]),
            capture_ns=time.monotonic_ns(),
            xyxy=np.zeros((0, 4), np.float32),
            score=np.zeros(0, np.float32),
            labels=(),
            track_id=np.zeros(0, np.int64),
            zone_id=data.get("zone"),
            severity=data.get("severity", "warning"),
            attributes={**attributes, "reason": reason},
            frame_size=(int(frame.get("width", 0)), int(frame.get("height", 0))),
            position=_position_from_wire(data.get("position") or typed["position"]),
            clip=_clip_from_wire(typed["clip"]),
            sensors=tuple(str(s) for s in typed["sensors"] or ()),
            sensor_event_id=None if sensor_event_id is None else str(sensor_event_id),
            stage="closed" if data.get("stage") else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a rule alert: {exc!r}") from None


def encode_alert(alert: Alert) -> list[bytes]:
    """Multipart frames [topic, JSON] (plus the JPEG snapshot, if any) under its own topic."""
    snapshot = alert.event.snapshot if isinstance(alert.event, Event) else None
    return [alert.topic.encode(), alert_body(alert), *([snapshot] if snapshot else [])]
