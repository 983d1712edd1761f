"""Rendering one frame: ground, sky, shadows, actors in depth order, then camera effects.

Besides the image, the renderer keeps an id buffer (which actor owns each pixel), from which each
object's visibility is measured: visible pixels over the pixels of its whole silhouette. Boxes
are the extent of the projected parts, so every drawn pixel of an actor lies inside its box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from engine.geo.camera import Camera
from engine.sim.actors import Actor
from engine.sim.scenario import Effects
from engine.sim.shapes import Part, actor_parts
from engine.sim.world import GroundMap

__all__ = ["FrameTruth", "Lighting", "Renderer", "lighting_for"]

U8 = npt.NDArray[np.uint8]
SHIFT = 4  # sub-pixel bits for polygon filling
ONE = 1 << SHIFT
HAZE_SIN = 0.12  # rays within ~7 degrees of the horizon fade into haze


@dataclass(frozen=True, slots=True)
class Lighting:
    """Global light: gain per BGR channel, sun direction (towards the ground), shadow depth."""

    gain: tuple[float, float, float]
    sun_dir: tuple[float, float, float]
    shadow: float  # 0: no shadows, 1: black
    sky: tuple[int, int, int]
    noise_scale: float


# time of day: sun elevation range (None: no sun), BGR gain, shadow depth, sky colour, noise scale
_TIME_OF_DAY: dict[
    str,
    tuple[
        tuple[float, float] | None, tuple[float, float, float], float, tuple[int, int, int], float
    ],
] = {
    "day": ((35.0, 65.0), (1.0, 1.0, 1.0), 0.45, (235, 206, 170), 1.0),
    "dusk": ((10.0, 20.0), (0.6, 0.68, 0.82), 0.35, (150, 150, 210), 1.6),
    "night": (None, (0.42, 0.36, 0.3), 0.0, (60, 40, 30), 2.5),
}


def lighting_for(effects: Effects, rng: np.random.Generator) -> Lighting:
    """Lighting for the time of day (drawn from the generator when 'random')."""
    tod: str = effects.time_of_day
    if tod == "random":
        tod = str(rng.choice(["day", "day", "day", "dusk", "night"]))
    azimuth = rng.uniform(0, 2 * math.pi)
    elev_range, gain, shadow, sky, noise = _TIME_OF_DAY[tod]
    elev = rng.uniform(*elev_range) if elev_range else 60.0
    g = rng.uniform(0.9, 1.1)
    e = math.radians(float(elev))
    sun = (-math.sin(azimuth) * math.cos(e), -math.cos(azimuth) * math.cos(e), -math.sin(e))
    return Lighting((gain[0] * g, gain[1] * g, gain[2] * g), sun, shadow, sky, noise)


@dataclass(slots=True)
class FrameTruth:
    """Ground truth of one object in one frame."""

    actor_id: int
    cls: str
    box_xyxy: tuple[float, float, float, float]
    visibility: float
    world_m: tuple[float, float, float]
    foot_px: tuple[float, float]
    speed_mps: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "actor_id": self.actor_id,
            "class": self.cls,
            "box_xyxy": [round(v, 2) for v in self.box_xyxy],
            "visibility": round(self.visibility, 3),
            "world_m": [round(v, 3) for v in self.world_m],
            "foot_px": [round(v, 2) for v in self.foot_px],
            "speed_mps": round(self.speed_mps, 3),
        }


@dataclass(slots=True)
class _Mesh:
    """One actor's parts in one frame, stacked: vertices, their pixels, where each part's
    vertices start, the actor's mean camera depth and its parts' drawing order (far to near)."""

    actor: Actor
    parts: list[Part]
    vertices: npt.NDArray[np.float64]
    uv: npt.NDArray[np.float64]
    starts: npt.NDArray[np.intp]
    depth: float
    order: list[int]

    @classmethod
    def build(cls, actor: Actor, parts: list[Part], cam: Camera) -> _Mesh | None:
        """The actor's mesh, or None when it has no parts or any vertex is behind the camera."""
        if not parts:
            return None
        vertices = np.concatenate([p.vertices for p in parts])
        uv, front = cam.project(vertices)
        if not front.all():
            return None
        starts = np.concatenate([[0], np.cumsum([len(p.vertices) for p in parts])])
        z = cam.to_camera(vertices)[:, 2]
        part_z = np.add.reduceat(z, starts[:-1]) / np.diff(starts)
        order = sorted(range(len(parts)), key=lambda k: -float(part_z[k]))
        return cls(actor, parts, vertices, uv, starts, float(np.mean(z)), order)


