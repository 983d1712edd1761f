"""Motion gating: a cheap score per frame decides whether the detector runs.

Numba kernels shrink the frame to a grey image of `step_px` x `step_px` block means (noise and
compression speckle average out), compare it with a running background, and return the fraction
of blocks (optionally only inside the source's zones) that changed by more than `pixel_delta`.
The detector runs when that fraction reaches `min_fraction`, for `hold_s` after, on the first
frame, and at least every `force_every_s` of stream time, so that parked vehicles and debris
piles stay observed. On skipped frames the last detections stand.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from engine.config import MotionConfig
from engine.preprocess.kernels import block_grey, motion_kernel

__all__ = ["MotionGate"]


class MotionGate:
    """Per-source gate; not thread-safe (one per source thread). What it saves is counted
    where the detector is called: `SourceInference.frames` against `.inferences`.

    Args:
        cfg: thresholds and timings.
        zones: polygons in pixels that matter (used when `cfg.zones_only`).
    """

    def __init__(
        self, cfg: MotionConfig, zones: Sequence[Sequence[tuple[float, float]]] = ()
    ) -> None:
        self.cfg = cfg
        self.zones = [np.asarray(z, np.float32) for z in zones]
        self._background: npt.NDArray[np.float32] | None = None
        self._mask: npt.NDArray[np.uint8] | None = None
        self._last_run_s = -np.inf
        self._last_motion_s = -np.inf

    def should_detect(self, image: npt.NDArray[np.uint8], pts_s: float) -> bool:
        """Update the background with this frame; True if the detector should run on it."""
        step = max(1, min(self.cfg.step_px, image.shape[0], image.shape[1]))
        h, w = image.shape[:2]
        bh, bw = h // step, w // step
        grey = np.empty((bh, bw), np.float32)
        block_grey(image, step, grey)
        if self._background is None or self._background.shape != (bh, bw):
            self._background = grey
            self._mask = self._zone_mask(h, w, bh, bw)
            return self._run(pts_s)
        assert self._mask is not None
        score = motion_kernel(
            grey,
            self._background,
            np.float32(self.cfg.adapt),
            np.float32(self.cfg.pixel_delta),
            self._mask,
        )
        if score >= self.cfg.min_fraction and score > 0:
            self._last_motion_s = pts_s
        moving = pts_s - self._last_motion_s <= self.cfg.hold_s
        if moving or pts_s - self._last_run_s >= self.cfg.force_every_s:
            return self._run(pts_s)
        return False

    def _run(self, pts_s: float) -> bool:
        self._last_run_s = pts_s
        return True

    def _zone_mask(self, h: int, w: int, bh: int, bw: int) -> npt.NDArray[np.uint8]:
        if not (self.cfg.zones_only and self.zones):
            return np.ones((bh, bw), np.uint8)
        mask = np.zeros((bh, bw), np.uint8)
        sx, sy = bw / w, bh / h
        for z in self.zones:
            pts = np.round(z * np.array([sx, sy], np.float32)).astype(np.int32)
            cv2.fillPoly(mask, [pts], 1)
        return mask
