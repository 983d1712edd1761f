"""Global tracks: one identity per object on the ground, whichever sensors see it.

Each source's tracks arrive with ground positions (metres) and their stream time, shifted by the
source's clock offset onto one time base. A local track keeps the global track it was first
given (sticky links); a new local track — a new object, or a sensor's own id switch — is matched
to the global tracks not fed by that sensor's current tracks, so an id switch keeps the global
identity; new local tracks are matched to global tracks of the same class group by ground
distance after predicting them to the local track's time (constant velocity), within a gate,
with an assignment solver (lap); what matches nothing starts a global track. Global tracks not
seen for `lost_s` end, and their links go with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lap
import numpy as np
import numpy.typing as npt

from engine.types import Tracks

__all__ = ["GlobalTrack", "WorldTracker"]

F64 = npt.NDArray[np.float64]


@dataclass(slots=True)
class GlobalTrack:
    """One object in the world.

    Attributes:
        global_id: its identity across sensors.
        label: class name (latest).
        xy: ground position, metres east/north.
        velocity: metres per second.
        last_s: time of the last observation (common time base).
        sensors: the sources that have seen it, with their local track ids.
    """

    global_id: int
    label: str
    xy: F64
    velocity: F64
    last_s: float
    sensors: dict[str, int] = field(default_factory=dict)
    seen: dict[str, tuple[float, F64]] = field(default_factory=dict)  # source -> (t, xy) last

    def predict(self, t: float) -> F64:
        """Position at time t (constant velocity, at most 2 s ahead)."""
        return self.xy + self.velocity * min(2.0, max(-2.0, t - self.last_s))


class WorldTracker:
    """Fuses the tracks of several sensors into global tracks.

    Args (the config's `fusion` section, and `tracking.class_groups`, where their defaults live):
        gate_m: largest ground distance at which a local track may join a global one.
        lost_s: a global track unseen this long ends.
        class_groups: class names that may be the same object (a truck seen as a car).
    """

    def __init__(
        self,
        gate_m: float,
        lost_s: float,
        class_groups: tuple[tuple[str, ...], ...],
    ) -> None:
        self.gate_m = gate_m
        self.lost_s = lost_s
        self._group = {n: g[0] for g in class_groups for n in g}
        self._tracks: dict[int, GlobalTrack] = {}
        self._links: dict[tuple[str, int], int] = {}  # (source, local id) -> global id
        self._next = 1
        self._now: dict[str, float] = {}  # each source's latest time
        self.ended: list[int] = []

    def __len__(self) -> int:
        return len(self._tracks)

    @property
    def tracks(self) -> list[GlobalTrack]:
        """The live global tracks."""
        return list(self._tracks.values())

    def update(self, source: str, tracks: Tracks, t: float) -> npt.NDArray[np.int64]:
        """Take one source's tracks at time t (common time base); returns their global ids
        (-1 where a track has no ground position or no identity)."""
        self.ended = []
        out = np.full(len(tracks), -1, np.int64)
        labels = tracks.labels()
        pending: list[int] = []
        for k in range(len(tracks)):
            tid = int(tracks.track_id[k])
            g = tracks.ground_m[k].astype(np.float64)
            if tid < 0 or not np.all(np.isfinite(g)):
                continue
            gid = self._links.get((source, tid))
            if gid is not None and gid in self._tracks:
                self._observe(self._tracks[gid], g, t, labels[k], source, tid)
                out[k] = gid
            else:
                pending.append(k)
        if pending:
            self._assign(source, tracks, labels, pending, t, out)
        self._expire(source, t)
        return out

    def _assign(
        self,
        source: str,
        tracks: Tracks,
        labels: list[str],
        pending: list[int],
        t: float,
        out: npt.NDArray[np.int64],
    ) -> None:
        taken = {int(x) for x in out if x >= 0}  # fed by this source's tracks seen now
        cands = [g for g in self._tracks.values() if g.global_id not in taken]
        if cands:
            pos = np.array([tracks.ground_m[k] for k in pending], np.float64)
            pred = np.array([g.predict(t) for g in cands])
            cost = np.hypot(pos[:, None, 0] - pred[None, :, 0], pos[:, None, 1] - pred[None, :, 1])
            group = [self._group.get(labels[k], labels[k]) for k in pending]
            cgroup = [self._group.get(g.label, g.label) for g in cands]
            cost[np.array(group)[:, None] != np.array(cgroup)[None, :]] = 1e6
            _, x, _ = lap.lapjv(cost, extend_cost=True, cost_limit=self.gate_m)
        else:
            x = np.full(len(pending), -1)
        for row, k in enumerate(pending):
            tid = int(tracks.track_id[k])
            g = tracks.ground_m[k].astype(np.float64)
            if x[row] >= 0:
                gt = cands[int(x[row])]
            else:
                gt = GlobalTrack(self._next, labels[k], g.copy(), np.zeros(2), t)
                self._tracks[gt.global_id] = gt
                self._next += 1
            self._observe(gt, g, t, labels[k], source, tid)
            self._links[(source, tid)] = gt.global_id
            out[k] = gt.global_id

    def _observe(
        self, gt: GlobalTrack, g: F64, t: float, label: str, source: str, tid: int
    ) -> None:
        prev = gt.seen.get(source)
        if prev is not None and t - prev[0] > 1e-3:
            # velocity from one sensor's own positions: two sensors' small offsets, milliseconds
            # apart, would read as tens of metres per second
            v = (g - prev[1]) / (t - prev[0])
            gt.velocity = 0.7 * gt.velocity + 0.3 * v
        gt.xy = g.copy() if t >= gt.last_s else 0.5 * (gt.xy + g)
        gt.last_s = max(gt.last_s, t)
        gt.label = label
        gt.sensors[source] = tid
        gt.seen[source] = (t, g.copy())

    def _expire(self, source: str, t: float) -> None:
        # each sensor judges by its own clock: one running behind does not age the others' tracks
        self._now[source] = t
        # (and a backstop: a sensor that stopped delivering frames cannot keep tracks forever)
        gone = [
            gid
            for gid, g in self._tracks.items()
            if t - g.last_s > 10 * self.lost_s
            or all(self._now.get(s, t) - seen_t > self.lost_s for s, (seen_t, _) in g.seen.items())
        ]
        for gid in gone:
            del self._tracks[gid]
        if gone:
            dead = set(gone)
            self._links = {k: v for k, v in self._links.items() if v not in dead}
            self.ended = gone

    def forget(self, source: str, track_ids: list[int]) -> None:
        """A source's tracks ended: their links go (the global track lives on if others see it)."""
        for t in track_ids:
            self._links.pop((source, t), None)
