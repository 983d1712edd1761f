"""The ground seen from above: a textured map of the world, in pixels per metre.

Cameras see the ground by warping this map through their ground homography. Surfaces (asphalt,
paving, grass, dirt) get seeded random colours and textures, roads get sidewalks and markings, so
that scenes differ from seed to seed and a detector cannot learn one background by heart.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from engine.sim.scenario import World

__all__ = ["GroundMap", "render_ground"]

U8 = npt.NDArray[np.uint8]

_SURFACE_COLOURS = {  # BGR centre colours, varied per seed
    "asphalt": (72, 72, 76),
    "paving": (150, 158, 165),
    "grass": (60, 125, 80),
    "dirt": (85, 115, 140),
}
_AREA_SURFACE = {
    "no_dumping": "dirt",
    "plaza": "paving",
    "gate": "paving",
    "grass": "grass",
    "lot": "asphalt",
}


@dataclass(frozen=True, slots=True)
class GroundMap:
    """A top-down image of the world.

    Attributes:
        image: BGR uint8, north up.
        ppm: pixels per metre.
        half_m: the world spans [-half_m, half_m] on both axes.
        road_mask: uint8, 255 where roads and sidewalks are.
    """

    image: U8
    ppm: float
    half_m: float
    road_mask: U8

    def world_from_map(self) -> npt.NDArray[np.float64]:
        """3x3 matrix: map pixel (u, v, 1) -> world (x, y, 1)."""
        s = 1.0 / self.ppm
        return np.array([[s, 0, -self.half_m], [0, -s, self.half_m], [0, 0, 1]], np.float64)

    def to_px(self, xy: npt.ArrayLike) -> npt.NDArray[np.int32]:
        """World metres (n, 2) -> map pixels (n, 2)."""
        p = np.asarray(xy, np.float64).reshape(-1, 2)
        u = (p[:, 0] + self.half_m) * self.ppm
        v = (self.half_m - p[:, 1]) * self.ppm
        return np.round(np.stack([u, v], axis=1)).astype(np.int32)

    def on_road(self, xy: tuple[float, float]) -> bool:
        """Whether a ground point lies on a road or sidewalk."""
        u, v = self.to_px([xy])[0]
        h, w = self.road_mask.shape
        return bool(0 <= u < w and 0 <= v < h and self.road_mask[v, u])


def _texture(rng: np.random.Generator, size: int, surface: str, ppm: float) -> U8:
    centre = np.array(_SURFACE_COLOURS[surface], np.float64)
    base = (centre * rng.uniform(0.8, 1.2) + rng.normal(0, 8, 3)).astype(np.float32)
    low = cv2.resize(
        rng.normal(0, 1, (12, 12, 1)).astype(np.float32),
        (size, size),
        interpolation=cv2.INTER_CUBIC,
    )
    img = base + low[:, :, None] * rng.uniform(4, 14)
    fine_sigma = {"asphalt": 7, "paving": 5, "grass": 14, "dirt": 12}[surface]
    img += rng.normal(0, fine_sigma, (size, size, 1)).astype(np.float32)
    if surface == "paving":  # tile joints
        step = max(2, int(rng.uniform(0.4, 1.0) * ppm))
        img[::step, :, :] *= 0.82
        img[:, ::step, :] *= 0.82
    return np.clip(img, 0, 255).astype(np.uint8)


def _dashes(
    img: U8, path: npt.NDArray[np.float64], gm: GroundMap, colour: tuple[int, int, int]
) -> None:
    """A dashed centre line: 3 m on, 6 m off."""
    width = max(1, round(0.15 * gm.ppm))
    for a, b in itertools.pairwise(path):
        length = float(np.hypot(*(b - a)))
        for s in np.arange(0, length, 9.0):
            p0 = a + (b - a) * (s / length)
            p1 = a + (b - a) * (min(s + 3.0, length) / length)
            q = gm.to_px([p0, p1])
            cv2.line(img, tuple(q[0]), tuple(q[1]), colour, width, cv2.LINE_AA)


def render_ground(world: World, rng: np.random.Generator, ppm: float = 16.0) -> GroundMap:
    """Paint the ground of `world` (deterministic for the generator's state)."""
    half = world.size_m / 2
    size = math.ceil(world.size_m * ppm)
    surfaces = list(_SURFACE_COLOURS)
    ground = world.ground if world.ground != "random" else str(rng.choice(surfaces))
    img = _texture(rng, size, ground, ppm)
    road_mask = np.zeros((size, size), np.uint8)
    gm = GroundMap(img, ppm, half, road_mask)
    textures: dict[str, U8] = {}

    def tex(surface: str) -> U8:
        if surface not in textures:
            textures[surface] = _texture(rng, size, surface, ppm)
        return textures[surface]

    for area in world.areas:
        mask = np.zeros((size, size), np.uint8)
        cv2.fillPoly(mask, [gm.to_px(area.polygon)], 255)
        img[mask > 0] = tex(_AREA_SURFACE[area.kind])[mask > 0]
        if area.kind == "gate":  # a painted boundary line, as at ticket gates
            cv2.polylines(
                img,
                [gm.to_px(area.polygon)],
                True,
                (40, 200, 230),
                max(1, round(0.1 * ppm)),
                cv2.LINE_AA,
            )
    for road in world.roads:
        path = np.asarray(road.path, np.float64)
        pts = gm.to_px(path)
        walk_w = round((road.width_m + 2 * road.sidewalk_m) * ppm)
        road_w = round(road.width_m * ppm)
        walk = np.zeros((size, size), np.uint8)
        cv2.polylines(walk, [pts], False, 255, walk_w)
        img[walk > 0] = tex("paving")[walk > 0]
        asphalt = np.zeros((size, size), np.uint8)
        cv2.polylines(asphalt, [pts], False, 255, road_w)
        img[asphalt > 0] = tex("asphalt")[asphalt > 0]
        road_mask |= walk
        # edge lines and the dashed centre line
        edge = np.zeros((size, size), np.uint8)
        cv2.polylines(edge, [pts], False, 255, max(1, road_w - round(0.4 * ppm)))
        inner = cv2.erode(edge, np.ones((3, 3), np.uint8), iterations=max(1, round(0.08 * ppm)))
        img[(edge > 0) & (inner == 0)] = (200, 205, 205)
        _dashes(img, path, gm, (215, 220, 220) if rng.random() < 0.6 else (40, 190, 230))
    return gm
