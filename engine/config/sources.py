"""The sources' section: recorded files, live RTSP cameras and drone feeds (a discriminated
union on `type`), with what every source can have (motion gating, tiling, calibration)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from engine.config.base import ConfigModel, Id
from engine.config.deploy import PlacementConfig
from engine.config.detector import MotionConfig, TilingConfig
from engine.config.scene import CalibrationConfig
from engine.config.values import check_port
from engine.redact import redact

__all__ = [
    "RTSP_PATTERN",
    "DroneSourceConfig",
    "FileSourceConfig",
    "RtspSourceConfig",
    "SourceConfig",
]

RTSP_PATTERN = r"^rtsps?://[^\s]+$"


class _SourceOptions(ConfigModel):
    """What every source can have: motion gating and tiling."""

    cluster: PlacementConfig | None = Field(
        None, description="Placement on a cluster (ignored on a single box)."
    )

    motion: MotionConfig | None = Field(None, description="Skip inference on still scenes.")
    tiling: TilingConfig | None = Field(None, description="Detect on tiles (small objects).")
    calibration: CalibrationConfig | None = Field(
        None, description="Fixed cameras: pixels to ground (alerts then carry lat/lon)."
    )
    clock_offset_s: float = Field(
        0.0,
        ge=-86400,
        le=86400,
        description="Added to this source's stream time to put it on the site's time base "
        "(fusion matches what sensors see at the same moment).",
    )
    moving: bool | None = Field(
        None,
        description="The camera moves (a drone): rules follow the scene by estimating the image "
        "shift between frames (default: true for drone sources).",
    )


class FileSourceConfig(_SourceOptions):
    """Recorded footage: MP4, MPEG-TS, MKV, GIF, ... anything FFmpeg demuxes."""

    type: Literal["file"] = Field("file", description="A recorded file.")
    id: Id
    path: Path = Field(description="Video file; relative paths are relative to the config file.")
    rate: Literal["native", "max"] = Field(
        "native",
        description="'native' replays at the stream's own pace (like a camera); 'max' as fast as "
        "the engine can take frames.",
    )
    loop: bool = Field(False, description="Start again at the end; timestamps keep counting up.")
    max_frames: int | None = Field(
        None, ge=1, le=10**12, description="Stop after this many frames (all loops counted)."
    )
    buffer_frames: int = Field(
        4, ge=1, le=256, description="Frames decoded ahead and held for the engine."
    )
    when_behind: Literal["auto", "drop_oldest", "wait"] = Field(
        "auto",
        description="When the engine is slower than the file: drop the oldest held frame (like "
        "a live camera; latency stays bounded) or wait (nothing lost). auto: drop_oldest at "
        "native rate, wait at max rate.",
    )


class _LiveOptions(_SourceOptions):
    """How a live feed is read: timeouts, reconnects, and the latest-frame buffer."""

    transport: Literal["tcp", "udp"] = Field(
        "tcp", description="RTSP transport: tcp (default; survives lossy links) or udp."
    )
    open_timeout_s: float = Field(5.0, gt=0, le=120, description="Give up one connect after this.")
    read_timeout_s: float = Field(
        3.0, gt=0, le=120, description="No packets for this long: the source is stalled."
    )
    buffer_frames: int = Field(
        2, ge=1, le=64, description="Frames held for the engine; when full, the oldest is dropped."
    )
    backoff_initial_s: float = Field(
        0.5, gt=0, le=60, description="First reconnect delay (then doubling, with jitter)."
    )
    backoff_max_s: float = Field(30.0, gt=0, le=3600, description="Longest reconnect delay.")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """repr() and str() show URLs without their credentials."""
        for key, value in super().__repr_args__():
            yield key, redact(value) if isinstance(value, str) else value


class RtspSourceConfig(_LiveOptions):
    """A live RTSP camera. Reconnects forever; credentials never appear in logs or messages."""

    type: Literal["rtsp"] = Field(description="A live RTSP camera.")
    id: Id
    url: str = Field(
        pattern=RTSP_PATTERN, description="rtsp:// or rtsps:// URL, user:password@ allowed."
    )

    _port = field_validator("url")(check_port)


class DroneSourceConfig(_LiveOptions):
    """A drone feed: MPEG-TS with MISB ST 0601 KLV telemetry, or video with a DJI SRT sidecar.

    `url` is a recorded file (.ts, .mp4, ...), `udp://host:port` or `rtsp://...`; live feeds
    reconnect forever, a file ends at its end.
    """

    type: Literal["drone"] = Field(description="A drone feed with telemetry.")
    id: Id
    url: str = Field(min_length=1, description="File path, udp://host:port or rtsp:// URL.")
    srt: Path | None = Field(None, description="DJI-style SRT sidecar of a recorded file.")
    rate: Literal["native", "max"] = Field(
        "native", description="For a recorded file: replay at its own pace, or as fast as read."
    )
    telemetry_max_gap_s: float = Field(
        1.0, gt=0, le=60, description="Frames further than this from any telemetry get none."
    )

    _port = field_validator("url")(check_port)

    @property
    def is_file(self) -> bool:
        """True when `url` names a recorded file rather than a live feed."""
        return "://" not in self.url


SourceConfig = Annotated[
    FileSourceConfig | RtspSourceConfig | DroneSourceConfig, Field(discriminator="type")
]
