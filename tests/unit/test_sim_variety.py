"""What the training data recipe draws from: rain, truck bodies, sensor mounts and altitudes,
look-alikes beside piles (engine/sim/randomize.py, shapes.py, render.py)."""

from collections import Counter
from pathlib import Path

import numpy as np

from engine.sim import Simulation, load_scenario
from engine.sim.actors import Actor, Trajectory
from engine.sim.randomize import random_scenario
from engine.sim.scenario import DroneSensor, FixedCameraSensor
from engine.sim.shapes import TRUCK_BODIES, actor_parts

SCENARIOS = Path(__file__).resolve().parents[2] / "configs" / "scenarios"


def test_rain_streaks_change_every_frame_and_leave_the_truth_alone() -> None:
    sc = load_scenario(SCENARIOS / "dumping_fixed.yaml")
    effects = sc.sensor.effects.model_copy(update={"rain": 0.8})
    wet = sc.model_copy(update={"sensor": sc.sensor.model_copy(update={"effects": effects})})
    dry_sim, wet_sim = Simulation(sc), Simulation(wet)
    dry0, truth_dry, _ = dry_sim.frame(100)
    wet0, truth_wet, _ = wet_sim.frame(100)
    wet1 = wet_sim.frame(101)[0]
    assert [t.to_dict() for t in truth_dry] == [t.to_dict() for t in truth_wet]
    assert np.abs(dry0.astype(int) - wet0).mean() > 3  # washed out and streaked
    assert wet0.std() < dry0.std()  # less contrast
    assert np.array_equal(wet0, Simulation(wet).frame(100)[0])  # deterministic
    assert not np.array_equal(wet0, wet1)  # streaks fall


def test_trucks_come_with_every_body() -> None:
    traj = Trajectory(np.array([0.0]), np.array([[0.0, 0.0]]))
    shapes: Counter[int] = Counter()
    for seed in range(40):
        truck = Actor(
            0, "truck", traj, 0.0, 10.0, (7.5, 2.4, 3.1), [(40, 100, 40)] * 3, rng_seed=seed
        )
        shapes[len(actor_parts(truck, 1.0))] += 1
    # box: wheels, cab, windows, box = 7 parts; tipper: + bed, 4 walls (and a load); flatbed:
    # bed and 1-3 crates
    assert len(shapes) >= len(TRUCK_BODIES), shapes


def test_random_scenes_cover_mounts_altitudes_rain_and_lookalikes() -> None:
    heights: list[float] = []
    altitudes: list[float] = []
    oblique, rain, beside = 0, 0, 0
    for seed in range(300):
        sc = random_scenario(seed)
        s = sc.sensor
        if isinstance(s, FixedCameraSensor):
            heights.append(s.position_m[2])
        else:
            assert isinstance(s, DroneSensor)
            altitudes.append(s.altitude_m)
            oblique += s.gimbal_elevation_deg > -89
        rain += s.effects.rain > 0
        piles = [np.asarray(p.position) for p in sc.world.piles]
        props = [np.asarray(p.position) for p in sc.world.props]
        beside += sum(any(np.hypot(*(q - p)) < 6.5 for q in props) for p in piles)
    assert min(heights) < 5 and max(heights) > 15  # hall to pole
    assert min(altitudes) < 30 and max(altitudes) > 80
    assert 0.25 < oblique / len(altitudes) < 0.55
    assert 0.1 < rain / 300 < 0.3
    assert beside > 100
