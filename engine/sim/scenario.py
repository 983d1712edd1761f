"""Scenario files: a seeded world, one sensor, background activity and scripted incidents.

Validated like the engine's config (unknown keys are errors, every value bounded, one line per
problem). Coordinates are metres in a local east-north-up frame whose origin is `world.origin`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.yamlconf import CrossFieldError, parse_yaml_model, read_text, union_tags

__all__ = [
    "AbandonedObjectIncident",
    "CrowdIncident",
    "DroneSensor",
    "DumpingIncident",
    "Effects",
    "FixedCameraSensor",
    "LoiteringIncident",
    "Scenario",
    "load_scenario",
    "parse_scenario",
]

Point = tuple[float, float]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Origin(_Model):
    """Where the local frame's origin is on Earth."""

    lat_deg: float = Field(31.2304, ge=-90, le=90)
    lon_deg: float = Field(121.4737, ge=-180, le=180)
    alt_m: float = Field(10.0, ge=-500, le=9000, description="Ground height above the ellipsoid.")


class Road(_Model):
    """A road along a polyline, with sidewalks on both sides."""

    path: list[Point] = Field(min_length=2, description="Centre line, metres.")
    width_m: float = Field(7.0, ge=3, le=40)
    sidewalk_m: float = Field(2.5, ge=0, le=10)


class Area(_Model):
    """A named ground area: how it looks, and what it means for the scenario's events."""

    id: Id
    kind: Literal["no_dumping", "plaza", "gate", "grass", "lot"]
    polygon: list[Point] = Field(min_length=3)


class Prop(_Model):
    """A static object (it occludes, casts shadows, and is no detector class)."""

    kind: Literal["gate_barrier", "kiosk", "bin", "tree", "bush", "post", "bench"]
    position: Point
    yaw_deg: float = Field(0.0, ge=-360, le=360)


class Pile(_Model):
    """Debris already on the ground when the recording starts (a detector class, no incident)."""

    position: Point
    radius_m: float = Field(1.2, ge=0.3, le=5)
    height_m: float = Field(0.7, ge=0.1, le=3)


class World(_Model):
    """The ground plane: size, surface, roads, areas, static props."""

    origin: Origin = Field(default_factory=Origin)
    size_m: float = Field(160.0, ge=20, le=1000, description="Side of the square world.")
    ground: Literal["asphalt", "paving", "grass", "dirt", "random"] = "random"
    roads: list[Road] = Field(default_factory=list)
    areas: list[Area] = Field(default_factory=list)
    props: list[Prop] = Field(default_factory=list)
    piles: list[Pile] = Field(default_factory=list)
    clutter: int = Field(12, ge=0, le=200, description="Random bins, posts and trees.")
    ppm: float = Field(16.0, ge=2, le=64, description="Ground texture pixels per metre.")


class Effects(_Model):
    """Image degradations and lighting."""

    time_of_day: Literal["day", "dusk", "night", "random"] = "random"
    noise_sigma: float = Field(3.0, ge=0, le=40, description="Gaussian sensor noise, grey levels.")
    blur_px: float = Field(0.6, ge=0, le=5, description="Gaussian blur sigma, pixels.")
    rain: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Rain: streaks over the image and washed-out contrast (0: dry).",
    )
    jpeg_quality: int | None = Field(
        None, ge=10, le=100, description="Compress every frame like a cheap camera (None: no)."
    )


class FixedCameraSensor(_Model):
    """A camera on a mast."""

    type: Literal["fixed_camera"] = "fixed_camera"
    id: Id = "cam1"
    resolution: tuple[int, int] = Field((1280, 720), description="Width, height in pixels.")
    hfov_deg: float = Field(70.0, gt=5, lt=170)
    position_m: tuple[float, float, float] = Field(description="x, y, height above ground.")
    yaw_deg: float = Field(0.0, ge=-360, le=360, description="Heading, clockwise from north.")
    pitch_deg: float = Field(-25.0, ge=-90, le=30, description="Negative looks down.")
    roll_deg: float = Field(0.0, ge=-45, le=45)
    effects: Effects = Field(default_factory=Effects)


class DroneSensor(_Model):
    """A drone flying a path at an altitude, its gimbal camera producing telemetry."""

    type: Literal["drone"] = "drone"
    id: Id = "drone1"
    platform: str = Field("Lookout-Sim M30", max_length=64)
    resolution: tuple[int, int] = Field((1280, 720))
    hfov_deg: float = Field(60.0, gt=5, lt=170)
    altitude_m: float = Field(60.0, ge=5, le=1000, description="Height above the ground.")
    path: list[Point] = Field(min_length=1, description="Waypoints (one: hover).")
    speed_mps: float = Field(3.0, ge=0, le=40)
    gimbal_elevation_deg: float = Field(-90.0, ge=-90, le=0, description="-90: nadir.")
    gimbal_azimuth_deg: float = Field(0.0, ge=-180, le=180)
    wobble_deg: float = Field(1.5, ge=0, le=10, description="Platform pitch/roll sway.")
    heading_deg: float | None = Field(None, description="Fixed heading (None: along the path).")
    effects: Effects = Field(default_factory=Effects)


Sensor = Annotated[FixedCameraSensor | DroneSensor, Field(discriminator="type")]


