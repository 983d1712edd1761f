"""What one source's thread does to get detections for a frame: motion gate, tiles, detector.

On a still frame (motion gating) the last detections stand and the detector is not called.
With tiling, the frame (if asked) and its tiles go to the detector together — one batch — and
their detections are merged. Several frames of one source that were already waiting (a
recorded file replayed as fast as possible, or a live feed the engine fell behind on) go to
the detector in one call too. The detector is called directly, or through the shared batcher
that groups frames of several sources into one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from engine.config import MotionConfig, TilingConfig
from engine.detect.tiling import merge_tiles, tile_windows
from engine.preprocess.motion import MotionGate
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

    def __init__(
        self,
        detect: DetectFn,
        motion: MotionConfig | None,
        tiling: TilingConfig | None,
        zones: Sequence[Sequence[tuple[float, float]]],
        max_det: int,
    ) -> None:
        self._detect = detect
        self.gate = MotionGate(motion, zones) if motion else None
        self.tiling = tiling
        self.max_det = max_det
        self.frames = 0
        self.inferences = 0
        self._last: Detections | None = None

    def detections(self, frame: Frame) -> Detections:
        """Detections for this frame (the last ones again if the gate says nothing moved)."""
        return self.detections_many([frame])[0]

    def detections_many(self, frames: Sequence[Frame]) -> list[Detections]:
        """Detections for consecutive frames of this source, those to detect in one call."""
        # the gate sees every frame (its background follows the scene); until there are
        # detections to reuse, the detector runs whatever it says
        run: list[int] = []  # frames that go to the detector
        reuse: list[int] = []  # per frame: index into `run` whose detections it takes, or -1
        for frame in frames:
            self.frames += 1
            still = self.gate is not None and not self.gate.should_detect(frame.image, frame.pts_s)
            if still and (run or self._last is not None):
                reuse.append(len(run) - 1)
                continue
            reuse.append(len(run))
            run.append(len(reuse) - 1)
        self.inferences += len(run)
        found = self._run([frames[i].image for i in run]) if run else []
        out = [found[k] if k >= 0 else self._last for k in reuse]
        self._last = out[-1]
        return out  # type: ignore[return-value]

    def _run(self, images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        if self.tiling is None:
            return self._detect(images)
        crops: list[npt.NDArray[np.uint8]] = []
        spans: list[tuple[int, list[tuple[int, int, int, int]]]] = []
        for image in images:
            h, w = image.shape[:2]
            windows = tile_windows(h, w, self.tiling)
            if self.tiling.full_frame:
                windows = [(0, 0, w, h), *windows]
            spans.append((len(crops), windows))
            crops += [image[y0:y1, x0:x1] for x0, y0, x1, y1 in windows]
        found = self._detect(crops)
        return [
            merge_tiles(found[k : k + len(wins)], wins, max_det=self.max_det) for k, wins in spans
        ]
