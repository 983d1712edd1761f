"""Rendered scenarios through the engine's own source loop and pipeline, for scoring.

The event and fusion benchmarks score what the engine does against the simulator's truth. They
build each sensor's pipeline with `engine.pipeline.build_pipeline` from a config, exactly as the
runner does, and drive it with `engine.runtime.source_loop.SourceLoop` over a `SimSource`; only
the detect function (the detector, or the true boxes) and `emit` (scoring) are theirs. Several
sensors are stepped in lockstep, frame by frame in a fixed order, so that the shared world
tracker sees the same sequence on every run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.config import Config
from engine.detect.inference import DetectFn
from engine.errors import EngineError
from engine.pipeline import SourcePipeline, build_pipeline, new_world
from engine.runtime.source_loop import Emit, Emitted, SourceLoop
from engine.runtime.supervisor import StageFailed
from engine.sim import Simulation
from engine.sim.source import SimSource
from engine.types import Detections, Event, Frame, HealthEvent, Tracks

__all__ = ["SensorStep", "run_sims", "true_boxes"]


@dataclass(frozen=True)
class SensorStep:
    """What one sensor's pipeline made of one frame (or, without a frame, of its end)."""

    source: SimSource
    pipeline: SourcePipeline  # the pipeline that made it (its `global_ids`, say)
    events: list[Event]
    frame: Frame | None
    tracks: Tracks | None


def true_boxes(source: SimSource, names: tuple[str, ...], min_visibility: float = 0.25) -> DetectFn:
    """A detect function that returns the source's true boxes of its current frame (score 0.9),
    of the objects at least `min_visibility` visible: the geometry and fusion without the
    detector's errors."""

    def detect(images: list[npt.NDArray[np.uint8]]) -> list[Detections]:
        visible = [x for x in source.truths if x.visibility >= min_visibility and x.cls in names]
        boxes = np.array([x.box_xyxy for x in visible], np.float32).reshape(-1, 4)
        dets = Detections(
            boxes,
            np.full(len(visible), 0.9, np.float32),
            np.array([names.index(x.cls) for x in visible], np.int32),
            names,
        )
        return [dets for _ in images]

    return detect


def run_sims(
    cfg: Config,
    sims: Mapping[str, Simulation],
    detect_of: Callable[[SimSource], DetectFn],
    class_names: tuple[str, ...],
    on_step: Callable[[SensorStep], None],
    after_frame: Callable[[int], None] | None = None,
    max_frames: int | None = None,
) -> float:
    """Every sensor's frames through its pipeline, in lockstep; the engine's seconds.

    Args:
        cfg: the config the pipelines are built from (one source per simulation, same ids).
        sims: the simulation each source renders.
        detect_of: the detect function of a source.
        class_names: the detector's classes.
        on_step: receives what each sensor's pipeline made of each frame (scoring).
        after_frame: called with the frame index once every sensor has processed it.
        max_frames: frames per sensor (None: the whole scenarios).

    Returns:
        Seconds the engine spent (rendering and scoring excluded).

    Raises:
        EngineError: a stage failed (a bench does not restart stages: it must not score a
            broken run).
    """
    world = new_world(cfg)
    loops: list[SourceLoop] = []
    spent = [0.0]  # seconds in rendering and scoring, to subtract
    for sid, sim in sims.items():
        scfg = next((c for c in cfg.sources if c.id == sid), None)
        if scfg is None:
            raise EngineError(f"bench run: no source {sid!r} in the config")
        source = SimSource(scfg, sim, max_frames=max_frames)
        pipes: list[SourcePipeline] = []  # the latest, also while it closes
        detect = detect_of(source)

        def make(
            source_id: str = sid, det: DetectFn = detect, made: list[SourcePipeline] = pipes
        ) -> SourcePipeline:
            made[:] = [build_pipeline(cfg, source_id, det, class_names, world)]
            return made[0]

        emit = _scorer(source, pipes, on_step, spent)
        loops.append(SourceLoop(source, make, emit, _ignore))
        source.open()
    t0 = time.perf_counter()
    try:
        for i in range(max(_frames(loop) for loop in loops)):
            for loop in loops:
                loop.step()
            if after_frame is not None:
                t = time.perf_counter()
                after_frame(i)
                spent[0] += time.perf_counter() - t
        for loop in loops:
            loop.finish()
    except StageFailed as exc:
        raise EngineError(f"bench run: stage {exc.stage} failed: {exc.cause!r}") from exc
    total = time.perf_counter() - t0
    render = sum(_render_s(loop) for loop in loops)
    return total - render - spent[0]


def _ignore(_event: HealthEvent) -> None:
    """Health events of a bench run: none matter (stage failures raise from `step`)."""


def _scorer(
    source: SimSource,
    pipes: list[SourcePipeline],
    on_step: Callable[[SensorStep], None],
    spent: list[float],
) -> Emit:
    """The emit of one sensor's loop: its step handed to `on_step`, timed apart."""

    def emit(out: Emitted) -> None:
        t = time.perf_counter()
        on_step(SensorStep(source, pipes[0], out.events, out.frame, out.tracks))
        spent[0] += time.perf_counter() - t

    return emit


def _frames(loop: SourceLoop) -> int:
    assert isinstance(loop.source, SimSource)
    return loop.source.frames


def _render_s(loop: SourceLoop) -> float:
    assert isinstance(loop.source, SimSource)
    return loop.source.render_s
