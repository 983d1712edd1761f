"""A drone's frames registered to the ground from telemetry: a ground point keeps its scene
place while the drone flies, turns round and changes height; without telemetry the image shift
carries the registration on."""

from __future__ import annotations

import numpy as np

from engine.geo.camera import camera_from_telemetry
from engine.geo.geodesy import GeoOrigin
from engine.preprocess.ground_register import GroundRegistration, apply_homography

ORIGIN = GeoOrigin(45.0, 7.0, 200.0)
W, H = 1280, 720


def _telemetry(east: float, north: float, up: float, heading: float) -> dict[str, float]:
    lat, lon, alt = ORIGIN.to_geodetic(np.array([[east, north, up]]))[0]
    return {
        "sensor_lat_deg": float(lat),
        "sensor_lon_deg": float(lon),
        "sensor_alt_m": float(alt) + 200.0,
        "height_above_ground_m": up,
        "platform_heading_deg": heading,
        "sensor_rel_elevation_deg": -90.0,
        "hfov_deg": 60.0,
    }


def test_a_ground_point_stays_put_while_the_drone_flies_and_turns() -> None:
    reg = GroundRegistration()
    pile = np.array([[3.0, 4.0, 0.0]])
    places = []
    for east, north, up, heading in [(-10, 0, 55, 90), (0, 2, 55, 90), (12, 6, 50, 270)]:
        tel = _telemetry(east, north, up, heading)
        h = reg.update(tel, W, H)
        assert h is not None
        cam = camera_from_telemetry(tel, (east, north, up), W, H)
        uv, front = cam.project(pile)
        assert front.all()
        places.append(apply_homography(h, uv)[0])
    assert reg.scale is not None and 5 < reg.scale < 50  # pixels per metre at 55 m
    spread = np.ptp(np.array(places), axis=0)
    assert np.all(spread < 0.05 * reg.scale), places  # within 5 cm
    # north is up the scene: a point 1 m further north is `scale` units higher
    tel = _telemetry(0, 0, 55, 0)
    h = reg.update(tel, W, H)
    assert h is not None
    cam = camera_from_telemetry(tel, (0, 0, 55), W, H)
    uv, _ = cam.project(np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    a, b = apply_homography(h, uv)
    assert abs((a[1] - b[1]) - reg.scale) < 0.01 * reg.scale and abs(a[0] - b[0]) < 0.01


def test_no_pose_no_registration() -> None:
    reg = GroundRegistration()
    assert reg.update({}, W, H) is None
    assert reg.update({"sensor_lat_deg": "x"}, W, H) is None
    level = _telemetry(0, 0, 55, 0) | {"sensor_rel_elevation_deg": 0.0}
    assert reg.update(level, W, H) is None  # looking at the horizon: no ground homography


def test_a_damaged_field_of_view_gives_no_registration_and_no_crash() -> None:
    tel = {
        "sensor_lat_deg": 31.23,
        "sensor_lon_deg": 121.47,
        "sensor_alt_m": 65.0,
        "frame_center_elevation_m": 10.0,
        "platform_heading_deg": 0.0,
        "sensor_rel_elevation_deg": -90.0,
    }
    reg = GroundRegistration()
    for hfov in (0.0, 180.0, -5.0, float("nan")):
        assert reg.update({**tel, "hfov_deg": hfov}, 1280, 720) is None
    assert reg.update({**tel, "hfov_deg": 60.0}, 1280, 720) is not None
