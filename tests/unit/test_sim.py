"""The simulator: deterministic, truth that matches the pixels, valid scenario files."""

from pathlib import Path

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.sim import Simulation, load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "configs" / "scenarios"


@pytest.fixture(scope="module")
def crowd() -> Simulation:
    return Simulation(load_scenario(SCENARIOS / "crowd_station_gate.yaml"))


@pytest.fixture(scope="module")
def drone() -> Simulation:
    return Simulation(load_scenario(SCENARIOS / "dumping_drone.yaml"))


@pytest.fixture(scope="module")
def fixed_dump() -> Simulation:
    return Simulation(load_scenario(SCENARIOS / "dumping_fixed.yaml"))


def test_same_seed_same_frames_and_truth() -> None:
    sc = load_scenario(SCENARIOS / "dumping_fixed.yaml")
    a, b = Simulation(sc), Simulation(sc)
    for i in (0, 170):
        img_a, truth_a, pose_a = a.frame(i)
        img_b, truth_b, pose_b = b.frame(i)
        assert np.array_equal(img_a, img_b)
        assert [t.to_dict() for t in truth_a] == [t.to_dict() for t in truth_b]
        assert pose_a.telemetry == pose_b.telemetry
    assert [e.to_dict() for e in a.script.events] == [e.to_dict() for e in b.script.events]
    other = Simulation(sc, seed=sc.seed + 1)
    assert not np.array_equal(other.frame(170)[0], a.frame(170)[0])


def _check_pixels_in_boxes(sim: Simulation, index: int) -> int:
    _, truths, _ = sim.frame(index)
    ids = sim.renderer.last_ids
    assert ids is not None
    for t in truths:
        ys, xs = np.nonzero(ids == t.actor_id + 1)
        if t.visibility > 0:
            assert len(xs) > 0, t
        x1, y1, x2, y2 = t.box_xyxy
        # every pixel the actor owns lies inside its box (1 px for rasterisation)
        assert xs.min(initial=10**9) >= x1 - 1 and xs.max(initial=-1) <= x2 + 1, t
        assert ys.min(initial=10**9) >= y1 - 1 and ys.max(initial=-1) <= y2 + 1, t
        assert 0.0 <= t.visibility <= 1.0
    return len(truths)


@pytest.mark.parametrize("index", [90, 330, 480])
def test_silhouettes_lie_in_boxes_fixed(crowd: Simulation, index: int) -> None:
    assert _check_pixels_in_boxes(crowd, index) > 10


@pytest.mark.parametrize("index", [160, 300])
def test_silhouettes_lie_in_boxes_drone(drone: Simulation, index: int) -> None:
    assert _check_pixels_in_boxes(drone, index) >= 3


def test_world_position_projects_to_the_feet_of_fixed_camera_boxes(crowd: Simulation) -> None:
    people = 0
    for index in (90, 330):
        _, truths, _ = crowd.frame(index)
        for t in truths:
            x1, y1, x2, y2 = t.box_xyxy
            fx, fy = t.foot_px
            truncated = x1 <= 0 or y1 <= 0 or x2 >= 1280 or y2 >= 720
            if t.cls != "person" or truncated:
                continue
            people += 1
            h = y2 - y1
            assert x1 - 1 <= fx <= x2 + 1, t
            assert abs(fy - y2) <= 0.12 * h + 2, t  # the feet are the bottom of the box
    assert people > 10


def test_world_position_projects_to_the_centre_of_nadir_boxes(drone: Simulation) -> None:
    for index in (160, 300):
        _, truths, pose = drone.frame(index)
        assert pose.telemetry["sensor_rel_elevation_deg"] == -90.0
        for t in truths:
            x1, y1, x2, y2 = t.box_xyxy
            if x1 <= 0 or y1 <= 0 or x2 >= 1280 or y2 >= 720:
                continue
            fx, fy = t.foot_px
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            assert x1 - 1 <= fx <= x2 + 1 and y1 - 1 <= fy <= y2 + 1, t
            # tall objects lean away from the image centre; the ground point stays near the middle
            assert np.hypot(fx - cx, fy - cy) <= 0.35 * max(x2 - x1, y2 - y1) + 2, t


def test_occlusion_lowers_visibility(crowd: Simulation) -> None:
    _, truths, _ = crowd.frame(330)  # the crowd stands packed together
    vis = [t.visibility for t in truths if t.cls == "person"]
    assert min(vis) < 0.7 and max(vis) > 0.95


def test_dumping_truth(fixed_dump: Simulation) -> None:
    (ev,) = fixed_dump.script.events
    assert ev.kind == "dumping" and ev.area == "lot" and ev.start_s == 9.0
    assert 9.0 + 8 + 3 < ev.end_s < 40
    # the pile is in the truth from the truck's arrival on, and stays after it left
    classes_at = {i: {t.cls for t in fixed_dump.frame(i)[1]} for i in (int(8.5 * 15), (35 * 15))}
    assert "debris" not in classes_at[int(8.5 * 15)]
    assert "debris" in classes_at[(35 * 15)] and "truck" not in classes_at[(35 * 15)]


def test_all_scenario_files_validate_and_script_their_incidents() -> None:
    expected = {
        "dumping_drone": {"dumping"},
        "dumping_fixed": {"dumping"},
        "crowd_station_gate": {"crowd_gathering", "crowd_dispersal"},
        "loitering_ticket_gate": {"loitering"},
        "quiet_street": set(),
    }
    for name, kinds in expected.items():
        sc = load_scenario(SCENARIOS / f"{name}.yaml")
        assert sc.name == name
        assert {e.kind for e in Simulation(sc).script.events} == kinds


def test_invalid_scenario_explained() -> None:
    text = (SCENARIOS / "dumping_fixed.yaml").read_text()
    bad = text.replace("area: lot", "area: nowhere").replace("stop_index: 2", "stop_index: 4")
    with pytest.raises(ConfigError) as info:
        parse_scenario(bad, "x.yaml")
    msg = str(info.value)
    assert "incidents[0].area: expected one of the areas ['lot'], got 'nowhere'" in msg
    assert "incidents[0].stop_index: expected a point before the last of 5, got 4" in msg
    with pytest.raises(ConfigError, match=r"sensor.type: expected one of"):
        parse_scenario(text.replace("type: fixed_camera", "type: satellite"), "x.yaml")


def test_static_piles_are_debris_from_the_first_frame_and_bushes_are_not() -> None:
    text = (SCENARIOS / "quiet_street.yaml").read_text()
    sc = parse_scenario(text, "quiet_street.yaml")
    world = sc.world.model_dump()
    centre = [float(v) for v in np.mean([p for r in sc.world.roads for p in r.path], axis=0)]
    world["piles"] = [{"position": centre, "radius_m": 1.5, "height_m": 0.9}]
    world["props"] = [{"kind": "bush", "position": [centre[0] + 6, centre[1]]}]
    sim = Simulation(sc.model_copy(update={"world": type(sc.world).model_validate(world)}))
    before = Simulation(sc)
    for index in (0, 100):
        debris = [t for t in sim.frame(index)[1] if t.cls == "debris"]
        assert len(debris) == 1 and debris[0].visibility > 0.5
        assert not [t for t in before.frame(index)[1] if t.cls == "debris"]
    assert _check_pixels_in_boxes(sim, 0) >= 1