class DumpingIncident(_Model):
    """A truck drives in, stops, leaves a debris pile behind it, and drives off."""

    kind: Literal["dumping"] = "dumping"
    area: Id = Field(description="The no-dumping area it happens in.")
    path: list[Point] = Field(min_length=3, description="Entry, stop point, ..., exit.")
    stop_index: int = Field(1, ge=1, description="Which path point the truck stops at.")
    arrive_s: float = Field(ge=0, description="When the truck reaches the stop point.")
    unload_s: float = Field(8.0, ge=1, le=600, description="How long the unloading takes.")
    wait_s: float = Field(2.0, ge=0, le=600, description="Standing after unloading.")
    speed_mps: float = Field(8.0, gt=0, le=30)
    pile_radius_m: float = Field(1.4, ge=0.3, le=5)
    leaves_pile: bool = Field(
        True, description="False: the truck only stops and drives on (a negative case)."
    )


class CrowdIncident(_Model):
    """People converge on a place, stand together, then (optionally) scatter, running."""

    kind: Literal["crowd"] = "crowd"
    center: Point
    count: int = Field(14, ge=3, le=200)
    radius_m: float = Field(3.0, ge=0.5, le=50, description="Size of the gathered crowd.")
    from_m: float = Field(22.0, ge=3, le=200, description="How far away people come from.")
    gather_start_s: float = Field(ge=0)
    gather_s: float = Field(10.0, ge=1, le=600, description="How long the gathering takes.")
    disperse_at_s: float | None = Field(None, ge=0, description="When they scatter (None: no).")
    run_speed_mps: float = Field(5.0, ge=2, le=10)


class LoiteringIncident(_Model):
    """People linger in a small area, moving slowly, for a long time."""

    kind: Literal["loitering"] = "loitering"
    area: Id | None = Field(None, description="The area it concerns (gate, ...).")
    center: Point
    radius_m: float = Field(2.5, ge=0.3, le=30)
    count: int = Field(2, ge=1, le=20)
    start_s: float = Field(ge=0)
    duration_s: float = Field(ge=1, le=7200)


class AbandonedObjectIncident(_Model):
    """A person walks in, puts a bag down, and walks away without it."""

    kind: Literal["abandoned_object"] = "abandoned_object"
    path: list[Point] = Field(min_length=3, description="Entry, drop point, ..., exit.")
    drop_index: int = Field(1, ge=1)
    drop_s: float = Field(ge=0, description="When the bag is put down.")
    speed_mps: float = Field(1.3, gt=0, le=3)


Incident = Annotated[
    DumpingIncident | CrowdIncident | LoiteringIncident | AbandonedObjectIncident,
    Field(discriminator="kind"),
]


class Background(_Model):
    """Normal activity around the incidents (random, from the seed)."""

    pedestrians_per_min: float = Field(12.0, ge=0, le=600)
    cars_per_min: float = Field(6.0, ge=0, le=600)
    trucks_per_min: float = Field(0.5, ge=0, le=100)
    parked_cars: int = Field(2, ge=0, le=100)
    walk_areas: list[list[Point]] = Field(
        default_factory=list,
        description="Polygons people cross (default: sidewalks of the roads).",
    )


class Scenario(_Model):
    """One rendered scene."""

    version: Literal[1] = 1
    name: Id
    description: str = ""
    seed: int = Field(0, ge=0, le=2**31 - 1)
    duration_s: float = Field(30.0, gt=0, le=3600)
    fps: float = Field(15.0, ge=1, le=60)
    start_utc: str = Field("2026-06-01T10:00:00Z", description="Wall clock of the first frame.")
    world: World = Field(default_factory=World)
    sensor: Sensor
    background: Background = Field(default_factory=Background)
    incidents: list[Incident] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        problems: list[tuple[tuple[int | str, ...], str]] = []
        areas = {a.id: a.kind for a in self.world.areas}
        for i, inc in enumerate(self.incidents):
            area = getattr(inc, "area", None)
            if area is not None and area not in areas:
                problems.append(
                    (
                        ("incidents", i, "area"),
                        f"expected one of the areas {sorted(areas)}, got {area!r}",
                    )
                )
            if isinstance(inc, DumpingIncident) and inc.stop_index >= len(inc.path) - 1:
                problems.append(
                    (
                        ("incidents", i, "stop_index"),
                        f"expected a point before the last of {len(inc.path)}, "
                        f"got {inc.stop_index}",
                    )
                )
            if isinstance(inc, AbandonedObjectIncident) and inc.drop_index >= len(inc.path) - 1:
                problems.append(
                    (
                        ("incidents", i, "drop_index"),
                        f"expected a point before the last of {len(inc.path)}, "
                        f"got {inc.drop_index}",
                    )
                )
        if problems:
            raise CrossFieldError(problems)
        return self


TAGS = {"sensor": union_tags(Sensor), "incidents": union_tags(Incident, key="kind")}


def parse_scenario(text: str, name: str = "<scenario>") -> Scenario:
    """Validate scenario YAML; raises ConfigError with one line per problem."""
    return parse_yaml_model(text, Scenario, name, TAGS)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    return parse_scenario(read_text(path), str(path))
