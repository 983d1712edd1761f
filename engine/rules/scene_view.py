"""Per source, the `View` its rules get each frame: the camera's own motion and the background's
new static regions, each computed only where a rule of that source needs it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.preprocess.scene import EgoMotion, StaticForeground
from engine.rules.base import Rule, View
from engine.types import Frame, Tracks

# classes that move about and stop: what stands still inside their boxes is not left behind
ACTORS = frozenset({"person", "car", "truck", "bus", "van", "motorcycle", "bicycle"})

__all__ = ["SceneView"]


class SceneView:
    """Builds each frame's View for one source.

    Args:
        moving: the camera moves (a drone): follow the image shift.
        rules: the source's rules; a background model runs if one asks for it (`needs_foreground`)
            and the camera is fixed.
    """

    def __init__(self, moving: bool, rules: Sequence[Rule]) -> None:
        self._ego = EgoMotion() if moving else None
        wants = any(r.needs_foreground for r in rules)
        self._static = StaticForeground() if wants and not moving else None

    def view(self, frame: Frame, tracks: Tracks | None = None) -> View:
        """The view of this frame (call once per frame, in order); `tracks` are this frame's:
        people and vehicles among them are no static objects."""
        offset = self._ego.update(frame.image) if self._ego is not None else (0.0, 0.0)
        if self._static is None:
            return View(offset_px=offset)
        exclude = None
        if tracks is not None and len(tracks):
            actor = np.array([n in ACTORS for n in tracks.labels()], bool)
            exclude = tracks.xyxy[actor & (tracks.score >= 0.2)]
        xyxy, age = self._static.update(frame.image, frame.pts_s, exclude)
        return View(offset_px=offset, static_xyxy=xyxy, static_age_s=age)
