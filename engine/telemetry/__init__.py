"""Drone telemetry formats: MISB ST 0601 KLV packets and DJI-style SRT sidecars."""

from engine.telemetry import dji_srt, misb0601

__all__ = ["dji_srt", "misb0601"]
