"""The alert on the wire: CloudEvents attributes, sequence, topic with a trailing delimiter."""

import dataclasses
import json

import numpy as np

from engine.alerts import AlertStamper, alert_to_dict, encode_alert, topic_for
from engine.alerts.schema import validate_message
from engine.alerts.wire import alert_body, ending_from_body
from engine.types import ClipRef, Event, GroundPosition


def event(source: str = "cam1") -> Event:
    return Event(
        "ev1",
        "zone_presence",
        "start",
        source,
        "r1",
        12.5,
        0,
        np.array([[1, 2, 3, 4]], np.float32),
        np.array([0.9], np.float32),
        ("person",),
        np.array([-1], np.int64),
        "z1",
        "critical",
        {"count": 1},
        (640, 480),
    )


def test_topic_ends_with_delimiter_so_prefixes_are_exact() -> None:
    assert topic_for("zone_presence", "s", "cam1") == "zone_presence.s.cam1."
    assert not topic_for("zone_presence", "s", "cam10").startswith(
        topic_for("zone_presence", "s", "cam1")
    )


def test_stamper_sequences_from_one_with_one_epoch() -> None:
    st = AlertStamper("s")
    a1, a2 = st.stamp(event()), st.stamp(event("cam2"))
    assert (a1.seq, a2.seq) == (1, 2) and a1.epoch == a2.epoch
    assert AlertStamper("s").epoch != st.epoch
    assert a2.topic == "zone_presence.s.cam2."


def test_alert_dict_and_encoding() -> None:
    alert = AlertStamper("s").stamp(event())
    d = alert_to_dict(alert)
    assert d["specversion"] == "1.0" and d["type"] == "lookout.zone_presence.start"
    assert d["id"] == f"{alert.epoch}-1" and d["time"].endswith("Z")
    assert d["data"]["objects"] == [
        {"label": "person", "score": 0.9, "box_xyxy": [1.0, 2.0, 3.0, 4.0], "track_id": None}
    ]
    topic, body = encode_alert(alert)
    assert topic == b"zone_presence.s.cam1." and json.loads(body) == d


def placed_merged_event() -> Event:
    """An event as the engine sends it from a mapped, fused source with clips, merged."""
    return dataclasses.replace(
        event("cam2"),
        position=GroundPosition(22.5, 114.1, 2.5, 10.0, -4.25),
        global_id=np.array([7], np.int64),
        clip=ClipRef("written", "cam2/ev1.mp4", 2.0, 3.0, size_bytes=1234),
        sensors=("cam1", "cam2"),
        sensor_event_id="own1",
    )


def test_typed_facts_go_out_where_schema_v2_carries_them() -> None:
    d = alert_to_dict(AlertStamper("s").stamp(placed_merged_event()))
    validate_message(d)
    data = d["data"]
    position = {"lat": 22.5, "lon": 114.1, "uncertainty_m": 2.5, "east_m": 10.0, "north_m": -4.25}
    assert data["position"] == position and data["sensors"] == ["cam1", "cam2"]
    assert data["attributes"] == {
        "count": 1,
        "position": position,
        "global_ids": [7],
        "clip": {
            "file": "cam2/ev1.mp4",
            "status": "written",
            "bytes": 1234,
            "pre_s": 2.0,
            "post_s": 3.0,
        },
        "sensors": ["cam1", "cam2"],
        "sensor_event_id": "own1",
    }
    plain = alert_to_dict(AlertStamper("s").stamp(event()))["data"]
    assert plain["position"] is None and plain["sensors"] == ["cam1"]
    assert plain["attributes"] == {"count": 1}


def test_an_ending_rebuilt_from_the_journal_gets_the_typed_facts_back() -> None:
    sent = placed_merged_event()
    end = ending_from_body(alert_body(AlertStamper("s").stamp(sent)), "engine_restarted")
    assert end.phase == "end" and end.event_id == sent.event_id and len(end.xyxy) == 0
    assert end.position == sent.position and end.clip == sent.clip
    assert end.sensors == sent.sensors and end.sensor_event_id == "own1"
    assert end.global_id is None  # no objects, so no identities
    assert end.attributes == {"count": 1, "reason": "engine_restarted"}
    again = alert_to_dict(AlertStamper("s").stamp(end))["data"]
    assert again["position"]["east_m"] == 10.0 and again["attributes"]["clip"]["bytes"] == 1234
