"""The alert on the wire: CloudEvents attributes, sequence, topic with a trailing delimiter."""

import json

import numpy as np

from engine.alerts import AlertStamper, alert_to_dict, encode_alert, topic_for
from engine.types import Event


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
