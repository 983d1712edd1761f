"""ByteTrack, per source: Kalman prediction, two-stage association, lost-track buffer.

Each frame, high-score detections are matched to every live track (tracked or lost) by IoU with
an optimal assignment (lap's Jonker-Volgenant solver); low-score detections then rescue tracks
still unmatched (occlusions lower scores before they remove boxes); new tracks start from
unmatched high-score detections and are confirmed by a second hit; tracks unseen for
`lost_s` seconds die. Matching never crosses classes.

Beyond the reference: time steps come from stream timestamps (skipped or gated frames predict
further), tracks carry their velocity in px/s, and a track whose box has not moved for
`stationary_s` is flagged stationary, stops drifting with its velocity, and is kept through much
longer gaps (`stationary_lost_s`) so that parked trucks and debris piles keep their ids.
Ended track ids are reported each step so that rules can free their state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lap
import numba as nb
import numpy as np
import numpy.typing as npt

from engine.config.tracking import TrackingConfig
from engine.track import kalman
from engine.types import Detections, Tracks

__all__ = ["ByteTracker", "iou_matrix"]

F32 = npt.NDArray[np.float32]


@nb.njit(nogil=True, cache=True, fastmath=True)
def iou_matrix(a: F32, b: F32) -> F32:
    """IoU of every box in a [n, 4] with every box in b [m, 4] (xyxy) -> [n, m]."""
    n, m = a.shape[0], b.shape[0]
    out = np.zeros((n, m), np.float32)
    for i in range(n):
        ax1, ay1, ax2, ay2 = a[i, 0], a[i, 1], a[i, 2], a[i, 3]
        area_a = max(ax2 - ax1, 0.0) * max(ay2 - ay1, 0.0)
        for j in range(m):
            iw = min(ax2, b[j, 2]) - max(ax1, b[j, 0])
            if iw <= 0:
                continue
            ih = min(ay2, b[j, 3]) - max(ay1, b[j, 1])
            if ih <= 0:
                continue
            inter = iw * ih
            union = area_a + max(b[j, 2] - b[j, 0], 0.0) * max(b[j, 3] - b[j, 1], 0.0) - inter
            if union > 0:
                out[i, j] = inter / union
    return out


# The fixed parts of ByteTrack (the paper's gates; `TrackingConfig` holds what a site tunes).
# Matching takes every box from `high_score` (0.25, the detectors' default threshold; the paper's
# 0.5 would starve the first stage), but a track is born only from a confident box
# (`new_track_score`, 0.6 as in the paper): a noisy detector then makes far fewer false tracks.
LOW_SCORE = 0.1  # second stage: detections between this and high_score
MATCH_IOU = 0.2  # first stage: IoU at least this (cost 1 - IoU <= 0.8)
LOW_MATCH_IOU = 0.5  # second stage
UNCONFIRMED_IOU = 0.3  # tracks seen once (not yet confirmed): IoU at least this
STATIONARY_PX = 0.1  # "still": moved less than this fraction of its size
FPS_HINT = 30.0  # frame period for the Kalman step until timestamps tell


@dataclass(slots=True)
class _Track:
    track_id: int
    class_id: int
    score: float
    first_s: float
    last_s: float  # last matched
    confirmed: bool = False
    anchor_xy: tuple[float, float] = (0.0, 0.0)  # where it was when it last moved
    anchor_s: float = 0.0
    stationary: bool = False
    hits: int = 1


@dataclass(slots=True)
class _State:
    mean: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 8)))
    cov: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 8, 8)))


class ByteTracker:
    """Tracks of one source. Not thread-safe: one per source thread.

    Args:
        config: the tracking section's thresholds and timings (None: its defaults); its
            `enabled` is the caller's business. A track may match any class of its
            `class_groups` (a truck seen as a car from above keeps its identity) and takes the
            latest class.
        class_names: the detector's names (carried on the tracks).
    """

    def __init__(
        self, config: TrackingConfig | None = None, class_names: tuple[str, ...] = ()
    ) -> None:
        self.config = config if config is not None else TrackingConfig()
        self.class_names = class_names
        self.ended: list[int] = []  # ids that ended in the last step
        self._tracks: list[_Track] = []
        self._state = _State()
        self._next_id = 1
        self._last_s: float | None = None
        self._period_s = 1.0 / FPS_HINT
        self._steps = 0  # frame periods measured
        # match key per class id: the first class id of its group, else its own id
        self._group = {i: i for i in range(len(class_names))}
        for group in self.config.class_groups:
            ids = [class_names.index(n) for n in group if n in class_names]
            for i in ids:
                self._group[i] = ids[0]

    def __len__(self) -> int:
        return len(self._tracks)

    def update(self, dets: Detections, pts_s: float) -> Tracks:
        """Associate this frame's detections; returns the confirmed tracks seen now."""
        s = self.config
        self.ended = []
        if self._last_s is not None and pts_s > self._last_s:
            step = pts_s - self._last_s
            known = self._steps > 0
            self._period_s = min(0.9 * self._period_s + 0.1 * step, step) if known else step
            self._steps += 1
        dt_frames = (pts_s - self._last_s) / self._period_s if self._last_s is not None else 1.0
        self._last_s = pts_s
        self._predict(max(dt_frames, 0.0))
        keep = dets.score >= LOW_SCORE
        xyxy = dets.xyxy[keep].astype(np.float32)
        score = dets.score[keep]
        cls = dets.class_id[keep]
        high = np.flatnonzero(score >= s.high_score)
        low = np.flatnonzero(score < s.high_score)
        boxes = self._boxes()
        all_idx = np.arange(len(self._tracks))
        confirmed = np.array([t.confirmed for t in self._tracks], bool)
        matched_det = np.zeros(len(xyxy), bool)
        matched_trk = np.zeros(len(self._tracks), bool)
        pairs: list[tuple[int, int]] = []

        def assign(
            trk: npt.NDArray[np.intp], det: npt.NDArray[np.intp], min_iou: float, fuse: bool
        ) -> None:
            if len(trk) == 0 or len(det) == 0:
                return
            iou = iou_matrix(boxes[trk], xyxy[det])
            g = self._group
            trk_cls = np.array(
                [g.get(self._tracks[i].class_id, self._tracks[i].class_id) for i in trk]
            )
            det_cls = np.array([g.get(int(c), int(c)) for c in cls[det]])
            iou[trk_cls[:, None] != det_cls[None, :]] = 0.0
            # ByteTrack fuses the detection score into the cost of the high-score stages
            cost = 1.0 - iou * (score[det][None, :] if fuse else 1.0)
            _, x, _ = lap.lapjv(cost.astype(np.float64), extend_cost=True, cost_limit=1.0 - min_iou)
            for r, c in enumerate(x):
                if c >= 0:
                    pairs.append((int(trk[r]), int(det[c])))
                    matched_trk[trk[r]] = True
                    matched_det[det[c]] = True

        assign(all_idx[confirmed], high, MATCH_IOU, fuse=True)
        rest = all_idx[confirmed & ~matched_trk & self._seen_last_frame()]
        assign(rest, low, LOW_MATCH_IOU, fuse=False)
        assign(all_idx[~confirmed], high[~matched_det[high]], UNCONFIRMED_IOU, fuse=True)
        self._correct(pairs, xyxy, score, cls, pts_s)
        # unconfirmed tracks that missed their second hit die at once
        dead = {i for i in all_idx[~confirmed & ~matched_trk]}
        for i, t in enumerate(self._tracks):
            limit = s.stationary_lost_s if t.stationary else s.lost_s
            if i not in dead and pts_s - t.last_s > limit:
                dead.add(i)
        dead |= self._duplicates(pts_s)
        self._drop(dead)
        self._birth(xyxy, score, cls, high[~matched_det[high]], pts_s)
        return self._output(pts_s)

    # --- steps --------------------------------------------------------------------------------

    def _boxes(self) -> F32:
        if not self._tracks:
            return np.zeros((0, 4), np.float32)
        return kalman.xyah_to_xyxy(self._state.mean[:, :4]).astype(np.float32)

    def _seen_last_frame(self) -> npt.NDArray[np.bool_]:
        """Tracks matched in the previous frame (the second stage only rescues those)."""
        now = self._last_s or 0.0
        return np.array([now - t.last_s <= 1.5 * self._period_s for t in self._tracks], bool)

    def _predict(self, dt: float) -> None:
        if not self._tracks:
            return
        st = self._state
        still = np.array([t.stationary for t in self._tracks], bool)
        st.mean[still, 4:] = 0.0  # a parked truck does not drift with noise
        st.mean, st.cov = kalman.predict(st.mean, st.cov, np.full(len(self._tracks), dt))
        st.mean[:, 3] = np.maximum(st.mean[:, 3], 1e-3)

    def _correct(
        self,
        pairs: list[tuple[int, int]],
        xyxy: F32,
        score: npt.NDArray[np.float32],
        cls: npt.NDArray[np.int32],
        now: float,
    ) -> None:
        if not pairs:
            return
        ti = np.array([p[0] for p in pairs])
        di = np.array([p[1] for p in pairs])
        st = self._state
        mean, cov = kalman.update(st.mean[ti], st.cov[ti], kalman.xyxy_to_xyah(xyxy[di]))
        st.mean[ti], st.cov[ti] = mean, cov
        s = self.config
        for k, (i, d) in enumerate(pairs):
            t = self._tracks[i]
            t.score, t.last_s, t.hits = float(score[d]), now, t.hits + 1
            t.confirmed = True
            cx, cy, _, h = mean[k, :4]
            w = mean[k, 2] * h
            moved = np.hypot(cx - t.anchor_xy[0], cy - t.anchor_xy[1])
            if moved > STATIONARY_PX * max(min(w, h), 1.0):
                t.anchor_xy, t.anchor_s, t.stationary = (float(cx), float(cy)), now, False
            elif now - t.anchor_s >= s.stationary_s:
                t.stationary = True
            t.class_id = int(cls[d])

    def _duplicates(self, now: float) -> set[int]:
        """A track lost now that overlaps a track seen now almost entirely (IoU > 0.85) is the
        same object twice: the younger of the two goes (as ByteTrack's remove_duplicate)."""
        seen = [i for i, t in enumerate(self._tracks) if t.last_s == now and t.confirmed]
        lost = [i for i, t in enumerate(self._tracks) if t.last_s < now and t.confirmed]
        if not seen or not lost:
            return set()
        boxes = self._boxes()
        iou = iou_matrix(boxes[seen], boxes[lost])
        out = set()
        for a, b in zip(*np.nonzero(iou > 0.85), strict=True):
            i, j = seen[a], lost[b]
            ti, tj = self._tracks[i], self._tracks[j]
            out.add(i if now - ti.first_s < now - tj.first_s else j)
        return out

    def _drop(self, dead: set[int]) -> None:
        if not dead:
            return
        self.ended = [self._tracks[i].track_id for i in sorted(dead) if self._tracks[i].confirmed]
        alive = np.array([i not in dead for i in range(len(self._tracks))], bool)
        self._tracks = [t for t, a in zip(self._tracks, alive, strict=True) if a]
        self._state.mean = self._state.mean[alive]
        self._state.cov = self._state.cov[alive]

    def _birth(
        self,
        xyxy: F32,
        score: npt.NDArray[np.float32],
        cls: npt.NDArray[np.int32],
        cand: npt.NDArray[np.intp],
        now: float,
    ) -> None:
        new = cand[score[cand] >= self.config.new_track_score]
        if len(new) == 0:
            return
        z = kalman.xyxy_to_xyah(xyxy[new])
        mean, cov = kalman.initiate(z)
        st = self._state
        st.mean = np.concatenate([st.mean, mean])
        st.cov = np.concatenate([st.cov, cov])
        first_frame = not self._tracks and self._next_id == 1
        for k, d in enumerate(new):
            t = _Track(
                self._next_id,
                int(cls[d]),
                float(score[d]),
                now,
                now,
                confirmed=first_frame,
                anchor_xy=(float(z[k, 0]), float(z[k, 1])),
                anchor_s=now,
            )
            self._next_id += 1
            self._tracks.append(t)

    def _output(self, now: float) -> Tracks:
        live = [i for i, t in enumerate(self._tracks) if t.confirmed and t.last_s == now]
        if not live:
            return Tracks.empty(self.class_names)
        idx = np.array(live)
        mean = self._state.mean[idx]
        xyxy = kalman.xyah_to_xyxy(mean[:, :4]).astype(np.float32)
        vel = (mean[:, 4:6] / self._period_s).astype(np.float32)  # px per frame -> px/s
        tracks = [self._tracks[i] for i in live]
        return Tracks(
            xyxy=xyxy,
            score=np.array([t.score for t in tracks], np.float32),
            class_id=np.array([t.class_id for t in tracks], np.int32),
            track_id=np.array([t.track_id for t in tracks], np.int64),
            class_names=self.class_names,
            velocity=vel,
            stationary=np.array([t.stationary for t in tracks], bool),
        )
