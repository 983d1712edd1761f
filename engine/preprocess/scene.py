"""Scene models per source that rules need beyond detections: the camera's own motion (drones),
and the background's new static regions (objects left behind, on fixed cameras).

Both work on a small grey copy of the frame (a quarter of each side), so they cost about a
millisecond per frame.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["EgoMotion", "StaticForeground", "small_grey"]

F32 = npt.NDArray[np.float32]


def small_grey(image: npt.NDArray[np.uint8], scale: int) -> F32:
    """Grey float32 copy of a BGR image, each side divided by `scale` (area average)."""
    h, w = image.shape[:2]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (max(1, w // scale), max(1, h // scale)), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32)


class EgoMotion:
    """The image shift caused by the camera moving, accumulated since the first frame.

    Phase correlation of each frame against a key frame (translation only: a drone flying a
    straight line with a steady gimbal); the key frame is renewed when the view has slid a fifth
    of its size, so sub-pixel errors add up once per key frame, not once per frame.
    `offset_px` is what to add to image coordinates to get scene coordinates that stay put while
    the camera moves.

    Args:
        scale: work on frames this many times smaller per side.
        min_response: a correlation peak weaker than this (a featureless or changed view) is
            ignored: the frame counts as not moved.
    """

    def __init__(
        self, scale: int = 4, min_response: float = 0.05, max_jerk_px: float = 12.0
    ) -> None:
        self.scale = scale
        self.min_response = min_response
        self.max_jerk_px = max_jerk_px
        self._key: F32 | None = None
        self._key_offset = (0.0, 0.0)
        self._window: F32 | None = None
        self._velocity = (0.0, 0.0)  # offset change per frame, smoothed
        self._accepted = 0  # measurements accepted so far
        self.offset_px = (0.0, 0.0)

    def update(self, image: npt.NDArray[np.uint8]) -> tuple[float, float]:
        """Take the next frame; returns the accumulated offset (x, y) in image pixels.

        A measurement that jumps more than `max_jerk_px` from the motion of the frames before
        (moving objects or a repetitive texture fooled the correlation) is replaced by that
        motion, and the key frame restarts here. The first five measurements are taken as they
        come: a pan may already be under way when the stream starts.
        """
        cur = small_grey(image, self.scale)
        key = self._key
        if key is None or key.shape != cur.shape:
            self._key, self._key_offset = cur, self.offset_px
            return self.offset_px
        if self._window is None or self._window.shape != cur.shape:
            window = cv2.createHanningWindow((cur.shape[1], cur.shape[0]), cv2.CV_32F)
            self._window = np.asarray(window, np.float32)
        (dx, dy), response = cv2.phaseCorrelate(key, cur, self._window)
        ox, oy = self.offset_px
        vx, vy = self._velocity
        predicted = (ox + vx, oy + vy)
        kx, ky = self._key_offset
        measured = (kx - dx * self.scale, ky - dy * self.scale)
        ok = response >= self.min_response and math.isfinite(dx) and math.isfinite(dy)
        jump = math.hypot(measured[0] - predicted[0], measured[1] - predicted[1])
        # the first measurements have no motion to compare with (a pan may already be under way)
        if ok and (jump <= self.max_jerk_px or self._accepted < 5):
            self._accepted += 1
            new = measured
            h, w = cur.shape
            rebase = abs(dx) > w / 10 or abs(dy) > h / 10
        else:
            new, rebase = predicted, True
        if self._accepted <= 5:  # learning the motion: follow the measurements closely
            self._velocity = (new[0] - ox, new[1] - oy)
        else:
            self._velocity = (0.7 * vx + 0.3 * (new[0] - ox), 0.7 * vy + 0.3 * (new[1] - oy))
        self.offset_px = new
        if rebase:
            self._key, self._key_offset = cur, new
        return self.offset_px


_WARMUP_SAMPLES = 16  # frames of the warm-up whose median starts the slow background


class StaticForeground:
    """New, still regions against a slow background: things left behind (a pile, a bag).

    Two running averages of the grey frame: a fast one (seconds) and a slow one (a minute).
    Where they differ and the frame matches the fast one, something new has been standing
    still; the slow background absorbs it after about `slow_s`. Regions are followed from frame
    to frame so each has an age, and a region missing for up to `hold_s` (someone walked in
    front of the bag, a box covered it) keeps its age when it shows again.

    Args:
        scale: work on frames this many times smaller per side.
        fast_s, slow_s: time constants of the two backgrounds.
        warmup_s: the slow background starts as the per-pixel median of frames sampled over this
            long, so what passes by, or stands for less than half of it (someone waiting as
            the stream starts), leaves no ghost in it.
        threshold: grey-level difference that counts.
        min_cells: smallest region, in cells of the small frame.
        hold_s: how long a region that is not seen keeps its first-seen time.
    """

    def __init__(
        self,
        scale: int = 4,
        fast_s: float = 1.0,
        slow_s: float = 90.0,
        threshold: float = 22.0,
        min_cells: int = 4,
        warmup_s: float = 10.0,
        hold_s: float = 5.0,
    ) -> None:
        self.scale = scale
        self.fast_s = fast_s
        self.slow_s = slow_s
        self.threshold = threshold
        self.min_cells = min_cells
        self.warmup_s = warmup_s
        self.hold_s = hold_s
        self._t0 = 0.0
        self._samples: list[F32] = []
        self._fast: F32 | None = None
        self._slow: F32 | None = None
        self._pts = 0.0
        # (xyxy, first seen, last seen) of the regions seen within hold_s
        self._regions: list[tuple[npt.NDArray[np.float32], float, float]] = []
        self._kernel = np.ones((3, 3), np.uint8)

    def update(
        self, image: npt.NDArray[np.uint8], pts: float, exclude_xyxy: F32 | None = None
    ) -> tuple[F32, F32]:
        """Take the next frame; returns (xyxy f32 [n, 4] in image pixels, age_s f32 [n]).

        `exclude_xyxy` (image pixels): boxes of people and vehicles seen now; what stands still
        inside them is not reported, so a pile beside a stopped truck is a region of its own.
        """
        g = small_grey(image, self.scale)
        if self._fast is None or self._slow is None or self._fast.shape != g.shape:
            self._fast, self._slow, self._pts, self._t0 = g.copy(), g.copy(), pts, pts
            self._regions, self._samples = [], [g]
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        dt = max(0.0, pts - self._pts)
        self._pts = pts
        a_fast = 1.0 - math.exp(-dt / self.fast_s)
        a_slow = 1.0 - math.exp(-dt / self.slow_s)
        if self._samples:  # warming up: sample, then start from the median
            cv2.accumulateWeighted(g, self._fast, a_fast)
            due = self._t0 + len(self._samples) * self.warmup_s / _WARMUP_SAMPLES
            if pts >= due:
                self._samples.append(g)
            if pts - self._t0 >= self.warmup_s:
                self._slow = np.median(np.stack(self._samples), axis=0).astype(np.float32)
                self._samples = []
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        cv2.accumulateWeighted(g, self._fast, a_fast)
        still_new = (np.abs(self._fast - self._slow) > self.threshold) & (
            np.abs(g - self._fast) < self.threshold
        )
        # the slow background learns everywhere, ten times slower where something new stands
        rate = np.where(still_new, a_slow / 10, a_slow).astype(np.float32)
        self._slow += rate * (g - self._slow)
        mask = cv2.morphologyEx(still_new.astype(np.uint8), cv2.MORPH_OPEN, self._kernel)
        if exclude_xyxy is not None and len(exclude_xyxy):
            cells = np.round(exclude_xyxy / self.scale).astype(np.int32)
            for x1, y1, x2, y2 in cells:
                mask[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = 0
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes = [stats[i, :4] for i in range(1, n) if stats[i, 4] >= self.min_cells]
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], np.float32).reshape(-1, 4)
        xyxy *= self.scale
        return xyxy, self._ages(xyxy, pts)

    def _ages(self, xyxy: F32, pts: float) -> F32:
        """Carry each region's first-seen time over from the region it overlaps most (seen
        now or within hold_s)."""
        regions: list[tuple[npt.NDArray[np.float32], float, float]] = []
        used: set[int] = set()
        for box in xyxy:
            first = pts
            best, match = 0.3, -1
            for k, (old, seen, _) in enumerate(self._regions):
                iw = min(box[2], old[2]) - max(box[0], old[0])
                ih = min(box[3], old[3]) - max(box[1], old[1])
                if iw <= 0 or ih <= 0:
                    continue
                inter = iw * ih
                union = (
                    (box[2] - box[0]) * (box[3] - box[1])
                    + (old[2] - old[0]) * (old[3] - old[1])
                    - inter
                )
                if inter / union > best:
                    best, first, match = inter / union, min(first, seen), k
            used.add(match)
            regions.append((box, first, pts))
        ages = np.array([pts - first for _, first, _ in regions], np.float32)
        held = [
            r for k, r in enumerate(self._regions) if k not in used and pts - r[2] <= self.hold_s
        ]
        self._regions = regions + held
        return ages
