"""The tracker's section: ByteTrack's thresholds and timings, per source."""

from __future__ import annotations

from pydantic import Field

from engine.config.base import ConfigModel

__all__ = ["TrackingConfig"]


class TrackingConfig(ConfigModel):
    """Multi-object tracking (ByteTrack) per source; its thresholds and timings."""

    enabled: bool = Field(True, description="Track objects (rules then see identities).")
    high_score: float = Field(0.25, gt=0, le=1, description="First-stage detections.")
    new_track_score: float = Field(
        0.6, gt=0, le=1, description="A detection this sure may start a track."
    )
    lost_s: float = Field(1.0, gt=0, le=60, description="A moving track unseen this long ends.")
    stationary_s: float = Field(2.0, gt=0, le=600, description="Still this long: stationary.")
    stationary_lost_s: float = Field(
        30.0, gt=0, le=3600, description="A stationary track survives gaps this long."
    )
    class_groups: list[list[str]] = Field(
        default_factory=lambda: [["car", "truck", "bus", "van"]],
        description="Classes the detector confuses: a track keeps its identity across them.",
    )