class Renderer:
    """Renders frames of one scenario for one sensor.

    Args:
        ground: the world's ground map.
        actors: every actor of the script.
        effects: the sensor's degradations.
        lighting: the scene's light.
        seed: seeds per-frame noise (frame i always gets the same noise).
    """

    def __init__(
        self,
        ground: GroundMap,
        actors: list[Actor],
        effects: Effects,
        lighting: Lighting,
        seed: int,
    ) -> None:
        self.ground = ground
        self.actors = actors
        self.effects = effects
        self.light = lighting
        self.seed = seed
        self._noise: npt.NDArray[np.int16] | None = None
        self.last_ids: npt.NDArray[np.int32] | None = None  # id buffer of the last frame (+1)
        self._ground_cache: tuple[bytes, U8] | None = None

    def render(self, cam: Camera, t: float, index: int) -> tuple[U8, list[FrameTruth]]:
        """The frame at time t (frame number `index`) and the truth of every labelled object."""
        w, h = cam.width, cam.height
        img = self._ground(cam)
        ids = np.zeros((h, w), np.int32)
        drawn: list[_Mesh] = []
        shadow_mask = np.zeros((h, w), np.uint8)
        for actor in self.actors:
            mesh = _Mesh.build(actor, actor_parts(actor, t), cam)
            if mesh is None:
                continue
            drawn.append(mesh)
            if self.light.shadow > 0:
                self._shadow(cam, mesh, shadow_mask)
        if self.light.shadow > 0:
            dark = shadow_mask > 0
            img[dark] = (img[dark] * (1.0 - self.light.shadow)).astype(np.uint8)
        drawn.sort(key=lambda d: -d.depth)  # actors far to near
        for mesh in drawn:
            self._draw(img, ids, cam, mesh)
        self.last_ids = ids
        truths = self._truths(cam, t, drawn, ids)
        return self._effects(img, index), truths

    # --- drawing ----------------------------------------------------------------------------

    def _ground(self, cam: Camera) -> U8:
        # A fixed camera sees the same ground every frame: warp it once.
        key = cam.K.tobytes() + cam.R.tobytes() + cam.position_m.tobytes()
        if self._ground_cache is not None and self._ground_cache[0] == key:
            return self._ground_cache[1].copy()
        img = self._warp_ground(cam)
        self._ground_cache = (key, img)
        return img.copy()

    def _warp_ground(self, cam: Camera) -> U8:
        H = cam.ground_homography() @ self.ground.world_from_map()
        img: U8 = cv2.warpPerspective(  # type: ignore[assignment]
            self.ground.image,
            H,
            (cam.width, cam.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        # Sky where rays point up; haze where they graze the ground. Skipped when no corner ray
        # comes near the horizon (drones looking down).
        to_world = cam.R.T @ np.linalg.inv(cam.K)
        corners = (
            np.array(
                [[0, 0, 1], [cam.width, 0, 1], [0, cam.height, 1], [cam.width, cam.height, 1]],
                np.float64,
            )
            @ to_world.T
        )
        sin_elev = corners[:, 2] / np.linalg.norm(corners, axis=1)
        if sin_elev.max() < -HAZE_SIN:
            return img
        u = np.arange(cam.width, dtype=np.float32)
        v = np.arange(cam.height, dtype=np.float32)[:, None]
        rx = to_world[0, 0] * u + to_world[0, 1] * v + to_world[0, 2]
        ry = to_world[1, 0] * u + to_world[1, 1] * v + to_world[1, 2]
        rz = to_world[2, 0] * u + to_world[2, 1] * v + to_world[2, 2]
        s = rz / np.sqrt(rx * rx + ry * ry + rz * rz)
        haze = np.where(s >= 0, 1.0, np.clip(1.0 + s / HAZE_SIN, 0.0, 1.0) ** 2 * 0.75)
        rows = np.flatnonzero(haze.max(axis=1) > 0.004)
        if len(rows):
            band = slice(int(rows[0]), int(rows[-1]) + 1)
            a = haze[band][:, :, None].astype(np.float32)
            sky = np.array(self.light.sky, np.float32)
            img[band] = (img[band] * (1 - a) + sky * a).astype(np.uint8)
        return img

    def _shadow(self, cam: Camera, mesh: _Mesh, mask: U8) -> None:
        sx, sy, sz = self.light.sun_dir
        v = mesh.vertices
        ground = np.zeros_like(v)
        ground[:, :2] = v[:, :2] - v[:, 2:3] * np.array([sx, sy]) / sz
        uv, front = cam.project(ground)
        uvi = (uv * ONE).astype(np.int32)
        for k in range(len(mesh.parts)):
            s, e = mesh.starts[k], mesh.starts[k + 1]
            if not front[s:e].all():
                continue
            hull = cv2.convexHull(uvi[s:e])
            cv2.fillConvexPoly(mask, hull, 255, cv2.LINE_8, SHIFT)

    def _draw(self, img: U8, ids: npt.NDArray[np.int32], cam: Camera, mesh: _Mesh) -> None:
        """Draw an actor's front faces, parts far to near, shaded by the sun, into the image
        and its tag into the id buffer. Normals, facing and shade of every face of the actor
        come from one numpy pass; only the polygon fills loop."""
        parts, v = mesh.parts, mesh.vertices
        tri = np.concatenate([p.tri + s for p, s in zip(parts, mesh.starts, strict=False)])
        n_faces = np.array([len(p.tri) for p in parts])
        owner = np.repeat(np.arange(len(parts)), n_faces)
        counts = np.diff(mesh.starts)
        centres = np.add.reduceat(v, mesh.starts[:-1], axis=0) / counts[:, None]
        p0, p1, p2 = v[tri[:, 0]], v[tri[:, 1]], v[tri[:, 2]]
        n = np.cross(p1 - p0, p2 - p0)
        norm = np.linalg.norm(n, axis=1)
        ok = norm > 1e-12
        n = n / np.where(ok, norm, 1.0)[:, None]
        on_face = (p0 + p1 + p2) / 3.0  # a point in each (planar) face
        # outward normals: a convex part's faces all look away from its centroid
        outward = np.einsum("ij,ij->i", n, on_face - centres[owner]) < 0
        n *= np.where(outward, -1.0, 1.0)[:, None]
        facing = ok & (np.einsum("ij,ij->i", n, cam.position_m - on_face) > 0)
        light = 0.55 + 0.55 * np.clip(n @ -np.asarray(self.light.sun_dir), 0.0, None)
        side = np.array([p.side for p in parts], np.float64)[owner]
        top = np.array([p.top for p in parts], np.float64)[owner]
        base = np.where((n[:, 2] > 0.7)[:, None], top, side)
        colours = np.minimum(255, (base * light[:, None]).astype(np.int64)).tolist()
        uvi = (mesh.uv * ONE).astype(np.int32)
        first = np.concatenate([[0], np.cumsum(n_faces)])
        tag = mesh.actor.id + 1
        for k in mesh.order:
            part = parts[k]
            local = uvi[mesh.starts[k] : mesh.starts[k + 1]]
            f0 = int(first[k])
            for j in np.flatnonzero(facing[f0 : first[k + 1]]):
                pts = local[part.faces[j]]
                cv2.fillConvexPoly(img, pts, colours[f0 + j], cv2.LINE_8, SHIFT)
                cv2.fillConvexPoly(ids, pts, tag, cv2.LINE_8, SHIFT)

    def _effects(self, img: U8, index: int) -> U8:
        eff = self.effects
        g = self.light.gain
        out = np.asarray(cv2.transform(img, np.diag(np.asarray(g, np.float32))), np.uint8)
        if eff.blur_px > 0.3:
            out = np.asarray(cv2.GaussianBlur(out, (0, 0), eff.blur_px), np.uint8)
        if eff.rain > 0:
            out = self._rain(out, index, eff.rain)
        sigma = eff.noise_sigma * self.light.noise_scale
        if sigma > 0:
            noise = self._noise_field(out.shape, sigma)
            rng = np.random.default_rng((self.seed, index))
            dy, dx = (int(v) for v in rng.integers(0, 64, 2))
            crop = noise[dy : dy + out.shape[0], dx : dx + out.shape[1]]
            summed = cv2.add(out.astype(np.int16), crop, dtype=cv2.CV_16S)
            out = np.clip(summed, 0, 255).astype(np.uint8)
        if eff.jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, eff.jpeg_quality])
            decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
            if decoded is not None:
                out = np.asarray(decoded, np.uint8)
        return out

    def _rain(self, img: U8, index: int, amount: float) -> U8:
        """Washed-out contrast and falling streaks, different in every frame."""
        rng = np.random.default_rng((self.seed, index, 3))
        h, w = img.shape[:2]
        grey = float(img.mean())
        out = cv2.addWeighted(img, 1 - 0.3 * amount, img, 0, 0.3 * amount * grey)
        streaks = np.zeros_like(img)
        n = int(amount * w * h / 900)
        x0 = rng.uniform(0, w, n)
        y0 = rng.uniform(0, h, n)
        length = rng.uniform(6, 18, n)
        slant = rng.normal(0.15, 0.05)
        for x, y, ln in zip(x0, y0, length, strict=True):
            p0 = (int(x), int(y))
            p1 = (int(x + slant * ln), int(y + ln))
            cv2.line(streaks, p0, p1, (200, 200, 200), 1, cv2.LINE_AA)
        return np.asarray(cv2.addWeighted(out, 1.0, streaks, 0.35 * amount + 0.15, 0), np.uint8)

    def _noise_field(self, shape: tuple[int, ...], sigma: float) -> npt.NDArray[np.int16]:
        if self._noise is None:
            rng = np.random.default_rng((self.seed, 2**20))
            self._noise = rng.normal(0, sigma, (shape[0] + 64, shape[1] + 64, 3)).astype(np.int16)
        return self._noise

    # --- truth ------------------------------------------------------------------------------

    def _truths(
        self,
        cam: Camera,
        t: float,
        drawn: list[_Mesh],
        ids: npt.NDArray[np.int32],
    ) -> list[FrameTruth]:
        out: list[FrameTruth] = []
        w, h = cam.width, cam.height
        for mesh in drawn:
            actor = mesh.actor
            if actor.cls is None:
                continue
            x1, y1 = mesh.uv.min(axis=0)
            x2, y2 = mesh.uv.max(axis=0)
            bx1, by1, bx2, by2 = max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)
            if bx2 - bx1 < 1 or by2 - by1 < 1:
                continue
            full = self._full_area(mesh, x1, y1, x2, y2)
            r0, r1 = int(by1), min(h, math.ceil(by2) + 1)
            c0, c1 = int(bx1), min(w, math.ceil(bx2) + 1)
            visible = int(np.count_nonzero(ids[r0:r1, c0:c1] == actor.id + 1))
            xy = actor.traj.position(t)
            foot, _ = cam.project(np.array([[xy[0], xy[1], 0.0]]))
            out.append(
                FrameTruth(
                    actor.id,
                    actor.cls,
                    (float(bx1), float(by1), float(bx2), float(by2)),
                    min(1.0, visible / full) if full else 0.0,
                    (float(xy[0]), float(xy[1]), 0.0),
                    (float(foot[0, 0]), float(foot[0, 1])),
                    actor.traj.speed(t),
                )
            )
        return out

    @staticmethod
    def _full_area(
        mesh: _Mesh,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
    ) -> int:
        """Pixels of the whole silhouette, as if nothing hid it and the image had no edges."""
        scale = 1.0
        bw, bh = x2 - x1 + 2, y2 - y1 + 2
        if bw * bh > 4e6:  # huge (very close): count at a lower resolution
            scale = math.sqrt(4e6 / (bw * bh))
        mask = np.zeros((int(bh * scale) + 2, int(bw * scale) + 2), np.uint8)
        for k in range(len(mesh.parts)):
            uv = mesh.uv[mesh.starts[k] : mesh.starts[k + 1]]
            pts = ((uv - [x1, y1]) * scale * ONE).astype(np.int32)
            cv2.fillConvexPoly(mask, cv2.convexHull(pts), 1, cv2.LINE_8, SHIFT)
        return int(np.count_nonzero(mask) / (scale * scale))
