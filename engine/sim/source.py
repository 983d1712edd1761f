"""A simulation as a source: frames rendered on demand, with their truth beside them.

Frames are stamped as captured at the scenario's own pace (first frame at `open`), however
fast they are rendered, so every run of a bench sees the same timestamps.

The benchmarks that score events and fusion against the simulator's truth feed the engine's own
source loop and pipeline from this source, so that what they measure is the engine, not a copy
of it. Rendering is timed apart (`render_s`), so a bench can report the engine's speed alone.
"""

from __future__ import annotations

import time

from engine.config import SourceConfig
from engine.sim.render import FrameTruth
from engine.sim.simulation import Simulation
from engine.types import Frame

__all__ = ["SimSource"]


class SimSource:
    """Renders a simulation's frames in order, as fast as they are read.

    Args:
        cfg: the config of the source it stands for (its id is the one its frames carry).
        sim: the simulation.
        max_frames: stop after this many frames (None: the whole scenario).
    """

    def __init__(self, cfg: SourceConfig, sim: Simulation, max_frames: int | None = None) -> None:
        self.id = cfg.id
        self.cfg = cfg
        self.sim = sim
        self.frames = sim.n_frames if max_frames is None else min(sim.n_frames, max_frames)
        self.position = -1  # of the last frame read
        self.truths: list[FrameTruth] = []  # the last frame's
        self.render_s = 0.0  # seconds spent rendering, all frames
        self._t0_ns = 0  # capture time of the first frame; the others by scenario time
        self._opened = False
        self._closed = False

    @property
    def fps(self) -> float:
        """The scenario's frame rate."""
        return float(self.sim.scenario.fps)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the sensor."""
        w, h = self.sim.scenario.sensor.resolution
        return int(w), int(h)

    @property
    def dropped(self) -> int:
        """Never: every frame is rendered when it is read."""
        return 0

    @property
    def queued(self) -> int:
        """Never any: frames are rendered on demand."""
        return 0

    def open(self) -> None:
        """Nothing to start: frames are rendered in the reading thread."""
        self._opened = True
        self._t0_ns = time.monotonic_ns()

    def read(self) -> Frame | None:
        """The next frame, with its telemetry (drones); None at the end or once closed."""
        if not self._opened:
            raise RuntimeError(f"source {self.id}: read() before open()")
        index = self.position + 1
        if self._closed or index >= self.frames:
            return None
        t0 = time.perf_counter()
        image, self.truths, pose = self.sim.frame(index)
        self.render_s += time.perf_counter() - t0
        self.position = index
        t = self.sim.time_of(index)
        # captured as a camera would: by scenario time, so what compares capture times (the
        # incident merger's window) does not depend on how fast this machine renders
        capture_ns = self._t0_ns + round(t * 1e9)
        return Frame(self.id, index, t, capture_ns, image, pose.telemetry)

    def close(self) -> None:
        """A later `read` returns None."""
        self._closed = True
