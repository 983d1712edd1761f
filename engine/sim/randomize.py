"""Domain randomisation: random scenarios (layouts, sensors, light, incidents) from one seed.

Used to render training data for detectors and, with seeds never used for training, held-out
evaluation sets. Every scene puts its activity in front of its sensor: fixed cameras (street,
pole and station-hall mounts) look at the scene's centre from 8-45 m; drones fly over it at 22-90 m,
straight down or oblique. Day, dusk, night, rain. Debris piles lie around (besides dumping
incidents) with bushes, trees and bins beside them as look-alikes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.sim.scenario import Scenario

__all__ = ["random_scenario"]


def _rot(points: list[tuple[float, float]], angle: float) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(round(x * c - y * s, 2), round(x * s + y * c, 2)) for x, y in points]


# fixed-camera mounts: (distance to the scene's centre m, height m, horizontal fov deg)
_MOUNTS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "street": ((15, 35), (4, 12), (55, 85)),  # a camera on a building or mast
    "pole": ((20, 45), (10, 22), (45, 75)),  # a tall pole over a junction or yard
    "hall": ((8, 20), (2.5, 5), (70, 95)),  # a station hall or platform camera, low and wide
}


def _fixed_camera(rng: np.random.Generator) -> dict[str, Any]:
    mount = _MOUNTS[str(rng.choice(["street", "street", "pole", "hall"]))]
    bearing = rng.uniform(0, 2 * math.pi)
    dist = rng.uniform(*mount[0])
    height = rng.uniform(*mount[1])
    x, y = dist * math.sin(bearing), dist * math.cos(bearing)
    yaw = (math.degrees(bearing) + 180 + rng.uniform(-15, 15)) % 360
    pitch = -math.degrees(math.atan2(height, dist)) + rng.uniform(-6, 4)
    return {
        "type": "fixed_camera",
        "id": "cam",
        "resolution": [960, 540],
        "hfov_deg": float(rng.uniform(*mount[2])),
        "position_m": [x, y, height],
        "yaw_deg": yaw,
        "pitch_deg": max(-85.0, pitch),
        "roll_deg": float(rng.normal(0, 1.5)),
    }


def _drone(rng: np.random.Generator) -> dict[str, Any]:
    a = rng.uniform(-12, 12, 2)
    b = a + rng.uniform(-15, 15, 2)
    oblique = rng.random() < 0.4
    return {
        "type": "drone",
        "id": "drone",
        "resolution": [960, 540],
        "hfov_deg": float(rng.uniform(50, 70)),
        "altitude_m": float(rng.uniform(22, 90)),
        "path": [a.tolist(), b.tolist()],
        "speed_mps": float(rng.uniform(0, 6)),
        "gimbal_elevation_deg": float(rng.uniform(-80, -35)) if oblique else -90.0,
        "wobble_deg": float(rng.uniform(0.5, 2.5)),
    }


def _lookalikes(rng: np.random.Generator, piles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bushes, trees and bins standing next to some of the piles, so that the detector learns
    the difference where it matters."""
    out = []
    for pile in piles:
        if rng.random() < 0.6:
            d = rng.uniform(2.5, 6.0)
            a = rng.uniform(0, 2 * math.pi)
            x, y = pile["position"]
            out.append(
                {
                    "kind": str(rng.choice(["bush", "bush", "tree", "bin"])),
                    "position": [x + d * math.cos(a), y + d * math.sin(a)],
                    "yaw_deg": float(rng.uniform(0, 360)),
                }
            )
    return out


