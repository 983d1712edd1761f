"""MISB ST 0601 (UAS Datalink Local Set) KLV: encode and decode the pose tags a drone feed carries.

A packet is the 16-byte Universal Key, a BER length, then tag-length-value items, closing with the
checksum (tag 1): a 16-bit running sum over every byte from the key to the checksum's own length.
Values are fixed-point integers mapped linearly onto each tag's range, as the standard defines.
Decoding checks the key, every length and the checksum, and raises `TelemetryError` saying what
is wrong, so one malformed packet can be reported and skipped without losing the stream. Inside
a sound packet, unknown tags and damaged items (wrong size, the reserved 'out of range' value)
are reported beside the values rather than failing it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from engine.errors import TelemetryError

__all__ = [
    "TAGS",
    "UAS_LS_KEY",
    "KlvPacket",
    "Tag",
    "checksum",
    "decode",
    "decode_packet",
    "encode",
]

UAS_LS_KEY = bytes.fromhex("060E2B34020B01010E01030101000000")
LS_VERSION = 17


@dataclass(frozen=True, slots=True)
class Tag:
    """How one tag's value is stored: integer format, and the real range it maps onto."""

    number: int
    name: str
    fmt: str  # struct format of the stored integer, big-endian
    lo: float
    hi: float

    @property
    def signed(self) -> bool:
        return self.fmt.islower()

    def to_int(self, value: float) -> int:
        """Real value -> stored integer (signed ranges are symmetric about zero)."""
        bits = 8 * struct.calcsize(self.fmt)
        if self.signed:
            top = 2 ** (bits - 1) - 1
            return round(value * top / self.hi)
        top = 2**bits - 1
        return round((value - self.lo) * top / (self.hi - self.lo))

    def to_real(self, stored: int) -> float:
        """Stored integer -> real value."""
        bits = 8 * struct.calcsize(self.fmt)
        if self.signed:
            return stored * self.hi / (2 ** (bits - 1) - 1)
        return self.lo + stored * (self.hi - self.lo) / (2**bits - 1)


def _corner_tags() -> list[Tag]:
    """Corners 1-4 as offsets from the frame centre (tags 26-33, small footprints) and as full
    coordinates (tags 82-89, any footprint)."""
    tags = []
    for k in range(8):
        corner, axis = k // 2 + 1, ("lat", "lon")[k % 2]
        span = 90.0 if axis == "lat" else 180.0
        tags.append(Tag(26 + k, f"offset_corner_{corner}_{axis}_deg", ">h", -0.075, 0.075))
        tags.append(Tag(82 + k, f"corner_{corner}_{axis}_deg", ">i", -span, span))
    return tags


# The tags Lookout writes and reads (ST 0601.17 numbering and mappings).
TAGS: dict[str, Tag] = {
    t.name: t
    for t in (
        Tag(5, "platform_heading_deg", ">H", 0.0, 360.0),
        Tag(6, "platform_pitch_deg", ">h", -20.0, 20.0),
        Tag(7, "platform_roll_deg", ">h", -50.0, 50.0),
        Tag(13, "sensor_lat_deg", ">i", -90.0, 90.0),
        Tag(14, "sensor_lon_deg", ">i", -180.0, 180.0),
        Tag(15, "sensor_alt_m", ">H", -900.0, 19000.0),
        Tag(16, "hfov_deg", ">H", 0.0, 180.0),
        Tag(17, "vfov_deg", ">H", 0.0, 180.0),
        Tag(18, "sensor_rel_azimuth_deg", ">I", 0.0, 360.0),
        Tag(19, "sensor_rel_elevation_deg", ">i", -180.0, 180.0),
        Tag(20, "sensor_rel_roll_deg", ">I", 0.0, 360.0),
        Tag(23, "frame_center_lat_deg", ">i", -90.0, 90.0),
        Tag(24, "frame_center_lon_deg", ">i", -180.0, 180.0),
        Tag(21, "slant_range_m", ">I", 0.0, 5_000_000.0),
        Tag(25, "frame_center_elevation_m", ">H", -900.0, 19000.0),
        *_corner_tags(),
    )
}
TAGS_BY_NUMBER = {t.number: t for t in TAGS.values()}
TIMESTAMP_TAG = 2
PLATFORM_DESIGNATION_TAG = 10
CHECKSUM_TAG = 1
VERSION_TAG = 65


def checksum(data: bytes) -> int:
    """ST 0601 running sum: bytes alternately in the high and low half of a 16-bit word."""
    total = 0
    for i, b in enumerate(data):
        total += b << (8 * ((i + 1) % 2))
    return total & 0xFFFF


