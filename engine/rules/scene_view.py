"""Per source, the `View` its rules get each frame: where the image lies in the scene (a
moving camera's frames registered to the ground from their telemetry, or followed by their image
shift where there is none) and the background's new static regions, each computed only where a
rule of that source needs it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from engine.geo.geodesy import GeoOrigin
from engine.preprocess.ground_register import GroundRegistration, shift_homography
from engine.preprocess.scene import EgoMotion, StaticForeground
from engine.rules.base import Rule, View
from engine.types import Frame, Tracks

# classes that move about and stop: what stands still inside their boxes is not left behind
ACTORS = frozenset({"person", "car", "truck", "bus", "van", "motorcycle", "bicycle"})

__all__ = ["SceneView"]


class SceneView:
    """Builds each frame's View for one source.

    A moving camera's frame is registered to the ground by its pose telemetry where it has
    one; a frame without (a telemetry gap) carries the last registration on by the image shift
    measured since; a feed that never had telemetry is followed by its image shift alone.

    Args:
        moving: the camera moves (a drone).
        rules: the source's rules; a background model runs if one asks for it (`needs_foreground`)
            and the camera is fixed.
        origin: the site origin (scene coordinates of a registered drone are metres about it).
    """

    def __init__(
        self, moving: bool, rules: Sequence[Rule], origin: GeoOrigin | None = None
    ) -> None:
        self._moving = moving
        self._ego = EgoMotion() if moving else None
        self._register = GroundRegistration(origin) if moving else None
        self._H: npt.NDArray[np.float64] | None = None  # last frame's image -> scene
        self._last_shift = (0.0, 0.0)
        wants = any(r.needs_foreground for r in rules)
        self._static = StaticForeground() if wants and not moving else None

    def _to_scene(self, frame: Frame) -> npt.NDArray[np.float64] | None:
        if self._ego is None or self._register is None:
            return None
        ox, oy = self._ego.update(frame.image)
        dx, dy = ox - self._last_shift[0], oy - self._last_shift[1]
        self._last_shift = (ox, oy)
        H = self._register.update(frame.telemetry, frame.width, frame.height)
        if H is None:
            # no pose this frame: carry on the last one by the image shift since (a point now at
            # p was at p + d in the previous frame), or the shift alone without any pose yet
            H = shift_homography(ox, oy) if self._H is None else self._H @ shift_homography(dx, dy)
        self._H = H
        return H

    def view(self, frame: Frame, tracks: Tracks | None = None) -> View:
        """The view of this frame (call once per frame, in order); `tracks` are this frame's:
        people and vehicles among them are no static objects."""
        H = self._to_scene(frame)
        if self._static is None:
            return View(to_scene_h=H, moving=self._moving)
        exclude = None
        if tracks is not None and len(tracks):
            actor = np.array([n in ACTORS for n in tracks.labels()], bool)
            exclude = tracks.xyxy[actor & (tracks.score >= 0.2)]
        xyxy, age = self._static.update(frame.image, frame.pts_s, exclude)
        return View(to_scene_h=H, moving=self._moving, static_xyxy=xyxy, static_age_s=age)
