"""Configuration of the event rules: one validated model per rule type (discriminated on `type`).

Distances in image space are given relative to object size (box heights) wherever they can be,
so one setting works near and far from the camera; times are stream seconds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.config.base import ConfigModel, Id
from engine.config.values import Point

__all__ = [
    "AbandonedObjectRuleConfig",
    "CrowdRuleConfig",
    "DumpingRuleConfig",
    "IntrusionRuleConfig",
    "LineCrossingRuleConfig",
    "LoiteringRuleConfig",
    "RuleConfig",
    "ZonePresenceRuleConfig",
]

Severity = Annotated[
    Literal["info", "warning", "critical"],
    Field(description="How urgent the rule's alerts are: info, warning or critical."),
]
Anchor = Annotated[
    Literal["bottom_center", "center"],
    Field(description="Point of each box the rule tests: the feet, or the box centre."),
]
Classes = Annotated[list[str], Field(description="Class names that count (empty: every class).")]


class _Rule(ConfigModel):
    """What every rule has: its id, the least score it looks at, and its quiet time."""

    id: Id
    min_score: float = Field(0.0, ge=0.0, le=1.0, description="Ignore objects scored below this.")
    cooldown_s: float = Field(
        0.0,
        ge=0,
        le=86400,
        description="After an incident ends, the rule stays quiet this long (de-duplication).",
    )


class ZonePresenceRuleConfig(_Rule):
    """Objects of given classes inside a zone: one event from their arrival to their departure."""

    type: Literal["zone_presence"] = Field(
        "zone_presence", description="Objects of given classes in a zone."
    )
    zone: Id = Field(description="The zone watched.")
    classes: Classes = Field(default_factory=list)
    anchor: Anchor = Field(
        "bottom_center",
        description="Point of each box tested against the zone: the feet, or the box centre.",
    )
    min_frames: int = Field(
        1, ge=1, le=1000, description="Consecutive frames with objects before the event starts."
    )
    clear_after_s: float = Field(
        2.0, ge=0.0, le=3600.0, description="Seconds with no object before the event ends."
    )
    update_every_s: float = Field(
        0.0, ge=0.0, le=86400.0, description="Seconds between 'update' alerts (0: no updates)."
    )
    severity: Severity = "warning"


class IntrusionRuleConfig(ZonePresenceRuleConfig):
    """Anyone (or any vehicle) inside a closed area: zone presence reported as `intrusion`,
    with the occupancy count, confirmed over a few frames."""

    type: Literal["intrusion"] = Field(  # type: ignore[assignment]
        "intrusion", description="Anyone in a closed area."
    )
    classes: Classes = Field(default_factory=lambda: ["person"])
    min_frames: int = Field(
        3, ge=1, le=1000, description="Consecutive frames with objects before the event starts."
    )
    severity: Severity = "critical"


class LineCrossingRuleConfig(_Rule):
    """Objects crossing a line. Crossings in a burst are one incident (start, an update per
    crossing, end after a quiet spell); each carries the direction and the running counts."""

    type: Literal["line_crossing"] = Field("line_crossing", description="Objects crossing a line.")
    source: Id = Field(description="The source whose image the line is drawn on.")
    line: tuple[Point, Point] = Field(description="From A to B, pixels: [[xa, ya], [xb, yb]].")
    direction: Literal["both", "in", "out"] = Field(
        "both",
        description="'in' is from the right of A->B to its left (as seen in the image), 'out' "
        "the reverse.",
    )
    classes: Classes = Field(default_factory=lambda: ["person"])
    anchor: Anchor = "bottom_center"
    hysteresis: float = Field(
        0.15,
        ge=0,
        le=5,
        description="An object must get this far past the line (in its box heights) for the "
        "crossing to count, so a box that flickers on the line is not many crossings.",
    )
    clear_after_s: float = Field(5.0, ge=0, le=3600, description="Quiet this long: incident ends.")
    severity: Severity = "info"

    @model_validator(mode="after")
    def _has_length(self) -> LineCrossingRuleConfig:
        (xa, ya), (xb, yb) = self.line
        if abs(xa - xb) + abs(ya - yb) < 1:
            raise ValueError(f"line: expected two distinct points, got {list(self.line)}")
        return self


class LoiteringRuleConfig(_Rule):
    """Someone staying in a zone longer than `dwell_s`, one incident per person; brief exits and
    identity switches (a new track where a lost or unseen one was) do not restart the clock.
    People standing in a gathered crowd are not loiterers unless they stay after it has gone."""

    type: Literal["loitering"] = Field("loitering", description="Someone staying in a zone.")
    zone: Id = Field(description="The zone watched.")
    classes: Classes = Field(default_factory=lambda: ["person"])
    anchor: Anchor = "bottom_center"
    dwell_s: float = Field(30.0, gt=0, le=86400, description="Time in the zone that is loitering.")
    grace_s: float = Field(
        4.0,
        ge=0,
        le=600,
        description="Seen outside the zone for less than this (a step out): still staying.",
    )
    hidden_s: float = Field(
        10.0,
        ge=0,
        le=600,
        description="Not seen at all for less than this (hidden behind others, missed by the "
        "detector), having not been seen leaving: still staying.",
    )
    reid_s: float = Field(
        3.0, ge=0, le=600, description="A new track this soon after one was lost..."
    )
    reid_radius: float = Field(
        1.5, ge=0, le=20, description="... and this close (box heights) continues its dwell."
    )
    walk_speed: float = Field(
        0.6,
        gt=0,
        le=20,
        description="Someone last seen moving faster than this (box heights per second, over "
        "their last 2 s) was walking through: a new track where they were is someone else "
        "(used where the source does not map to the ground; see walk_speed_mps). Also how far "
        "a lingering person may have moved, for an identity switch to continue their stay.",
    )
    walk_speed_mps: float = Field(
        0.9,
        gt=0,
        le=20,
        description="The same in metres per second on the ground, where the source maps to it "
        "(a calibrated camera, a drone with telemetry): box heights per second read people "
        "walking towards the camera as slow.",
    )
    min_seen: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Only someone seen for this share of their stay loiters (gaps over 1 s are "
        "not counted): a stay pieced together from a few stray detections is no person.",
    )
    min_movement: float = Field(
        0.0,
        ge=0,
        le=100,
        description="Only someone who moved about this much (box heights, extent of the feet "
        "positions over the stay) loiters, and a box that moved less than half of it over its "
        "last 10 s is taken for a fixed structure (not reported, not continued by another "
        "track): a box that stands still is more often a false detection than a person (0: "
        "anyone).",
    )
    clear_after_s: float = Field(
        3.0,
        ge=0,
        le=3600,
        description="Not loitering this long: that person's incident ends (and a new track "
        "where they were this soon after is still them).",
    )
    crowd_size: int = Field(
        6,
        ge=0,
        le=1000,
        description="Someone among this many people standing together (themselves included) "
        "is part of a crowd: their clock restarts while it is there (0: never).",
    )
    crowd_radius: float = Field(
        2.0, gt=0, le=50, description="... within this many of their box heights of them ..."
    )
    crowd_standing_s: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="... each in the zone this long (people walking through are no crowd).",
    )
    update_every_s: float = Field(
        0.0, ge=0, le=86400, description="Seconds between 'update' alerts (0: no updates)."
    )
    severity: Severity = "warning"


class CrowdRuleConfig(_Rule):
    """People in a zone: gathering (a crowd forming fast) and dispersal (a crowd running apart).

    Density is people per square metre when `area_m2` is given (until ground mapping gives it),
    else a count. Running speed is in body heights per second (1 ~ 1.7 m/s, a brisk walk; people
    running are at 2-4), so it holds near and far from a fixed camera.
    """

    type: Literal["crowd"] = Field("crowd", description="Crowds gathering and dispersing.")
    zone: Id = Field(description="The zone watched.")
    classes: Classes = Field(default_factory=lambda: ["person"])
    anchor: Anchor = "bottom_center"
    min_count: int = Field(
        8,
        ge=2,
        le=10000,
        description="People close together that are a crowd: the most neighbours any person in "
        "the zone has within `cluster_radius`, that person included.",
    )
    cluster_radius: float = Field(
        3.0, gt=0, le=100, description="Neighbourhood of a crowd, in body heights (~5 m at 3)."
    )
    depth_factor: float = Field(
        2.0,
        ge=1,
        le=10,
        description="Vertical image distances count this many times (ground seen obliquely is "
        "foreshortened in depth: 2 suits cameras pitched ~30 degrees down, 1 a drone looking "
        "straight down). Ground mapping will replace it.",
    )
    area_m2: float | None = Field(
        None, gt=0, le=1e8, description="Zone area, for density in people/m2."
    )
    min_density: float | None = Field(
        None, gt=0, le=10, description="Also require this density (needs area_m2)."
    )
    gather_rise: int = Field(
        5, ge=1, le=10000, description="Gathering: the count rose by this many ..."
    )
    gather_window_s: float = Field(20.0, gt=0, le=3600, description="... within this window.")
    forecast_s: float = Field(
        5.0,
        ge=0,
        le=60,
        description="Also a gathering: people whose current velocities bring at least "
        "`min_count` of them together within this many seconds, `gather_rise` more than now "
        "(a crowd forming is reported while it forms; 0: off).",
    )
    disperse: bool = Field(True, description="Report a crowd running apart.")
    run_speed: float = Field(
        1.6, gt=0, le=50, description="Running: speed in body heights per second."
    )
    min_runners: int = Field(4, ge=1, le=10000, description="Dispersal: at least this many run...")
    outward_fraction: float = Field(
        0.6, ge=0, le=1, description="... and this share of the runners head away from the crowd."
    )
    memory_s: float = Field(
        15.0, gt=0, le=3600, description="A dispersal needs a crowd seen within this time."
    )
    clear_after_s: float = Field(
        5.0, ge=0, le=3600, description="Below min_count (or calm) this long: the incident ends."
    )
    severity: Severity = "warning"

    @model_validator(mode="after")
    def _density_needs_area(self) -> CrowdRuleConfig:
        if self.min_density is not None and self.area_m2 is None:
            raise ValueError("min_density: expected area_m2 too (density is people per m2)")
        return self


class DumpingRuleConfig(_Rule):
    """Illegal dumping in stages of one incident: a vehicle drives in and stops in the zone
    (`suspected` once it has stood `suspect_after_s`), a new static object appears where it
    stood (`confirmed`: a debris detection seen for `confirm_s` beside it, or, once the vehicle
    has left, a new static region of the background model on fixed cameras), the vehicle drives
    off (`vehicle_left`), and the incident ends: `cleared` when the vehicle left and no pile was
    found within `clear_after_s` (a delivery stop, not a dumping), else `closed` once the vehicle
    has gone for `clear_after_s` or the pile has not been seen for that long. A vehicle never
    seen moving (parked, or a false detection) never stops.
    """

    type: Literal["dumping"] = Field("dumping", description="Illegal dumping from a vehicle.")
    zone: Id = Field(description="The no-dumping area.")
    vehicle_classes: list[str] = Field(
        default_factory=lambda: ["truck", "car"], description="Classes that bring the load."
    )
    debris_classes: list[str] = Field(
        default_factory=lambda: ["debris"], description="Classes of what is dumped."
    )
    stop_s: float = Field(2.0, gt=0, le=600, description="A vehicle this still is stopped ...")
    stop_speed: float = Field(
        0.08, gt=0, le=10, description="... moving less than this (its box diagonals per second)."
    )
    near: float = Field(
        1.0,
        ge=0,
        le=10,
        description="The pile lies within this many vehicle sizes of where the vehicle stood.",
    )
    confirm_s: float = Field(1.0, ge=0, le=600, description="A pile seen this long is real.")
    suspect_after_s: float | None = Field(
        2.0,
        ge=0,
        le=3600,
        description="A vehicle stopped this long (from the moment it stopped) is a suspected "
        "dumping: a warning while it is still there. None: no suspected stage, the incident "
        "starts when a pile is confirmed.",
    )
    suspect_severity: Severity = Field("warning", description="Severity of the suspected stage.")
    revisit_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="Moving sensors (a patrolling drone): a pile found where the vehicle stood "
        "within this long after it left still confirms the incident (the drone sees the place "
        "again on its next pass); fixed cameras wait clear_after_s.",
    )
    memory_s: float = Field(
        120.0, gt=0, le=86400, description="Keep a stopped vehicle's place this long after it left."
    )
    use_foreground: bool = Field(
        True, description="Fixed cameras: a new static region of the background model counts."
    )
    clear_after_s: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="The vehicle gone, or no pile seen, this long: the incident ends.",
    )
    severity: Severity = Field("critical", description="Severity from the confirmed stage on.")


class AbandonedObjectRuleConfig(_Rule):
    """An object left in the zone without its owner for `unattended_s`.

    Objects are detections of `object_classes` that stay still, or (fixed cameras) new static
    regions of the background model; the owner is anyone of `owner_classes` within
    `owner_radius` object sizes.
    """

    type: Literal["abandoned_object"] = Field(
        "abandoned_object", description="An object left without its owner."
    )
    zone: Id = Field(description="The zone watched.")
    object_classes: list[str] = Field(
        default_factory=list,
        description="Classes of objects that may be left (empty: only background regions).",
    )
    owner_classes: list[str] = Field(
        default_factory=lambda: ["person"], description="Classes that may own an object."
    )
    use_foreground: bool = Field(
        True, description="Fixed cameras: a new static region of the background model counts."
    )
    unattended_s: float = Field(
        10.0, gt=0, le=86400, description="Left alone this long: abandoned."
    )
    owner_radius: float = Field(3.0, ge=0, le=50, description="In sizes of the object.")
    attend_s: float = Field(
        2.5,
        ge=0,
        le=600,
        description="Someone attends the object once within owner_radius this long: a "
        "passer-by walking past does not stop its clock.",
    )
    walk_speed_mps: float = Field(
        0.9,
        gt=0,
        le=20,
        description="Where the source maps to the ground: someone within reach moving faster "
        "than this (metres per second) is walking past and does not attend the object, however "
        "long they take.",
    )
    min_size_px: float = Field(6.0, ge=1, le=10000, description="Ignore smaller regions.")
    max_size_px: float = Field(
        160.0, ge=1, le=10000, description="Ignore larger regions (parked vehicles, shadows)."
    )
    clear_after_s: float = Field(
        3.0, ge=0, le=3600, description="Object gone this long: the incident ends."
    )
    vehicle_classes: list[str] = Field(
        default_factory=lambda: ["truck", "car"],
        description="An object that first shows where one of these stands or stood within "
        "vehicle_memory_s (within half its size) is the vehicle's: its load (a dumping rule's "
        "pile) or where a parked car was, never an abandoned object (empty: off).",
    )
    vehicle_memory_s: float = Field(
        60.0, ge=0, le=3600, description="How long a vehicle's place is remembered after it left."
    )
    severity: Severity = "warning"


RuleConfig = Annotated[
    ZonePresenceRuleConfig
    | IntrusionRuleConfig
    | LineCrossingRuleConfig
    | LoiteringRuleConfig
    | CrowdRuleConfig
    | DumpingRuleConfig
    | AbandonedObjectRuleConfig,
    Field(discriminator="type"),
]