def _ber_length(n: int) -> bytes:
    if n < 128:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _item(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _ber_length(len(value)) + value


def encode(time_us: int, values: dict[str, float], platform: str = "") -> bytes:
    """One UAS Local Set packet.

    Args:
        time_us: Precision Time Stamp, microseconds since 1970-01-01 UTC.
        values: real values by the names in `TAGS` (missing ones are left out).
        platform: Platform Designation (tag 10), e.g. the drone model.
    """
    body = _item(TIMESTAMP_TAG, struct.pack(">Q", time_us))
    if platform:
        body += _item(PLATFORM_DESIGNATION_TAG, platform.encode()[:127])
    for name, value in values.items():
        tag = TAGS[name]
        stored = tag.to_int(value)
        bits = 8 * struct.calcsize(tag.fmt)
        if tag.signed:
            stored = max(-(2 ** (bits - 1)) + 1, min(2 ** (bits - 1) - 1, stored))
        else:
            stored = max(0, min(2**bits - 1, stored))
        body += _item(tag.number, struct.pack(tag.fmt, stored))
    body += _item(VERSION_TAG, bytes([LS_VERSION]))
    body += bytes([CHECKSUM_TAG, 2])  # the checksum covers its own tag and length
    packet = UAS_LS_KEY + _ber_length(len(body) + 2) + body
    return packet + struct.pack(">H", checksum(packet))


def _read_ber(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TelemetryError(f"KLV: length expected at byte {pos}, packet ends")
    first = data[pos]
    if first < 128:
        return first, pos + 1
    n = first & 0x7F
    if n == 0 or pos + 1 + n > len(data):
        raise TelemetryError(f"KLV: bad BER length at byte {pos}")
    return int.from_bytes(data[pos + 1 : pos + 1 + n], "big"), pos + 1 + n


@dataclass(slots=True)
class KlvPacket:
    """A decoded packet: values by name (`time_us` is the timestamp) and what was wrong in it."""

    values: dict[str, float | int | str]
    unknown_tags: list[int] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)


def decode_packet(packet: bytes) -> KlvPacket:
    """Decode one UAS Local Set packet, reporting unknown tags and damaged items.

    Raises:
        TelemetryError: wrong key, truncated packet, bad lengths, checksum missing or mismatched,
            or no timestamp: the packet as a whole cannot be trusted.
    """
    if not packet.startswith(UAS_LS_KEY):
        raise TelemetryError(f"KLV: not a UAS Local Set (key {packet[:16].hex()})")
    length, pos = _read_ber(packet, len(UAS_LS_KEY))
    end = pos + length
    if end != len(packet):
        raise TelemetryError(f"KLV: packet holds {len(packet)} bytes, its length says {end}")
    out = KlvPacket({})
    checked = False
    while pos < end:
        tag = packet[pos]
        size, vpos = _read_ber(packet, pos + 1)
        value = packet[vpos : vpos + size]
        if vpos + size > end:
            raise TelemetryError(f"KLV: tag {tag} runs past the end of the packet")
        if tag == CHECKSUM_TAG:
            want = checksum(packet[:vpos])
            got = struct.unpack(">H", value)[0] if size == 2 else -1
            if got != want or vpos + size != end:
                raise TelemetryError(
                    f"KLV: checksum mismatch (packet {got:#06x}, computed {want:#06x})"
                )
            checked = True
        elif tag == TIMESTAMP_TAG and size == 8:
            out.values["time_us"] = struct.unpack(">Q", value)[0]
        elif tag == PLATFORM_DESIGNATION_TAG:
            out.values["platform"] = value.decode(errors="replace")
        elif tag == VERSION_TAG and size == 1:
            out.values["ls_version"] = value[0]
        elif tag in TAGS_BY_NUMBER:
            _decode_item(TAGS_BY_NUMBER[tag], value, out)
        else:
            out.unknown_tags.append(tag)
        pos = vpos + size
    if not checked:
        raise TelemetryError("KLV: packet has no checksum (tag 1)")
    if "time_us" not in out.values:
        raise TelemetryError("KLV: packet has no Precision Time Stamp (tag 2)")
    return out


def _decode_item(spec: Tag, value: bytes, out: KlvPacket) -> None:
    if len(value) != struct.calcsize(spec.fmt):
        out.damaged.append(f"tag {spec.number} ({spec.name}): {len(value)} bytes")
        return
    stored = struct.unpack(spec.fmt, value)[0]
    if spec.signed and stored == -(2 ** (8 * len(value) - 1)):
        out.damaged.append(f"tag {spec.number} ({spec.name}): reserved 'out of range' value")
        return
    out.values[spec.name] = spec.to_real(stored)


def decode(packet: bytes) -> dict[str, float | int | str]:
    """Decode one packet into {name: value}; `time_us` holds the timestamp. Unknown tags and
    damaged items are left out (see `decode_packet` to have them reported).

    Raises:
        TelemetryError: as `decode_packet`.
    """
    return decode_packet(packet).values
