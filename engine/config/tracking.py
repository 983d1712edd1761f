"""The tracker's section: ByteTrack's thresholds and timings, per source."""

from __future__ import annotations

from pydantic import Field

from engine.config.base import ConfigModel

__all__ = ["TrackingConfig"]


class TrackingConfig(ConfigModel):
    """Multi-object tracking (ByteTrack) per source; its thresholds and timings."""

    enabled: bool = Field(True, description="Track objects (rules then see identities).")
    high_score: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Detections this sure are matched first (the detectors' default threshold; "
        "ByteTrack's 0.5 would starve this stage); weaker ones only rescue tracks still "
        "unmatched.",
    )
    new_track_score: float = Field(
        0.6,
        gt=0,
        le=1,
        description="A detection this sure may start a track (as in ByteTrack): a noisy "
        "detector then makes far fewer false tracks.",
    )
    lost_s: float = Field(1.0, gt=0, le=60, description="A moving track unseen this long ends.")
    stationary_s: float = Field(
        2.0, gt=0, le=600, description="Still this long (its box barely moved): stationary."
    )
    stationary_lost_s: float = Field(
        30.0, gt=0, le=3600, description="A stationary track survives gaps this long."
    )
    class_groups: list[list[str]] = Field(
        default_factory=lambda: [["car", "truck", "bus", "van"]],
        description="Classes the detector confuses: a track keeps its identity across them "
        "(a truck seen as a car from above) and takes the latest class.",
    )