def random_scenario(seed: int, duration_s: float = 40.0) -> Scenario:
    """A random, valid scenario; the same seed always gives the same one."""
    rng = np.random.default_rng(seed)
    turn = rng.uniform(0, math.pi)
    offset = rng.uniform(-12, 12)
    road = _rot([(-70, offset), (0, offset + rng.uniform(-4, 4)), (70, offset)], turn)
    lot = _rot([(-10, offset + 6), (10, offset + 6), (11, offset + 22), (-11, offset + 22)], turn)
    plaza = _rot([(-20, offset - 6), (20, offset - 6), (20, offset - 30), (-20, offset - 30)], turn)
    sensor = _fixed_camera(rng) if rng.random() < 0.5 else _drone(rng)
    sensor["effects"] = {
        "time_of_day": str(rng.choice(["day", "day", "dusk", "night"])),
        "noise_sigma": float(rng.uniform(1, 6)),
        "blur_px": float(rng.uniform(0, 1.2)),
        "rain": float(rng.uniform(0.3, 1.0)) if rng.random() < 0.2 else 0.0,
        "jpeg_quality": int(rng.integers(45, 90)) if rng.random() < 0.4 else None,
    }
    props = [
        {
            "kind": str(
                rng.choice(["gate_barrier", "kiosk", "bench", "bin", "bush", "bush", "tree"])
            ),
            "position": rng.uniform(-25, 25, 2).tolist(),
            "yaw_deg": float(rng.uniform(0, 360)),
        }
        for _ in range(int(rng.integers(0, 10)))
    ]
    # debris left earlier, anywhere near the action: piles are rare in dumping incidents alone
    piles = []
    for _ in range(int(rng.integers(0, 4))):
        radius = float(rng.uniform(0.4, 2.3))
        piles.append(
            {
                "position": rng.uniform(-22, 22, 2).tolist(),
                "radius_m": radius,
                "height_m": radius * float(rng.uniform(0.3, 0.8)),
            }
        )
    props += _lookalikes(rng, piles)
    stop = np.mean(lot, axis=0)
    incidents: list[dict[str, Any]] = []
    if rng.random() < 0.7:
        entry, exit_ = road[0], road[-1]
        incidents.append(
            {
                "kind": "dumping",
                "area": "lot",
                "path": [list(entry), list(road[1]), stop.tolist(), list(road[1]), list(exit_)],
                "stop_index": 2,
                "arrive_s": float(rng.uniform(4, 14)),
                "unload_s": float(rng.uniform(5, 10)),
                "wait_s": float(rng.uniform(1, 4)),
                "speed_mps": float(rng.uniform(6, 10)),
                "pile_radius_m": float(rng.uniform(0.9, 2.0)),
            }
        )
    if rng.random() < 0.5:
        centre = np.mean(plaza, axis=0) + rng.uniform(-5, 5, 2)
        incidents.append(
            {
                "kind": "crowd",
                "center": centre.tolist(),
                "count": int(rng.integers(6, 25)),
                "radius_m": float(rng.uniform(2, 5)),
                "gather_start_s": float(rng.uniform(0, 8)),
                "gather_s": float(rng.uniform(6, 14)),
                "disperse_at_s": float(rng.uniform(22, 32)),
            }
        )
    if rng.random() < 0.3:
        incidents.append(
            {
                "kind": "loitering",
                "center": rng.uniform(-10, 10, 2).tolist(),
                "count": int(rng.integers(1, 4)),
                "start_s": 0.0,
                "duration_s": float(duration_s),
            }
        )
    return Scenario.model_validate(
        {
            "name": f"random-{seed}",
            "seed": seed,
            "duration_s": duration_s,
            "fps": 5,
            "world": {
                "size_m": 140,
                "ppm": 12,
                "ground": "random",
                "clutter": int(rng.integers(4, 25)),
                "roads": [
                    {
                        "path": road,
                        "width_m": float(rng.uniform(6, 10)),
                        "sidewalk_m": float(rng.uniform(1.5, 3.5)),
                    }
                ],
                "areas": [
                    {"id": "lot", "kind": "no_dumping", "polygon": lot},
                    {
                        "id": "plaza",
                        "kind": str(rng.choice(["plaza", "grass", "gate"])),
                        "polygon": plaza,
                    },
                ],
                "props": props,
                "piles": piles,
            },
            "sensor": sensor,
            "background": {
                "pedestrians_per_min": float(rng.uniform(10, 45)),
                "cars_per_min": float(rng.uniform(3, 12)),
                "trucks_per_min": float(rng.uniform(1, 4)),
                "parked_cars": int(rng.integers(0, 5)),
                "walk_areas": [plaza, _rot([(-15, -15), (15, -15), (15, 15), (-15, 15)], turn)],
            },
            "incidents": incidents,
        }
    )
