"""Alerts on the wire: CloudEvents 1.0 attributes around Lookout's event data, as JSON.

The message is multipart [topic, JSON]. The topic is `<kind>.<site>.<source>.`: it ends in the
delimiter, so a subscription to `zone_presence.site.cam1.` never matches `cam10`. Health events of
sources share the stream under their own topic, `health.<site>.<source>.`, with CloudEvents type
`lookout.source.<state>`.

Every alert says whether it is `durable`: journaled before it went out, so a console that
missed it can fetch it again. An alert published while the journal could not be written says
`"durable": false`: the engine holds it in memory (bounded) and replay still serves it until
the journal takes it again, but a crash before then loses it. Version 2 of the schema added it.
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
from engine.types import Alert, Event, HealthEvent

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

SCHEMA_VERSION = 2
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
            "severity": e.severity,
            "site": alert.site,
            "sensors": list(e.attributes.get("sensors") or [e.source_id]),
            "rule": e.rule_id,
            "zone": e.zone_id,
            "stream_pts_s": round(e.pts_s, 6),
            "frame": {"width": e.frame_size[0], "height": e.frame_size[1]},
            "objects": objects,
            "position": e.attributes.get("position"),
            "snapshot": {"part": 2, "content_type": "image/jpeg", "bytes": len(e.snapshot)}
            if e.snapshot
            else None,
            "routes": [r.split(".", 1)[0][1:] for r in alert.routes],
            "attributes": e.attributes,
        },
    }


def alert_body(alert: Alert, durable: bool = True) -> bytes:
    """The alert's JSON, as sent and journaled."""
    message = alert_to_dict(alert, durable)
    return json.dumps(message, separators=(",", ":"), sort_keys=False).encode()


def ending_from_body(body: bytes, reason: str) -> Event:
    """The `end` of the incident whose last alert is `body` (a journaled rule alert): same
    event id, kind, rule, zone and sensors, no objects, `reason` in its attributes. Used to end
    the incidents a crashed engine left open.

    Raises:
        ValueError: `body` is not a rule alert of this wire format.
    """
    try:
        message = json.loads(body)
        data = message["data"]
        source_id = str(message["source"]).rsplit("/", 1)[-1]
        frame = data.get("frame") or {}
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
            attributes={**(data.get("attributes") or {}), "reason": reason},
            frame_size=(int(frame.get("width", 0)), int(frame.get("height", 0))),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a rule alert: {exc!r}") from None


def encode_alert(alert: Alert) -> list[bytes]:
    """Multipart frames [topic, JSON] (plus the JPEG snapshot, if any) under its own topic."""
    snapshot = alert.event.snapshot if isinstance(alert.event, Event) else None
    return [alert.topic.encode(), alert_body(alert), *([snapshot] if snapshot else [])]
