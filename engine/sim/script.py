"""From a scenario to actors and true event intervals: background life plus scripted incidents.

Everything random comes from one generator seeded by the scenario, in a fixed order, so the same
scenario and seed always give the same actors, motions and looks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from engine.sim.actors import Actor, Trajectory
from engine.sim.scenario import (
    AbandonedObjectIncident,
    CrowdIncident,
    DumpingIncident,
    LoiteringIncident,
    Scenario,
)
from engine.sim.shapes import PILE_SHOWS
from engine.sim.world import GroundMap

__all__ = ["Script", "TrueEvent", "build_script"]

F64 = npt.NDArray[np.float64]

SIZES = {  # length, width, height in metres: (low, high) per axis
    "person": ((0.25, 0.35), (0.4, 0.55), (1.5, 1.95)),
    "car": ((3.9, 4.9), (1.7, 1.95), (1.4, 1.65)),
    "truck": ((6.5, 8.5), (2.3, 2.55), (2.8, 3.4)),
    "bag": ((0.45, 0.7), (0.3, 0.45), (0.35, 0.6)),
}
CLOTHES = [
    (40, 40, 40),
    (200, 200, 200),
    (150, 60, 30),
    (30, 30, 150),
    (40, 110, 40),
    (30, 140, 200),
    (120, 120, 120),
    (80, 50, 90),
    (20, 20, 90),
    (180, 150, 110),
]
SKIN = [(140, 170, 220), (110, 140, 190), (80, 110, 160), (60, 80, 120)]
PAINT = [
    (30, 30, 30),
    (220, 220, 225),
    (150, 150, 155),
    (40, 40, 160),
    (150, 90, 30),
    (40, 100, 40),
    (30, 160, 210),
    (100, 100, 110),
    (20, 60, 120),
    (200, 200, 80),
]


@dataclass(slots=True)
class TrueEvent:
    """An incident as it really happened, for scoring.

    Attributes:
        kind: dumping, crowd_gathering, crowd_dispersal, loitering, abandoned_object.
        start_s, end_s: stream time.
        place_m: where (x, y).
        actors: the actor ids involved (dumping: the vehicle, then the pile).
        area: the area id concerned, if any.
        milestones: moments within it, stream seconds. Dumping: `set_off_s` (the vehicle
            sets off along its path, maybe before the stream starts), `stop_s` (it stops: the
            event's start), `first_debris_s` (the pile starts to show), `unloaded_s`,
            `depart_s` (it drives off).
    """

    kind: str
    start_s: float
    end_s: float
    place_m: tuple[float, float]
    actors: list[int]
    area: str | None = None
    milestones: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "place_m": [round(v, 3) for v in self.place_m],
            "actors": self.actors,
            "area": self.area,
            **(
                {"milestones": {k: round(v, 3) for k, v in self.milestones.items()}}
                if self.milestones
                else {}
            ),
        }


@dataclass(slots=True)
class Script:
    """Actors and the truth about what they do."""

    actors: list[Actor] = field(default_factory=list)
    events: list[TrueEvent] = field(default_factory=list)

    def add(
        self,
        kind: str,
        traj: Trajectory,
        appear: float,
        vanish: float,
        rng: np.random.Generator,
        **kw: Any,
    ) -> Actor:
        size = kw.pop("size_m", None) or _size(kind, rng)
        colours = kw.pop("colours", None) or _colours(kind, rng)
        actor = Actor(
            len(self.actors),
            kind,
            traj,
            appear,
            vanish,
            size,
            colours,
            rng_seed=int(rng.integers(2**31)),
            **kw,
        )
        self.actors.append(actor)
        return actor


def _size(kind: str, rng: np.random.Generator) -> tuple[float, float, float]:
    if kind.startswith("prop:") or kind == "debris":
        return (1.0, 1.0, 1.0)
    lo_hi = SIZES[kind]
    return (
        float(rng.uniform(*lo_hi[0])),
        float(rng.uniform(*lo_hi[1])),
        float(rng.uniform(*lo_hi[2])),
    )


def _pick(rng: np.random.Generator, palette: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    c = np.asarray(palette[int(rng.integers(len(palette)))], np.float64)
    c = np.clip(c * rng.uniform(0.75, 1.2) + rng.normal(0, 10, 3), 0, 255)
    return (int(c[0]), int(c[1]), int(c[2]))


def _colours(kind: str, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    if kind == "person":  # shirt, trousers, skin, hair
        return [
            _pick(rng, CLOTHES),
            _pick(rng, CLOTHES),
            _pick(rng, SKIN),
            _pick(rng, [(20, 20, 20), (30, 50, 80), (150, 170, 190)]),
        ]
    if kind in ("car", "truck"):  # body, cargo/roof, windows
        return [_pick(rng, PAINT), _pick(rng, PAINT), (60, 50, 40)]
    if kind == "debris":  # soil (earth, sand, concrete, brick), rubble
        return [
            _pick(
                rng,
                [
                    (70, 100, 130),
                    (110, 120, 130),
                    (60, 80, 100),
                    (140, 150, 150),
                    (40, 55, 75),
                    (120, 165, 195),
                    (70, 80, 150),
                    (175, 175, 170),
                ],
            ),
            _pick(
                rng, [(90, 90, 90), (50, 70, 90), (160, 160, 170), (60, 60, 140), (200, 200, 200)]
            ),
        ]
    if kind == "bag":
        return [_pick(rng, [(20, 20, 20), (30, 30, 120), (90, 60, 30), (50, 50, 50)])]
    return [_pick(rng, [(90, 90, 90), (40, 90, 40), (60, 80, 110), (150, 150, 150)])]


def _road_route(road_path: F64, lane_offset_m: float, reverse: bool, extend_m: float) -> F64:
    """A route along a road's centre line, shifted sideways, extended beyond both ends."""
    p = road_path[::-1] if reverse else road_path
    seg = np.diff(p, axis=0)
    normals = np.stack([seg[:, 1], -seg[:, 0]], axis=1)  # to the right of travel
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    n = np.vstack([normals[:1], (normals[:-1] + normals[1:]) / 2, normals[-1:]])
    route = p + n * lane_offset_m
    d0 = (route[0] - route[1]) / np.linalg.norm(route[0] - route[1])
    d1 = (route[-1] - route[-2]) / np.linalg.norm(route[-1] - route[-2])
    return np.vstack([route[0] + d0 * extend_m, route, route[-1] + d1 * extend_m])


def _arrivals(rng: np.random.Generator, per_min: float, t0: float, t1: float) -> list[float]:
    if per_min <= 0:
        return []
    times: list[float] = []
    t = t0
    while True:
        t += float(rng.exponential(60.0 / per_min))
        if t >= t1:
            return times
        times.append(t)


def _background(sc: Scenario, rng: np.random.Generator, gm: GroundMap, script: Script) -> None:
    bg = sc.background
    roads = [np.asarray(r.path, np.float64) for r in sc.world.roads]
    lead = 40.0  # start earlier than t=0 so the scene is already busy at the first frame
    for road, cfg in zip(roads, sc.world.roads, strict=True):
        vehicles: list[tuple[str, float, tuple[float, float]]] = [
            ("car", bg.cars_per_min, (7.0, 14.0)),
            ("truck", bg.trucks_per_min, (6.0, 10.0)),
        ]
        for kind, rate, speed_range in vehicles:
            for t in _arrivals(rng, rate, -lead, sc.duration_s):
                reverse = bool(rng.random() < 0.5)
                route = _road_route(road, cfg.width_m / 4, reverse, 30.0)
                traj = Trajectory.along(route, t, float(rng.uniform(*speed_range)))
                script.add(kind, traj, t, traj.end_s, rng)
        for _ in range(bg.parked_cars if road is roads[0] else 0):
            k = int(rng.integers(len(road) - 1))
            a = road[k] + (road[k + 1] - road[k]) * rng.uniform(0.1, 0.9)
            d = road[k + 1] - road[k]
            side = cfg.width_m / 2 - 1.1
            pos = a + np.array([d[1], -d[0]]) / np.linalg.norm(d) * side
            heading = math.degrees(math.atan2(d[0], d[1]))
            script.add(
                "car", Trajectory(np.array([0.0]), pos[None]), -1e9, 1e9, rng, heading_deg=heading
            )
    walks = [np.asarray(w, np.float64) for w in bg.walk_areas]
    for t in _arrivals(rng, bg.pedestrians_per_min, -lead, sc.duration_s):
        speed = float(rng.uniform(1.0, 1.6))
        if walks:
            poly = walks[int(rng.integers(len(walks)))]
            route = np.stack([_on_boundary(poly, rng), _on_boundary(poly, rng)])
        elif roads:
            k = int(rng.integers(len(roads)))
            cfg = sc.world.roads[k]
            offset = cfg.width_m / 2 + cfg.sidewalk_m * rng.uniform(0.25, 0.75)
            route = _road_route(
                roads[k], offset * (1 if rng.random() < 0.5 else -1), bool(rng.random() < 0.5), 10.0
            )
        else:
            h = sc.world.size_m / 2
            route = rng.uniform(-h, h, (2, 2))
        traj = Trajectory.along(route, t, speed)
        script.add("person", traj, t, traj.end_s, rng)


def _on_boundary(poly: F64, rng: np.random.Generator) -> F64:
    k = int(rng.integers(len(poly)))
    a, b = poly[k], poly[(k + 1) % len(poly)]
    return a + (b - a) * rng.uniform()


def _clutter(sc: Scenario, rng: np.random.Generator, gm: GroundMap, script: Script) -> None:
    for prop in sc.world.props:
        script.add(
            f"prop:{prop.kind}",
            Trajectory(np.array([0.0]), np.array([prop.position])),
            -1e9,
            1e9,
            rng,
            heading_deg=prop.yaw_deg,
        )
    for pile in sc.world.piles:
        script.add(
            "debris",
            Trajectory(np.array([0.0]), np.array([pile.position])),
            -1e9,
            1e9,
            rng,
            size_m=(2 * pile.radius_m, 2 * pile.radius_m, pile.height_m),
        )
    placed = 0
    h = sc.world.size_m / 2 - 2
    for _ in range(sc.world.clutter * 20):
        if placed >= sc.world.clutter:
            break
        pos = (float(rng.uniform(-h, h)), float(rng.uniform(-h, h)))
        if gm.on_road(pos) or _in_any_area(pos, sc):
            continue
        kind = str(rng.choice(["bin", "post", "tree", "tree", "bench"]))
        script.add(
            f"prop:{kind}",
            Trajectory(np.array([0.0]), np.array([pos])),
            -1e9,
            1e9,
            rng,
            heading_deg=float(rng.uniform(0, 360)),
        )
        placed += 1


def _in_any_area(pos: tuple[float, float], sc: Scenario) -> bool:
    return any(
        cv2.pointPolygonTest(np.asarray(a.polygon, np.float32), pos, True) > -2.0
        for a in sc.world.areas
    )


def _dumping(inc: DumpingIncident, rng: np.random.Generator, script: Script) -> None:
    path = np.asarray(inc.path, np.float64)
    before = path[: inc.stop_index + 1]
    dist_in = float(np.sum(np.hypot(*np.diff(before, axis=0).T)))
    start = inc.arrive_s - dist_in / inc.speed_mps
    stand = inc.unload_s + inc.wait_s
    traj = Trajectory.along(path, start, inc.speed_mps, pauses={inc.stop_index: stand})
    truck = script.add("truck", traj, start, traj.end_s, rng)
    stop = path[inc.stop_index]
    heading = traj.heading(inc.arrive_s - 0.01)
    back = np.array([math.sin(heading), math.cos(heading)])
    pile_xy = stop - back * (truck.size_m[0] / 2 + inc.pile_radius_m * 0.9)
    if not inc.leaves_pile:
        return
    pile = script.add(
        "debris",
        Trajectory(np.array([0.0]), pile_xy[None]),
        inc.arrive_s,
        1e9,
        rng,
        size_m=(
            inc.pile_radius_m * 2,
            inc.pile_radius_m * 2,
            inc.pile_radius_m * rng.uniform(0.45, 0.7),
        ),
        grow=(inc.arrive_s, inc.arrive_s + inc.unload_s),
    )
    depart = inc.arrive_s + stand
    # the incident lasts until the truck is 15 m clear of its pile
    end = depart
    while end < traj.end_s and np.hypot(*(traj.position(end) - pile_xy)) < 15.0:
        end += 0.1
    first = inc.arrive_s  # when the pile is big enough to be drawn (shapes._pile)
    while pile.scale(first) < PILE_SHOWS and first < inc.arrive_s + inc.unload_s:
        first += 0.05
    milestones = {
        "set_off_s": start,
        "stop_s": inc.arrive_s,
        "first_debris_s": first,
        "unloaded_s": inc.arrive_s + inc.unload_s,
        "depart_s": depart,
    }
    script.events.append(
        TrueEvent(
            "dumping",
            inc.arrive_s,
            end,
            (float(pile_xy[0]), float(pile_xy[1])),
            [truck.id, pile.id],
            inc.area,
            milestones,
        )
    )


def _crowd(inc: CrowdIncident, rng: np.random.Generator, script: Script, end_s: float) -> None:
    c = np.asarray(inc.center, np.float64)
    ids = []
    golden = math.pi * (3 - math.sqrt(5))
    for i in range(inc.count):
        r = inc.radius_m * math.sqrt((i + 0.5) / inc.count)
        target = c + r * np.array([math.cos(i * golden), math.sin(i * golden)])
        ang = rng.uniform(0, 2 * math.pi)
        start = c + (inc.from_m + rng.uniform(-3, 3)) * np.array([math.cos(ang), math.sin(ang)])
        arrive = inc.gather_start_s + inc.gather_s * rng.uniform(0.55, 1.0)
        walk_t = float(np.hypot(*(target - start))) / float(rng.uniform(1.1, 1.7))
        times = [arrive - walk_t, arrive]
        pts = [start, target]
        t = arrive
        stop_at = inc.disperse_at_s if inc.disperse_at_s is not None else end_s + 5
        while t + 2.0 < stop_at:  # small shuffles while standing
            t += float(rng.uniform(1.5, 3.0))
            times.append(min(t, stop_at))
            pts.append(target + rng.normal(0, 0.15, 2))
        if inc.disperse_at_s is not None:
            out = pts[-1] - c
            out = out / (np.linalg.norm(out) + 1e-9)
            ang_noise = rng.normal(0, 0.3)
            rot = np.array(
                [
                    [math.cos(ang_noise), -math.sin(ang_noise)],
                    [math.sin(ang_noise), math.cos(ang_noise)],
                ]
            )
            away = pts[-1] + rot @ out * 35.0
            react = inc.disperse_at_s + float(rng.uniform(0.0, 0.8))
            times += [react, react + 35.0 / (inc.run_speed_mps * rng.uniform(0.8, 1.2))]
            pts += [pts[-1], away]
        traj = Trajectory(np.asarray(times), np.asarray(pts))
        ids.append(
            script.add(
                "person", traj, times[0], traj.end_s if inc.disperse_at_s is not None else 1e9, rng
            ).id
        )
    place = (float(c[0]), float(c[1]))
    script.events.append(
        TrueEvent(
            "crowd_gathering", inc.gather_start_s, inc.gather_start_s + inc.gather_s, place, ids
        )
    )
    if inc.disperse_at_s is not None:
        script.events.append(
            TrueEvent("crowd_dispersal", inc.disperse_at_s, inc.disperse_at_s + 4.0, place, ids)
        )


def _loitering(inc: LoiteringIncident, rng: np.random.Generator, script: Script) -> None:
    """`count` people linger near the centre: one true incident each (one loiterer, one alert)."""
    c = np.asarray(inc.center, np.float64)
    for _ in range(inc.count):
        ang = rng.uniform(0, 2 * math.pi)
        entry = c + 18.0 * np.array([math.cos(ang), math.sin(ang)])
        first = c + rng.uniform(-1, 1, 2) * inc.radius_m * 0.5
        walk = float(np.hypot(*(first - entry))) / 1.3
        times, pts = [inc.start_s - walk, inc.start_s], [entry, first]
        t = inc.start_s
        end = inc.start_s + inc.duration_s
        while t < end:
            nxt = c + rng.uniform(-1, 1, 2) * inc.radius_m * 0.7
            t_move = float(np.hypot(*(nxt - pts[-1]))) / float(rng.uniform(0.3, 0.6))
            t_idle = float(rng.uniform(2, 6))
            if t + t_idle + t_move > end:
                break
            times += [t + t_idle, t + t_idle + t_move]
            pts += [pts[-1], nxt]
            t += t_idle + t_move
        exit_pt = c + 25.0 * np.array([math.cos(ang + 2), math.sin(ang + 2)])
        times += [end, end + float(np.hypot(*(exit_pt - pts[-1]))) / 1.3]
        pts += [pts[-1], exit_pt]
        traj = Trajectory(np.asarray(times), np.asarray(pts))
        person = script.add("person", traj, times[0], traj.end_s, rng)
        script.events.append(
            TrueEvent(
                "loitering",
                inc.start_s,
                inc.start_s + inc.duration_s,
                (float(first[0]), float(first[1])),
                [person.id],
                inc.area,
            )
        )


def _abandoned(
    inc: AbandonedObjectIncident, rng: np.random.Generator, script: Script, end_s: float
) -> None:
    path = np.asarray(inc.path, np.float64)
    speed = inc.speed_mps
    dist_in = float(np.sum(np.hypot(*np.diff(path[: inc.drop_index + 1], axis=0).T)))
    start = inc.drop_s - dist_in / speed
    traj = Trajectory.along(path, start, speed, pauses={inc.drop_index: 2.0})
    person = script.add("person", traj, start, traj.end_s, rng)
    drop = path[inc.drop_index]
    heading = traj.heading(inc.drop_s - 0.01)
    side = np.array([math.cos(heading), -math.sin(heading)]) * 0.45
    bag_xy = drop + side
    bag = script.add(
        "bag",
        Trajectory(np.array([0.0]), bag_xy[None]),
        inc.drop_s,
        1e9,
        rng,
        heading_deg=math.degrees(heading),
    )
    script.events.append(
        TrueEvent(
            "abandoned_object",
            inc.drop_s + 2.0,
            end_s,
            (float(bag_xy[0]), float(bag_xy[1])),
            [person.id, bag.id],
        )
    )


def build_script(sc: Scenario, rng: np.random.Generator, gm: GroundMap) -> Script:
    """Every actor of the scenario and the true events (deterministic for the generator)."""
    script = Script()
    _clutter(sc, rng, gm, script)
    _background(sc, rng, gm, script)
    for inc in sc.incidents:
        if isinstance(inc, DumpingIncident):
            _dumping(inc, rng, script)
        elif isinstance(inc, CrowdIncident):
            _crowd(inc, rng, script, sc.duration_s)
        elif isinstance(inc, LoiteringIncident):
            _loitering(inc, rng, script)
        elif isinstance(inc, AbandonedObjectIncident):
            _abandoned(inc, rng, script, sc.duration_s)
    for ev in script.events:
        ev.end_s = min(ev.end_s, sc.duration_s)
    return script
