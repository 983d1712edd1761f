"""A scenario made ready to render: ground, actors, sensor and light, all from the seed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.sim.render import FrameTruth, Renderer, lighting_for
from engine.sim.scenario import DroneSensor, Scenario
from engine.sim.script import build_script
from engine.sim.sensor import SensorPose, SensorRig
from engine.sim.world import render_ground
from engine.sim.writer import ScenarioWriter

__all__ = ["RenderResult", "Simulation", "render_scenario"]


class Simulation:
    """Everything needed to render any frame of a scenario, deterministically.

    Args:
        scenario: the validated scenario.
        seed: overrides the scenario's seed (same scenario, other randomness).
    """

    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        ground_rng, script_rng, light_rng, rig_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(4)
        )
        self.ground = render_ground(scenario.world, ground_rng, scenario.world.ppm)
        self.script = build_script(scenario, script_rng, self.ground)
        self.rig = SensorRig(scenario.sensor, scenario.world.origin, scenario.duration_s, rig_rng)
        self.lighting = lighting_for(scenario.sensor.effects, light_rng)
        self.renderer = Renderer(
            self.ground, self.script.actors, scenario.sensor.effects, self.lighting, self.seed
        )
        self.n_frames = round(scenario.duration_s * scenario.fps)

    def time_of(self, index: int) -> float:
        """Stream time of frame `index`, seconds."""
        return index / self.scenario.fps

    def frame(self, index: int) -> tuple[npt.NDArray[np.uint8], list[FrameTruth], SensorPose]:
        """Image, object truth and sensor pose of frame `index`."""
        t = self.time_of(index)
        pose = self.rig.pose(t)
        image, truths = self.renderer.render(pose.camera, t, index)
        return image, truths, pose


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What `render_scenario` wrote, and how long it took."""

    video: Path
    truth: Path
    srt: Path | None
    frames: int
    seconds: float


def render_scenario(
    scenario: Scenario,
    out_dir: Path,
    seed: int | None = None,
    frames_every: int = 0,
    max_frames: int | None = None,
    progress: Any = None,
) -> RenderResult:
    """Render a scenario to video, telemetry and ground truth in `out_dir`.

    Args:
        scenario: what to render.
        out_dir: where to write (created).
        seed: overrides the scenario's seed.
        frames_every: also write every Nth frame with YOLO labels (0: none).
        max_frames: stop early (for quick looks and tests).
        progress: called with (done, total) after each frame.
    """
    t0 = time.monotonic()
    sim = Simulation(scenario, seed)
    sensor = scenario.sensor
    drone = isinstance(sensor, DroneSensor)
    start = datetime.fromisoformat(scenario.start_utc.replace("Z", "+00:00"))
    writer = ScenarioWriter(
        out_dir,
        sensor.id,
        drone,
        sensor.resolution,
        scenario.fps,
        start,
        platform=sensor.platform if isinstance(sensor, DroneSensor) else "",
        frames_every=frames_every,
    )
    total = sim.n_frames if max_frames is None else min(sim.n_frames, max_frames)
    for i in range(total):
        image, truths, pose = sim.frame(i)
        writer.add(i, sim.time_of(i), image, pose.camera.to_dict(), pose.telemetry, truths)
        if progress is not None:
            progress(i + 1, total)
    header = {
        "scenario": scenario.name,
        "description": scenario.description,
        "seed": sim.seed,
        "fps": scenario.fps,
        "frames_total": total,
        "duration_s": total / scenario.fps,
        "start_utc": scenario.start_utc,
        "sensor": sim.rig.describe(),
        "origin": scenario.world.origin.model_dump(),
        "areas": [a.model_dump(mode="json") for a in scenario.world.areas],
        "lighting": {"gain": sim.lighting.gain, "shadow": sim.lighting.shadow},
    }
    rendered_s = total / scenario.fps
    events = [
        {**e.to_dict(), "end_s": round(min(e.end_s, rendered_s), 3)}
        for e in sim.script.events
        if e.start_s < rendered_s
    ]
    truth = writer.close(header, events)
    return RenderResult(writer.video_path, truth, writer.srt_path, total, time.monotonic() - t0)
