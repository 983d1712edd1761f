"""Alerts get a place: fixed cameras through their calibration, drones through telemetry."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from engine.config import CalibrationConfig, CalibrationPoint
from engine.geo import Camera, GeoOrigin
from engine.geo.locate import Locator, homography_of
from engine.rules.base import make_event
from engine.sim import Simulation, load_scenario
from engine.types import Event, Frame

REPO = Path(__file__).resolve().parents[2]
ORIGIN = GeoOrigin(22.5431, 114.0579, 10.0)
W, H = 1280, 720


def frame(telemetry: dict | None = None) -> Frame:
    return Frame("cam", 0, 1.0, 0, np.zeros((H, W, 3), np.uint8), telemetry or {})


def event_at(uv: tuple[float, float], overhead: bool = False) -> Event:
    # a person whose feet are at uv (seen from above: whose box is centred there)
    top, bottom = (uv[1] - 8, uv[1] + 8) if overhead else (uv[1] - 50, uv[1])
    box = np.array([[uv[0] - 8, top, uv[0] + 8, bottom]], np.float32)
    return make_event(
        rule_id="r",
        kind="intrusion",
        phase="start",
        event_id="e",
        frame=frame(),
        severity="warning",
        xyxy=box,
        labels=("person",),
    )


def test_fixed_camera_alert_lands_within_its_uncertainty_of_the_truth() -> None:
    cam = Camera.from_attitude((0, -15, 9), 0, -30, 0, W, H, 70)
    ground = np.array([[-10, 5], [10, 5], [12, 25], [-12, 25], [0, 15], [5, 10]], float)
    uv, _ = cam.project(np.column_stack([ground, np.zeros(len(ground))]))
    uv += np.random.default_rng(0).normal(0, 0.5, uv.shape)
    pts = [
        CalibrationPoint(image=tuple(p), ground=tuple(g)) for p, g in zip(uv, ground, strict=True)
    ]
    loc = Locator(ORIGIN, homography_of(CalibrationConfig(points=pts), ORIGIN))
    for truth in ([3.0, 12.0], [-6.0, 20.0]):
        p, _ = cam.project(np.array([[*truth, 0.0]]))
        pos = loc.position(event_at((float(p[0, 0]), float(p[0, 1]))), frame())
        assert pos is not None
        err = np.hypot(pos.east_m - truth[0], pos.north_m - truth[1])
        assert err < 0.3 and 0 < pos.uncertainty_m < 3.0
        lat, lon, _ = ORIGIN.to_geodetic(np.array([[*truth, 0.0]]))[0]
        back = ORIGIN.to_enu(pos.lat_deg, pos.lon_deg, ORIGIN.alt_m)[0]
        assert np.hypot(back[0] - truth[0], back[1] - truth[1]) < 0.31
        assert abs(pos.lat_deg - lat) < 1e-5 and abs(pos.lon_deg - lon) < 1e-5


def test_points_in_lat_lon_need_the_site_origin() -> None:
    from engine.errors import ConfigError

    pts = [
        CalibrationPoint(image=(x, y), latlon=(22.5 + x * 1e-6, 114.0 + y * 1e-6))
        for x, y in [(0, 600), (1000, 600), (900, 400), (100, 400)]
    ]
    with pytest.raises(ConfigError, match="need `geo`"):
        homography_of(CalibrationConfig(points=pts), None)


def test_drone_alert_from_telemetry_within_a_metre_at_60_m() -> None:
    sim = Simulation(load_scenario(REPO / "configs" / "scenarios" / "dumping_drone.yaml"))
    o = sim.scenario.world.origin
    origin = GeoOrigin(o.lat_deg, o.lon_deg, o.alt_m)
    loc = Locator(origin, None)
    pose = sim.rig.pose(12.0)
    cam = pose.camera
    for truth in ([-3.8, 7.3], [5.0, 2.0]):
        p, _ = cam.project(np.array([[*truth, 0.0]]))
        ev = event_at((float(p[0, 0]), float(p[0, 1])), overhead=True)
        image = np.zeros((cam.height, cam.width, 3), np.uint8)
        pos = loc.position(ev, Frame("d", 0, 12.0, 0, image, pose.telemetry))
        assert pos is not None
        assert np.hypot(pos.east_m - truth[0], pos.north_m - truth[1]) < 0.2
        assert 0.5 < pos.uncertainty_m < 5  # attitude error at ~55 m slant range
    assert loc.position(ev, frame({})) is None  # no telemetry: no place


def test_calibrate_command_reports_errors_and_writes_the_block(tmp_path: Path) -> None:
    cam = Camera.from_attitude((0, -15, 9), 0, -30, 0, W, H, 70)
    ground = np.array([[-10, 5], [10, 5], [12, 25], [-12, 25], [0, 15]], float)
    uv, _ = cam.project(np.column_stack([ground, np.zeros(len(ground))]))
    points = tmp_path / "points.yaml"
    points.write_text(
        yaml.safe_dump(
            {
                "points": [
                    {"image": [round(float(u), 1), round(float(v), 1)], "ground": g.tolist()}
                    for (u, v), g in zip(uv, ground, strict=True)
                ]
            }
        )
    )
    out = tmp_path / "cal.yaml"
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "calibrate", str(points), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    assert "RMS reprojection error:" in r.stdout and "(5 points)" in r.stdout
    block = yaml.safe_load(out.read_text())["calibration"]
    assert CalibrationConfig(**block).homography is not None
    points.write_text(yaml.safe_dump({"points": [{"image": [1, 2], "ground": [3, 4]}] * 3}))
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "calibrate", str(points)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert r.returncode != 0 and "points" in r.stderr and "Traceback" not in r.stderr


def test_tracks_get_ground_positions_and_speeds() -> None:
    from engine.geo import GroundHomography
    from engine.geo.positions import GroundTracks
    from engine.types import Tracks

    cam = Camera.from_attitude((0, -15, 9), 0, -30, 0, W, H, 70)
    on_ground = GroundTracks(Locator(ORIGIN, GroundHomography(cam.ground_homography())))
    speeds = []
    for k in range(30):  # 3 s at 10 fps: a walker at 1.5 m/s east, someone standing
        t = k / 10
        walker, stander = np.array([[-3 + 1.5 * t, 12.0, 0]]), np.array([[4.0, 18.0, 0]])
        boxes = []
        for g in (walker, stander):
            (u, v), _ = cam.project(g)[0][0], None
            boxes.append([u - 8, v - 60, u + 8, v])
        tr = Tracks(
            np.array(boxes, np.float32),
            np.full(2, 0.9, np.float32),
            np.zeros(2, np.int32),
            np.array([1, 2], np.int64),
            ("person",),
        )
        out = on_ground(tr, Frame("cam", k, t, 0, np.zeros((H, W, 3), np.uint8)))
        assert np.allclose(out.ground_m[0], walker[0, :2], atol=1e-3)
        speeds.append(out.speed_mps.copy())
    assert np.isnan(speeds[0]).all()  # no history yet
    assert speeds[-1][0] == pytest.approx(1.5, abs=0.01) and speeds[-1][1] == pytest.approx(0.0)
    on_ground.forget([1, 2])
    assert on_ground._hist == {}
