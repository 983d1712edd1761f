"""Alerts: stamping events into alerts, and the sinks that carry them (ZeroMQ, JSONL)."""

from __future__ import annotations

from engine.alerts.jsonl_sink import JsonlSink
from engine.alerts.snapshot import with_snapshot
from engine.alerts.subscriber import AlertSubscriber
from engine.alerts.wire import AlertStamper, alert_to_dict, encode_alert, topic_for
from engine.alerts.zmq_publisher import ZmqPublisher

__all__ = [
    "AlertStamper",
    "AlertSubscriber",
    "JsonlSink",
    "ZmqPublisher",
    "alert_to_dict",
    "encode_alert",
    "topic_for",
    "with_snapshot",
]
