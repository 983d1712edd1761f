# ruff: noqa: E501  (SRT records are long lines by nature)
"""MISB ST 0601 KLV and DJI SRT: round trips within encoding precision, clear errors otherwise."""

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import TelemetryError
from engine.telemetry import dji_srt, misb0601

# one step of each tag's integer mapping, i.e. the precision the standard gives
STEP = {
    name: (t.hi - t.lo) / (2 ** (8 * struct.calcsize(t.fmt)) - 1) * (2 if t.signed else 1)
    for name, t in misb0601.TAGS.items()
}


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**63 - 1),
    st.fixed_dictionaries(
        {name: st.floats(t.lo, t.hi, allow_nan=False) for name, t in misb0601.TAGS.items()}
    ),
)
def test_roundtrip_within_precision(time_us: int, values: dict[str, float]) -> None:
    out = misb0601.decode(misb0601.encode(time_us, values, "M30"))
    assert out["time_us"] == time_us and out["platform"] == "M30" and out["ls_version"] == 17
    for name, v in values.items():
        assert out[name] == pytest.approx(v, abs=STEP[name])


def test_known_vector_from_the_standard_mapping() -> None:
    # ST 0601: heading 159.9744 deg is stored as 0x71C2; latitude 60.1768... as 0x5595B66D
    pkt = misb0601.encode(0, {"platform_heading_deg": 159.9744, "sensor_lat_deg": 60.176822967})
    assert bytes([5, 2, 0x71, 0xC2]) in pkt
    assert bytes([13, 4, 0x55, 0x95, 0xB6, 0x6D]) in pkt


def test_checksum_catches_corruption() -> None:
    pkt = bytearray(misb0601.encode(123, {"sensor_alt_m": 100.0}))
    pkt[-8] ^= 0x40
    with pytest.raises(TelemetryError, match="checksum mismatch"):
        misb0601.decode(bytes(pkt))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p[:-3], "length says"),
        (lambda p: b"\x00" * 16 + p[16:], "not a UAS Local Set"),
        (lambda p: p[:17], "length says"),
    ],
)
def test_malformed_packets_are_refused_clearly(mutate: object, message: str) -> None:
    pkt = misb0601.encode(123, {"sensor_alt_m": 100.0})
    with pytest.raises(TelemetryError, match=message):
        misb0601.decode(mutate(pkt))  # type: ignore[operator]


SRT = """1
00:00:00,000 --> 00:00:00,033
<font size="28">FrameCnt: 1, DiffTime: 33ms
2023-04-18 16:46:07.123
[iso: 100] [shutter: 1/1000.0] [fnum: 170] [ev: 0] [ct: 5300] [color_md: default] [focal_len: 240] [latitude: 22.5432100] [longitude: 113.9412300] [rel_alt: 60.300 abs_alt: 95.112] </font>

2
00:00:00,033 --> 00:00:00,066
<font size="28">FrameCnt: 2, DiffTime: 33ms
garbage without position
</font>

3
00:00:00,066 --> 00:00:00,100
<font size="28">FrameCnt: 3, DiffTime: 34ms
2023-04-18 16:46:07.190
[latitude : 22.5432200] [longitude : 113.9412400] [rel_alt: 60.400 abs_alt: 95.212] [gb_yaw: -12.5 gb_pitch: -90.0 gb_roll: 0.0] </font>
"""


def test_srt_parses_models_with_and_without_gimbal_and_reports_bad_records() -> None:
    records, problems = dji_srt.parse_srt(SRT)
    assert [r.index for r in records] == [1, 3]
    assert records[0].values["latitude"] == 22.54321 and records[0].values["rel_alt"] == 60.3
    assert "gb_pitch" not in records[0].values and records[1].values["gb_pitch"] == -90.0
    assert records[1].start_s == pytest.approx(0.066) and records[1].frame == 3
    assert records[0].utc is not None and records[0].utc.microsecond == 123000
    assert problems == ["SRT record '2': no latitude/longitude"]


def test_srt_write_then_parse() -> None:
    rec = dji_srt.SrtRecord(
        7,
        1.2,
        1.25,
        7,
        None,
        {
            "latitude": 31.1234567,
            "longitude": 121.7654321,
            "rel_alt": 55.0,
            "abs_alt": 65.5,
            "gb_pitch": -60.0,
        },
    )
    (back,), problems = dji_srt.parse_srt(dji_srt.format_record(rec))
    assert problems == [] and back.values["latitude"] == 31.1234567
    assert back.values["gb_pitch"] == -60.0 and back.start_s == 1.2


