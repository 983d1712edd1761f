"""DJI-style `.SRT` telemetry sidecars: one subtitle record per video frame.

A record looks like (fields vary by drone model; gimbal angles are often missing):

    12
    00:00:00,396 --> 00:00:00,429
    <font size="28">FrameCnt: 12, DiffTime: 33ms
    2026-11-29 10:00:00.396
    [iso: 100] [shutter: 1/1000.0] [fnum: 2.8] [ev: 0] [focal_len: 24.00] [latitude: 31.230001]
    [longitude: 121.470002] [rel_alt: 60.000 abs_alt: 72.000] [gb_yaw: 0.0 gb_pitch: -90.0
    gb_roll: 0.0] </font>

The parser reads every `key: value` inside brackets, whatever the model, and reports a record it
cannot read with its number instead of failing the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from engine.errors import TelemetryError

__all__ = ["SrtRecord", "format_record", "parse_srt"]

_TIME = re.compile(r"(\d+):(\d+):(\d+)[,.](\d+)\s*-->\s*(\d+):(\d+):(\d+)[,.](\d+)")
_PAIR = re.compile(r"([A-Za-z_]+)\s*:\s*(-?[\d./]+)")
_FRAMECNT = re.compile(r"FrameCnt\s*:\s*(\d+)")
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)")


@dataclass(slots=True)
class SrtRecord:
    """One frame's telemetry.

    Attributes:
        index: subtitle number (1-based).
        start_s, end_s: when the record is shown, seconds from the video's start.
        frame: FrameCnt, if present.
        utc: wall-clock time of the frame, if present.
        values: every numeric `key: value` (latitude, longitude, rel_alt, abs_alt, gb_yaw, ...).
    """

    index: int
    start_s: float
    end_s: float
    frame: int | None = None
    utc: datetime | None = None
    values: dict[str, float] = field(default_factory=dict)


def _stamp(s: float) -> str:
    ms = round(s * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def format_record(rec: SrtRecord) -> str:
    """The record as text (DJI layout), ending with a blank line."""
    v = rec.values
    utc = (rec.utc or datetime.fromtimestamp(0, UTC)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    diff = round((rec.end_s - rec.start_s) * 1000)
    fields = (
        f"[iso: 100] [shutter: 1/1000.0] [fnum: 2.8] [ev: 0] "
        f"[focal_len: {v.get('focal_len', 24.0):.2f}] "
        f"[latitude: {v['latitude']:.7f}] [longitude: {v['longitude']:.7f}] "
        f"[rel_alt: {v['rel_alt']:.3f} abs_alt: {v['abs_alt']:.3f}]"
    )
    if "gb_pitch" in v:
        fields += (
            f" [gb_yaw: {v.get('gb_yaw', 0.0):.2f} gb_pitch: {v['gb_pitch']:.2f} "
            f"gb_roll: {v.get('gb_roll', 0.0):.2f}]"
        )
    if "heading" in v:
        fields += f" [heading: {v['heading']:.2f}]"
    return (
        f"{rec.index}\n{_stamp(rec.start_s)} --> {_stamp(rec.end_s)}\n"
        f'<font size="28">FrameCnt: {rec.frame or rec.index}, DiffTime: {diff}ms\n'
        f"{utc}\n{fields} </font>\n\n"
    )


def parse_srt(text: str) -> tuple[list[SrtRecord], list[str]]:
    """All records of an SRT file, and one message per block that could not be read."""
    records: list[SrtRecord] = []
    problems: list[str] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.strip().splitlines()
        if not lines:
            continue
        try:
            records.append(_parse_block(lines))
        except TelemetryError as exc:
            problems.append(f"SRT record {lines[0].strip()[:20]!r}: {exc}")
    return records, problems


def _parse_block(lines: list[str]) -> SrtRecord:
    if not lines[0].strip().isdigit():
        raise TelemetryError("expected a record number on the first line")
    m = _TIME.search(lines[1]) if len(lines) > 1 else None
    if m is None:
        raise TelemetryError("expected 'HH:MM:SS,mmm --> HH:MM:SS,mmm' on the second line")
    g = [int(x) for x in m.groups()]
    start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
    end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
    body = " ".join(lines[2:])
    rec = SrtRecord(int(lines[0].strip()), start, end)
    if fc := _FRAMECNT.search(body):
        rec.frame = int(fc.group(1))
    if dt := _DATETIME.search(body):
        rec.utc = datetime.fromisoformat(dt.group(1)).replace(tzinfo=UTC)
    for bracket in re.findall(r"\[([^\]]*)\]", body):
        for key, value in _PAIR.findall(bracket):
            if "/" in value:
                continue  # shutter 1/1000: not a number we use
            try:
                rec.values[key] = float(value)
            except ValueError:
                raise TelemetryError(f"{key}: expected a number, got {value!r}") from None
    if "latitude" not in rec.values or "longitude" not in rec.values:
        raise TelemetryError("no latitude/longitude")
    return rec
