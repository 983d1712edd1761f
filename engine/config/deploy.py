"""How the engine is deployed: where a source may run on a cluster, and how a failed source's
worker is restarted."""

from __future__ import annotations

from pydantic import Field

from engine.config.base import ConfigModel

__all__ = ["PlacementConfig", "SupervisorConfig"]


class PlacementConfig(ConfigModel):
    """Where a source may run on a cluster (`lookout run --cluster`)."""

    reach: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
        description="Camera group: only nodes labelled reach-<group>=1 can reach this camera.",
    )
    gpu: float = Field(0.0, ge=0, le=16, description="GPUs the source's detector takes.")
    decode: float = Field(
        0.0, ge=0, le=64, description="Decode slots it takes of a node's `decode` resource."
    )


class SupervisorConfig(ConfigModel):
    """How a failed per-source stage is restarted (the other sources go on meanwhile)."""

    backoff_initial_s: float = Field(0.5, gt=0, le=60, description="First restart delay.")
    backoff_max_s: float = Field(30.0, gt=0, le=3600, description="Longest restart delay.")
    healthy_s: float = Field(
        60.0, gt=0, le=30 * 86400, description="Running this long without failing resets the delay."
    )
    max_restarts: int | None = Field(
        None, ge=0, le=10**9, description="Give a source up after this many restarts (None: never)."
    )
