"""Actors as sets of convex polyhedra (prisms and frustums) in world metres, at a given time.

People have legs and arms that swing with the distance walked (wider when running), a torso, a
head with hair; vehicles have wheels, a body and a cabin or cargo box; debris piles are irregular
mounds that grow while unloaded. Convex parts let the renderer draw only front faces, shaded by
the sun, in depth order.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.sim.actors import Actor

__all__ = ["PILE_SHOWS", "Part", "actor_parts"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Colour = tuple[int, int, int]


@dataclass(slots=True)
class Part:
    """A convex polyhedron: vertices (n, 3), faces as vertex-index arrays, side and top colours.

    `tri` holds the first three vertices of each face (planar faces: enough for its normal).
    """

    vertices: F64
    faces: tuple[I64, ...]
    tri: I64
    side: Colour
    top: Colour


@functools.lru_cache(maxsize=64)
def _prism_faces(m: int) -> tuple[tuple[I64, ...], I64]:
    """Faces of a prism over an m-gon (m side quads, top, bottom) and their first triangles;
    the same for every prism of m corners, so made once (read-only arrays)."""
    faces = [np.array([i, (i + 1) % m, m + (i + 1) % m, m + i]) for i in range(m)]
    faces += [np.arange(m, 2 * m), np.arange(m)[::-1].copy()]
    tri = np.array([f[:3] for f in faces])
    for a in (*faces, tri):
        a.flags.writeable = False
    return tuple(faces), tri


def _ellipse(rx: float, ry: float, n: int = 8) -> F64:
    a = np.linspace(0, 2 * math.pi, n, endpoint=False) + math.pi / n
    return np.stack([rx * np.cos(a), ry * np.sin(a)], axis=1)


def _rect(length: float, width: float) -> F64:
    return np.array(
        [
            [length / 2, -width / 2],
            [length / 2, width / 2],
            [-length / 2, width / 2],
            [-length / 2, -width / 2],
        ]
    )


def _prism(
    xy: F64,
    heading: float,
    foot: F64,
    z0: float,
    z1: float,
    side: Colour,
    top: Colour,
    offset: tuple[float, float] = (0.0, 0.0),
    top_scale: float = 1.0,
) -> Part:
    """Footprint `foot` (m, 2) in local (forward, right) metres, extruded from z0 to z1."""
    sin, cos = math.sin(heading), math.cos(heading)  # forward (sin, cos), right (cos, -sin)
    local = foot + np.asarray(offset)
    m = len(foot)
    vertices = np.empty((2 * m, 3))
    vertices[:m, 0] = xy[0] + local[:, 0] * sin + local[:, 1] * cos
    vertices[:m, 1] = xy[1] + local[:, 0] * cos + local[:, 1] * -sin
    if top_scale != 1.0:
        centre = local.mean(axis=0)
        local = centre + (local - centre) * top_scale
    vertices[m:, 0] = xy[0] + local[:, 0] * sin + local[:, 1] * cos
    vertices[m:, 1] = xy[1] + local[:, 0] * cos + local[:, 1] * -sin
    vertices[:m, 2] = z0
    vertices[m:, 2] = z1
    faces, tri = _prism_faces(m)
    return Part(vertices, faces, tri, side, top)


def _shade(c: Colour, k: float) -> Colour:
    return (min(255, int(c[0] * k)), min(255, int(c[1] * k)), min(255, int(c[2] * k)))


def _person(a: Actor, t: float, xy: F64, h: float) -> list[Part]:
    _, width, height = a.size_m
    shirt, trousers, skin, hair = a.colours[:4]
    speed = a.traj.speed(t)
    swing = min(speed / 1.4, 1.8) * 0.22 * height * math.sin(a.traj.distance(t) / 0.75 * math.pi)
    leg = _ellipse(0.075, 0.07)
    hip = 0.47 * height
    parts = [
        _prism(xy, h, leg, 0.0, hip, trousers, trousers, (swing / 2, -width * 0.2)),
        _prism(xy, h, leg, 0.0, hip, trousers, trousers, (-swing / 2, width * 0.2)),
        _prism(xy, h, _ellipse(0.14, width / 2), hip - 0.03, 0.82 * height, shirt, shirt),
        _prism(
            xy,
            h,
            _ellipse(0.05, 0.05),
            0.48 * height,
            0.8 * height,
            shirt,
            shirt,
            (-swing / 3, -width / 2 - 0.05),
        ),
        _prism(
            xy,
            h,
            _ellipse(0.05, 0.05),
            0.48 * height,
            0.8 * height,
            shirt,
            shirt,
            (swing / 3, width / 2 + 0.05),
        ),
        _prism(xy, h, _ellipse(0.1, 0.09), 0.83 * height, 0.95 * height, skin, skin),
        _prism(xy, h, _ellipse(0.105, 0.095), 0.93 * height, height, hair, hair),
    ]
    return parts


def _vehicle(a: Actor, xy: F64, h: float) -> list[Part]:
    length, width, height = a.size_m
    body, _, glass = a.colours[:3]
    tyre = (25, 25, 25)
    parts = [
        _prism(
            xy,
            h,
            _rect(0.7, 0.28),
            0.0,
            0.65,
            tyre,
            tyre,
            (sx * length * 0.33, sy * (width / 2 - 0.14)),
        )
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]
    if a.kind == "car":
        parts.append(_prism(xy, h, _rect(length, width), 0.28, 0.58 * height, body, body))
        parts.append(
            _prism(
                xy,
                h,
                _rect(0.52 * length, 0.9 * width),
                0.58 * height,
                height,
                glass,
                body,
                (-0.05 * length, 0.0),
                top_scale=0.82,
            )
        )
    else:
        cab_l = 0.24 * length
        parts.append(
            _prism(
                xy,
                h,
                _rect(cab_l, width),
                0.35,
                0.82 * height,
                body,
                body,
                (length / 2 - cab_l / 2, 0.0),
            )
        )
        parts.append(
            _prism(
                xy,
                h,
                _rect(cab_l * 0.6, width * 0.92),
                0.82 * height,
                0.95 * height,
                glass,
                body,
                (length / 2 - cab_l * 0.45, 0.0),
                top_scale=0.9,
            )
        )
        parts += _cargo(a, xy, h, length - cab_l - 0.2, -(cab_l + 0.2) / 2)
    return parts


TRUCK_BODIES: tuple[str, ...] = ("box", "tipper", "flatbed")


def _cargo(a: Actor, xy: F64, h: float, bed_l: float, back: float) -> list[Part]:
    """The truck's cargo body behind its cab, one of TRUCK_BODIES (drawn from its seed): a
    closed box, an open tipper bed with low walls around its load, or a flatbed with crates."""
    _, width, height = a.size_m
    second = a.colours[1]
    rng = np.random.default_rng(a.rng_seed + 1)
    body = TRUCK_BODIES[int(rng.integers(len(TRUCK_BODIES)))]
    top_z = height if body == "box" else 0.75  # a box is a bed that reaches the roof
    bed = _prism(xy, h, _rect(bed_l, width), 0.45, top_z, second, _shade(second, 1.1), (back, 0))
    if body == "box":
        return [bed]
    if body == "tipper":
        top = 0.45 + (height - 0.45) * float(rng.uniform(0.45, 0.7))
        wall = 0.12
        load = WASTE[int(rng.integers(len(WASTE)))] if rng.random() < 0.3 else (70, 100, 130)
        parts = [bed]
        for dx, dy, ln, wd in (
            (0.0, width / 2 - wall / 2, bed_l, wall),
            (0.0, -(width / 2 - wall / 2), bed_l, wall),
            (bed_l / 2 - wall / 2, 0.0, wall, width),
            (-(bed_l / 2 - wall / 2), 0.0, wall, width),
        ):
            parts.append(
                _prism(
                    xy, h, _rect(ln, wd), 0.75, top, second, _shade(second, 1.2), (back + dx, dy)
                )
            )
        if rng.random() < 0.6:  # loaded: a mound of soil or waste inside the walls
            parts.append(
                _prism(
                    xy,
                    h,
                    _rect(bed_l - 3 * wall, width - 3 * wall),
                    0.75,
                    top + 0.1,
                    load,
                    _shade(load, 1.1),
                    (back, 0.0),
                    top_scale=0.7,
                )
            )
        return parts
    parts = [bed]  # flatbed: a few crates or pallets of its own colour
    n = int(rng.integers(1, 4))
    crate = tuple(int(v) for v in rng.integers(40, 200, 3))
    for k in range(n):
        ln = bed_l / n * float(rng.uniform(0.6, 0.9))
        cx = back - bed_l / 2 + (k + 0.5) * bed_l / n
        z1 = 0.75 + float(rng.uniform(0.4, 1.6))
        c = (crate[0], crate[1], crate[2])
        parts.append(_prism(xy, h, _rect(ln, width * 0.85), 0.75, z1, c, _shade(c, 1.15), (cx, 0)))
    return parts


WASTE: tuple[Colour, ...] = (
    (225, 225, 225),
    (150, 90, 40),
    (60, 100, 140),
    (40, 40, 40),
    (70, 80, 160),
    (30, 30, 110),
    (180, 200, 210),
)


PILE_SHOWS = 0.05
"""A growing pile is drawn from this fraction of its full size on."""


def _pile(a: Actor, t: float, xy: F64) -> list[Part]:
    s = a.scale(t)
    if s < PILE_SHOWS:
        return []
    rng = np.random.default_rng(a.rng_seed)
    n = int(rng.integers(9, 15))
    radius = a.size_m[0] / 2 * math.sqrt(s)
    ring = _ellipse(radius, radius * rng.uniform(0.55, 1.0), n) * rng.uniform(0.7, 1.12, (n, 1))
    soil, rubble = a.colours[:2]
    height = a.size_m[2] * s
    spin = float(rng.uniform(0, 2 * math.pi))
    parts = [
        _prism(
            xy,
            spin,
            ring,
            0.0,
            height,
            soil,
            _shade(soil, 1.15),
            top_scale=float(rng.uniform(0.15, 0.5)),
        )
    ]
    for k in range(int(rng.integers(2, 8))):  # lumps of rubble and waste on and around it
        colour = rubble if rng.random() < 0.5 else WASTE[int(rng.integers(len(WASTE)))]
        off = rng.uniform(-0.65, 0.65, 2) * radius
        lump = _ellipse(
            radius * rng.uniform(0.12, 0.3),
            radius * rng.uniform(0.1, 0.25),
            int(rng.integers(4, 8)),
        )
        parts.append(
            _prism(
                xy,
                spin + k * 1.3,
                lump,
                0.0,
                height * rng.uniform(0.5, 1.05),
                colour,
                _shade(colour, 1.2),
                (off[0], off[1]),
                top_scale=float(rng.uniform(0.3, 0.8)),
            )
        )
    return parts


def _prop(a: Actor, xy: F64, h: float) -> list[Part]:
    kind = a.kind.removeprefix("prop:")
    c = a.colours[0]
    if kind == "gate_barrier":
        metal = (150, 150, 150)
        return [
            _prism(xy, h, _rect(1.4, 0.25), 0.0, 1.05, metal, _shade(metal, 1.2)),
            _prism(
                xy, h, _rect(0.9, 0.05), 0.55, 1.0, (190, 170, 150), (190, 170, 150), (0.0, 0.3)
            ),
        ]
    if kind == "kiosk":
        return [_prism(xy, h, _rect(2.2, 1.8), 0.0, 2.6, c, _shade(c, 1.2))]
    if kind == "bin":
        return [_prism(xy, h, _ellipse(0.3, 0.3), 0.0, 0.95, c, _shade(c, 0.8))]
    if kind == "post":
        return [_prism(xy, h, _ellipse(0.06, 0.06), 0.0, 2.8, (90, 90, 90), (90, 90, 90))]
    if kind == "bench":
        return [
            _prism(xy, h, _rect(1.7, 0.5), 0.3, 0.48, (60, 90, 130), (70, 110, 150)),
            _prism(xy, h, _rect(1.7, 0.08), 0.48, 0.9, (60, 90, 130), (60, 90, 130), (0.0, 0.22)),
        ]
    leaf = (40 + a.rng_seed % 30, 110 + a.rng_seed % 40, 50 + a.rng_seed % 45)
    if kind == "bush":  # a low mound of leaves: what a detector must not call debris
        r = 0.5 + (a.rng_seed % 100) / 100
        return [
            _prism(
                xy,
                h,
                _ellipse(r, r * 0.8, 9),
                0.0,
                0.5 + r * 0.6,
                leaf,
                _shade(leaf, 1.15),
                top_scale=0.4,
            )
        ]
    return [
        _prism(xy, h, _ellipse(0.15, 0.15), 0.0, 2.4, (40, 60, 80), (40, 60, 80)),
        _prism(xy, h, _ellipse(2.0, 2.0, 10), 2.2, 5.5, leaf, _shade(leaf, 1.15), top_scale=0.45),
    ]


def actor_parts(a: Actor, t: float) -> list[Part]:
    """The actor's parts at time t (empty if it is not there, or too small to see)."""
    if not a.active(t):
        return []
    xy = a.traj.position(t)
    h = a.heading(t)
    if a.kind == "person":
        return _person(a, t, xy, h)
    if a.kind in ("car", "truck"):
        return _vehicle(a, xy, h)
    if a.kind == "debris":
        return _pile(a, t, xy)
    if a.kind == "bag":
        length, width, height = a.size_m
        c = a.colours[0]
        return [_prism(xy, h, _rect(length, width), 0.0, height, c, _shade(c, 1.2))]
    return _prop(a, xy, h)
