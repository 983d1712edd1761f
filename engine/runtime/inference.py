"""What one source's thread does to get detections for a frame: motion gate, tiles, detector.

On a still frame (motion gating) the last detections stand and the detector is not called.
With tiling, the frame (if asked) and its tiles go to the detector together — one batch — and
their detections are merged. The detector is called directly, or through the shared batcher
that groups frames of several sources into one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from engine.config import MotionConfig, TilingConfig
from engine.preprocess.motion import MotionGate
from engine.preprocess.tiling import merge_tiles, tile_windows
from engine.types import Detections, Frame

__all__ = ["DetectFn", "SourceInference"]

DetectFn = Callable[[list[npt.NDArray[np.uint8]]], list[Detections]]


class SourceInference:
    """Per-source detection (not thread-safe: one per source thread).

    Args:
        detect: runs the detector on images (direct, or through the batcher).
        motion: gating settings, or None (detect every frame).
        tiling: tiling settings, or None (whole frame only).
        zones: the source's zone polygons (for motion inside zones only).
        max_det: detections kept after merging tiles.
    """

    def __init__(self, detect: DetectFn, motion: MotionConfig | None = None,
                 tiling: TilingConfig | None = None,
                 zones: Sequence[Sequence[tuple[float, float]]] = (),
                 max_det: int = 300) -> None:  # fmt: skip
        self._detect = detect
        self.gate = MotionGate(motion, zones) if motion else None
        self.tiling = tiling
        self.max_det = max_det
        self.frames = 0
        self.inferences = 0
        self._last: Detections | None = None

    def detections(self, frame: Frame) -> Detections:
        """Detections for this frame (the last ones again if the gate says nothing moved)."""
        self.frames += 1
        # the gate sees every frame (its background follows the scene); until there are
        # detections to reuse, the detector runs whatever it says
        still = self.gate is not None and not self.gate.should_detect(frame.image, frame.pts_s)
        if still and self._last is not None:
            return self._last
        self.inferences += 1
        self._last = self._run(frame.image)
        return self._last

    def _run(self, image: npt.NDArray[np.uint8]) -> Detections:
        if self.tiling is None:
            return self._detect([image])[0]
        h, w = image.shape[:2]
        windows = tile_windows(h, w, self.tiling)
        if self.tiling.full_frame:
            windows = [(0, 0, w, h), *windows]
        crops = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in windows]
        return merge_tiles(self._detect(crops), windows, max_det=self.max_det)
