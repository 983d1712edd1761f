"""A source's pipeline: what its frames go through after ingest, and the one place it is built."""

from engine.pipeline.build import build_pipeline, new_world, wants_snapshots
from engine.pipeline.source_pipeline import SharedWorld, SourcePipeline, StageClock

__all__ = [
    "SharedWorld",
    "SourcePipeline",
    "StageClock",
    "build_pipeline",
    "new_world",
    "wants_snapshots",
]
