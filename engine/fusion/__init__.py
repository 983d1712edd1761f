"""Fusion across sensors: global tracks on the ground, and one alert per incident."""

from __future__ import annotations

from engine.fusion.incidents import IncidentMerger
from engine.fusion.world import GlobalTrack, WorldTracker

__all__ = ["GlobalTrack", "IncidentMerger", "WorldTracker"]