def _with_items(extra: bytes) -> bytes:
    """A valid packet (fresh checksum) with raw items inserted before the checksum."""
    body = misb0601._item(2, struct.pack(">Q", 42)) + extra + bytes([1, 2])
    head = misb0601.UAS_LS_KEY + misb0601._ber_length(len(body) + 2) + body
    return head + struct.pack(">H", misb0601.checksum(head))


def test_unknown_tags_and_damaged_items_are_reported_not_fatal() -> None:
    alt = misb0601.TAGS["sensor_alt_m"]
    extra = (
        misb0601._item(120, b"\x01\x02")  # not a tag we know
        + misb0601._item(5, b"\x01")  # heading with 1 byte instead of 2
        + misb0601._item(6, struct.pack(">h", -(2**15)))  # pitch: the reserved 'out of range'
        + misb0601._item(alt.number, struct.pack(">H", alt.to_int(250.0)))
    )
    out = misb0601.decode_packet(_with_items(extra))
    assert out.unknown_tags == [120]
    assert len(out.damaged) == 2 and "tag 5" in out.damaged[0] and "out of range" in out.damaged[1]
    assert out.values["time_us"] == 42
    assert out.values["sensor_alt_m"] == pytest.approx(250.0, abs=0.5)
    assert "platform_heading_deg" not in out.values and "platform_pitch_deg" not in out.values


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_telemetry_error(data: bytes) -> None:
    for candidate in (data, misb0601.UAS_LS_KEY + data):
        with contextlib.suppress(TelemetryError):  # anything else fails the test
            misb0601.decode_packet(candidate)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_truncated_or_corrupted_packets_only_raise_telemetry_error(data: st.DataObject) -> None:
    values = {name: (t.lo + t.hi) / 3 for name, t in misb0601.TAGS.items()}
    pkt = bytearray(misb0601.encode(1_700_000_000_000_000, values, "M30"))
    cut = data.draw(st.integers(0, len(pkt)))
    flips = data.draw(
        st.lists(st.tuples(st.integers(0, len(pkt) - 1), st.integers(1, 255)), max_size=4)
    )
    for pos, mask in flips:
        pkt[pos] ^= mask
    damaged = bytes(pkt[:cut]) if data.draw(st.booleans()) else bytes(pkt)
    try:
        out = misb0601.decode_packet(damaged)
    except TelemetryError:
        return
    # what decodes passed the checksum: then it is the packet sent, or a collision of 1 in 65536
    assert set(out.values) <= {*misb0601.TAGS, "time_us", "platform", "ls_version"}


def test_telemetry_interpolates_between_samples_the_short_way_round() -> None:
    from engine.telemetry.align import TelemetryTrack

    track = TelemetryTrack(max_gap_s=1.0)
    track.add(1.0, {"platform_heading_deg": 350.0, "sensor_lat_deg": 10.0, "platform": "M30"})
    track.add(0.0, {"platform_heading_deg": 340.0, "sensor_lat_deg": 9.0, "platform": "M30"})
    track.add(2.0, {"platform_heading_deg": 10.0, "sensor_lat_deg": 11.0, "platform": "M3E"})
    mid = track.at(1.5)
    assert mid["platform_heading_deg"] == pytest.approx(0.0, abs=1e-9) or mid[
        "platform_heading_deg"
    ] == pytest.approx(360.0)
    assert mid["sensor_lat_deg"] == pytest.approx(10.5)
    assert track.at(1.75)["platform"] == "M3E" and track.at(1.25)["platform"] == "M30"
    assert track.at(0.5)["platform_heading_deg"] == pytest.approx(345.0)
    assert track.at(2.0)["sensor_lat_deg"] == 11.0
    assert track.at(2.9)["sensor_lat_deg"] == 11.0  # within the gap: the last sample
    assert track.at(3.5) == {}  # beyond it: no stale pose


def test_telemetry_is_not_bridged_across_a_long_gap() -> None:
    from engine.telemetry.align import TelemetryTrack

    track = TelemetryTrack(max_gap_s=0.5)
    track.add(0.0, {"sensor_alt_m": 100.0})
    track.add(10.0, {"sensor_alt_m": 200.0})
    assert track.at(0.3) == {"sensor_alt_m": 100.0}
    assert track.at(5.0) == {}
    assert track.at(9.8) == {"sensor_alt_m": 200.0}
