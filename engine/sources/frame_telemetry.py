"""A drone feed's telemetry, matched to its frames.

Telemetry comes as MISB ST 0601 KLV packets in a data stream of the same MPEG-TS, or as a DJI
SRT sidecar next to a recorded file. Each frame gets the telemetry at its timestamp, interpolated
between samples. A frame of a feed with a KLV stream waits (at most TELEMETRY_WAIT_S of stream
time) for the first sample at or after it, so that it is not handed over with stale telemetry.
Damaged packets are counted and skipped, never fatal.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from engine.errors import TelemetryError
from engine.telemetry import dji_srt, misb0601
from engine.telemetry.align import TelemetryTrack

__all__ = ["TELEMETRY_WAIT_S", "Captured", "FrameTelemetry", "TelemetryCounts"]

log = logging.getLogger(__name__)

TELEMETRY_WAIT_S = 0.5  # a frame waits this much stream time for its KLV sample


@dataclass(slots=True)
class Captured:
    """A decoded frame on its way to the source's buffer."""

    pts_s: float  # stream time within the session, from its first frame
    stream_s: float  # the stream's own timestamp (what KLV packets are stamped with)
    capture_ns: int
    image: npt.NDArray[np.uint8]
    telemetry: dict[str, Any]


class TelemetryCounts(Protocol):
    """The source's counters the telemetry adds to."""

    telemetry_packets: int
    telemetry_errors: int
    telemetry_unknown_tags: int
    telemetry_damaged_items: int


class FrameTelemetry:
    """One connection's telemetry: frames go in, and come out with their telemetry.

    Args:
        source_id: for log lines.
        counts: the source's counters.
        klv: the feed has a KLV stream (frames wait for their sample), or None when the source
            takes no KLV (not a drone).
        max_gap_s: frames further than this from any sample get none.
        srt: a DJI SRT sidecar, or None.
    """

    def __init__(
        self,
        source_id: str,
        counts: TelemetryCounts,
        klv: bool | None,
        max_gap_s: float = 1.0,
        srt: Path | None = None,
    ) -> None:
        self.id = source_id
        self._counts = counts
        self._wait_klv = bool(klv)
        self._track = TelemetryTrack(max_gap_s) if klv is not None else None
        self._sidecar = self._read_sidecar(srt, max_gap_s) if srt is not None else None
        self._pending: deque[Captured] = deque()

    def add_klv(self, t: float, data: bytes) -> None:
        """A KLV packet stamped at stream time `t` (skipped and counted when damaged)."""
        track = self._track
        if track is None:
            return
        counts = self._counts
        counts.telemetry_packets += 1
        try:
            packet = misb0601.decode_packet(data)
        except TelemetryError as exc:
            counts.telemetry_errors += 1
            if counts.telemetry_errors <= 5 or counts.telemetry_errors % 100 == 0:
                log.warning(
                    "source %s: telemetry packet skipped (%d so far): %s",
                    self.id,
                    counts.telemetry_errors,
                    exc,
                )
            return
        counts.telemetry_unknown_tags += len(packet.unknown_tags)
        counts.telemetry_damaged_items += len(packet.damaged)
        track.add(t, packet.values)

    def add_frame(self, frame: Captured) -> None:
        """A decoded frame, to be handed over once its telemetry is known."""
        self._pending.append(frame)

    def ready(self, final: bool = False) -> Iterator[Captured]:
        """The frames whose telemetry is known (or that waited long enough; all when `final`),
        in order, with their telemetry."""
        pending, track, sidecar = self._pending, self._track, self._sidecar
        while pending:
            head = pending[0]
            if self._wait_klv and not final and track is not None:
                newest = pending[-1].stream_s
                latest = track.latest_s
                if (
                    latest is None or latest < head.stream_s
                ) and newest - head.stream_s < TELEMETRY_WAIT_S:
                    return
            pending.popleft()
            if sidecar is not None:
                head.telemetry.update(sidecar.at(head.pts_s))
            if track is not None:
                head.telemetry.update(track.at(head.stream_s))
            yield head

    def _read_sidecar(self, srt: Path, max_gap_s: float) -> TelemetryTrack:
        """The SRT sidecar's records by video time."""
        track = TelemetryTrack(max_gap_s=max_gap_s, keep_s=float("inf"))
        records, problems = dji_srt.parse_srt(srt.read_text(errors="replace"))
        for p in problems:
            log.warning("source %s: SRT %s: %s", self.id, srt.name, p)
        self._counts.telemetry_errors += len(problems)
        for rec in records:
            values: dict[str, Any] = dict(rec.values)
            if rec.utc is not None:
                values["utc"] = rec.utc.isoformat()
            track.add(rec.start_s, values)
        return track
