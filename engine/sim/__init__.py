"""The scenario simulator: incidents rendered from fixed cameras and drones, with exact truth.

It only produces footage, telemetry and ground truth; it knows nothing of the engine's stages.
"""

from engine.sim.scenario import Scenario, load_scenario, parse_scenario
from engine.sim.simulation import RenderResult, Simulation, render_scenario

__all__ = [
    "RenderResult",
    "Scenario",
    "Simulation",
    "load_scenario",
    "parse_scenario",
    "render_scenario",
]
