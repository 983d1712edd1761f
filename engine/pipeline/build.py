"""The one assembly of a source's pipeline, used by every caller that processes frames.

The runner (one box), the cluster worker (one source on a node) and the benchmarks that score
events and fusion all build a source's pipeline here, from the config: its tracker, its rules,
its ground locator, its clips and snapshots. What differs between them is only the detect
function (the runner's shared batcher, a node's own detector, a bench's true boxes) and what
happens to the events (the source loop's `emit`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.config import Config, ZmqOutputConfig
from engine.detect.inference import DetectFn
from engine.errors import ConfigError
from engine.fusion import WorldTracker
from engine.geo.positions import build_locator
from engine.pipeline.source_pipeline import SharedWorld, SourcePipeline, StageClock
from engine.rules import Rule, build_rules
from engine.types import HealthEvent

__all__ = ["build_pipeline", "new_world", "wants_snapshots"]


def wants_snapshots(cfg: Config) -> bool:
    """A ZeroMQ output sends JPEG snapshots: events carry one of their frame."""
    return any(isinstance(o, ZmqOutputConfig) and o.snapshots for o in cfg.outputs)


def new_world(cfg: Config) -> SharedWorld:
    """A world tracker for the sources of one engine, by the config's fusion settings."""
    fu = cfg.fusion
    groups = tuple(tuple(g) for g in cfg.tracking.class_groups)
    return SharedWorld(WorldTracker(fu.gate_m, fu.lost_s, groups))


def build_pipeline(
    cfg: Config,
    source_id: str,
    detect: DetectFn,
    class_names: tuple[str, ...],
    world: SharedWorld,
    *,
    rules: Sequence[Rule] | None = None,
    clock: StageClock | None = None,
    on_health: Callable[[HealthEvent], None] | None = None,
) -> SourcePipeline:
    """The pipeline of one configured source.

    Args:
        cfg: the whole config (the source, tracking, zones and rules, geo, clips, outputs).
        source_id: which source.
        detect: runs the detector on images (directly, or through the shared batcher).
        class_names: the detector's classes.
        world: the world tracker this source's ground tracks join (`new_world`).
        rules: the source's rules, when the caller keeps them across a reload; None builds
            them from the config.
        clock: where stage latencies go (the runtime's metrics), or None.
        on_health: receives the health events of the pipeline's outputs (clips, snapshots).

    Raises:
        ConfigError: the config has no such source; a rule names classes the detector does
            not know; a calibration that fits no plane.
    """
    source_cfg = next((s for s in cfg.sources if s.id == source_id), None)
    if source_cfg is None:
        raise ConfigError(f"no source {source_id!r} in the config")
    if rules is None:
        rules = build_rules(cfg, class_names).get(source_id, [])
    return SourcePipeline(
        cfg,
        source_cfg,
        detect,
        class_names,
        rules,
        build_locator(cfg, source_cfg),  # this source's alone: the others are not fitted again
        world,
        clock,
        wants_snapshots(cfg),
        on_health,
    )
