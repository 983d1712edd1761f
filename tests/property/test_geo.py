"""Ground geometry against independent references: round trips, fitted homographies, drone
cameras rebuilt from telemetry, and WGS84 distances from the textbook formulas."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.geo import Camera, GeoOrigin, camera_from_telemetry, fit_homography

W, H = 1280, 720


@st.composite
def cameras(draw: st.DrawFn) -> Camera:
    height = draw(st.floats(3, 120))
    return Camera.from_attitude(
        (draw(st.floats(-50, 50)), draw(st.floats(-50, 50)), height),
        draw(st.floats(0, 360)),
        draw(st.floats(-85, -15)),
        draw(st.floats(-5, 5)),
        W,
        H,
        draw(st.floats(30, 100)),
    )


def ground_in_view(cam: Camera, n: int, rng: np.random.Generator) -> np.ndarray:
    """Ground points seen in the lower half of the picture (below any horizon)."""
    uv = np.column_stack([rng.uniform(0, W, n), rng.uniform(H * 0.55, H, n)])
    g = cam.pixel_to_ground(uv)
    return g[np.all(np.isfinite(g), axis=1)]


@settings(max_examples=100, deadline=None)
@given(cameras(), st.integers(0, 2**31))
def test_projection_and_back_projection_round_trip(cam: Camera, seed: int) -> None:
    g = ground_in_view(cam, 20, np.random.default_rng(seed))
    uv, front = cam.project(np.column_stack([g, np.zeros(len(g))]))
    assert front.all()
    back = cam.pixel_to_ground(uv)
    scale = np.hypot(*(g - cam.position_m[:2]).T) + 1
    assert np.all(np.hypot(*(back - g).T) <= 1e-7 * scale)


@settings(max_examples=60, deadline=None)
@given(cameras(), st.integers(0, 2**31))
def test_fitted_homography_maps_like_the_camera(cam: Camera, seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = ground_in_view(cam, 12, rng)
    if len(g) < 6:
        return
    uv, _ = cam.project(np.column_stack([g, np.zeros(len(g))]))
    hom = fit_homography(uv[:6], g[:6])
    assert hom.rms_px < 1e-2  # exact pairs: only rounding (worst seen: 1.4e-3 px, narrow FOV)
    # other points, not used in the fit (6 exact pairs: errors are rounding only)
    assert np.allclose(hom.to_ground(uv[6:]), g[6:], atol=1e-4 * (1 + float(np.abs(g).max())))
    assert np.allclose(hom.to_image(g[6:]), uv[6:], atol=1e-2)


def test_calibration_errors_are_reported_and_bad_sets_refused() -> None:
    cam = Camera.from_attitude((0, -20, 8), 0, -25, 0, W, H, 70)
    g = np.array([[-8, 5], [8, 5], [10, 25], [-10, 25], [0, 12], [4, 18]], float)
    uv, _ = cam.project(np.column_stack([g, np.zeros(len(g))]))
    noisy = uv + np.random.default_rng(0).normal(0, 1.0, uv.shape)
    hom = fit_homography(noisy, g)
    assert 0.3 < hom.rms_px < 2.0 and 0.0 < hom.rms_m < 0.5 and len(hom.errors_m) == 6
    mpp = hom.metres_per_pixel(np.array([[640, 700], [640, 300]]))
    assert 0 < mpp[0] < mpp[1]  # a pixel spans more ground far away
    with pytest.raises(ConfigError, match="at least 4"):
        fit_homography(uv[:3], g[:3])
    with pytest.raises(ConfigError, match="fix no plane"):
        line = np.array([[0, 5], [0, 10], [0, 15], [0, 20]], float)
        fit_homography(np.column_stack([np.full(4, 640.0), [600, 500, 450, 420]]), line)


def test_drone_camera_from_telemetry_equals_the_true_camera() -> None:
    origin = GeoOrigin(31.2304, 121.4737, 4.0)
    for heading, pitch, roll, gimbal in [
        (30, 2, -1, (0, -90, 0)),
        (200, -3, 4, (10, -55, 0)),
        (359, 0, 0, (0, -70, 2)),
    ]:
        truth = Camera.from_attitude(
            (12.0, -7.0, 60.0), heading, pitch, roll, W, H, 62, gimbal=gimbal
        )
        lat, lon, alt = origin.to_geodetic(np.array([[12.0, -7.0, 60.0]]))[0]
        tel = {
            "platform_heading_deg": heading,
            "platform_pitch_deg": pitch,
            "platform_roll_deg": roll,
            "sensor_rel_azimuth_deg": gimbal[0] % 360,
            "sensor_rel_elevation_deg": gimbal[1],
            "sensor_rel_roll_deg": gimbal[2],
            "hfov_deg": 62.0,
        }
        cam = camera_from_telemetry(tel, origin.to_enu(lat, lon, alt)[0], W, H)
        g = ground_in_view(truth, 30, np.random.default_rng(1))
        a, _ = truth.project(np.column_stack([g, np.zeros(len(g))]))
        b, _ = cam.project(np.column_stack([g, np.zeros(len(g))]))
        assert np.abs(a - b).max() < 0.01


@pytest.mark.parametrize("lat", [0.0, 31.23, 45.0, 60.0])
def test_geodetic_distances_match_wgs84_arc_lengths(lat: float) -> None:
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    s = math.sin(math.radians(lat))
    meridian = math.pi * a * (1 - e2) / (180 * (1 - e2 * s * s) ** 1.5)  # metres per degree
    parallel = math.pi * a * math.cos(math.radians(lat)) / (180 * math.sqrt(1 - e2 * s * s))
    origin = GeoOrigin(lat, 10.0, 0.0)
    d = 0.001
    north = origin.to_enu(lat + d, 10.0)[0]
    east = origin.to_enu(lat, 10.0 + d)[0]
    assert north[1] == pytest.approx(meridian * d, abs=1e-3)
    assert east[0] == pytest.approx(parallel * d, abs=1e-3)
    # and back
    corner = origin.to_enu(lat + d, 10.0 + d, 3.0)
    back = origin.to_geodetic(corner)[0]
    assert np.allclose(back, [lat + d, 10 + d, 3.0], atol=1e-9)
    assert np.allclose(origin.to_geodetic(np.zeros((1, 3)))[0], [lat, 10.0, 0.0])


def test_no_place_at_the_horizon() -> None:
    from engine.geo import GroundHomography
    from engine.geo.locate import Locator
    from engine.rules.base import make_event
    from engine.types import Frame

    cam = Camera.from_attitude((0, 0, 5), 0, -10, 0, W, H, 70)
    hom = GroundHomography(cam.ground_homography())
    row = float(cam.horizon_row(np.array([640.0]))[0])
    mpp = hom.metres_per_pixel(np.array([[640.0, row + 0.2], [640.0, H - 1]]))
    assert not np.isfinite(mpp[0]) and np.isfinite(mpp[1])
    frame = Frame("c", 0, 0.0, 0, np.zeros((H, W, 3), np.uint8))
    box = np.array([[630, row - 40, 650, row + 0.2]], np.float32)
    ev = make_event(
        rule_id="r",
        kind="intrusion",
        phase="start",
        event_id="e",
        frame=frame,
        severity="info",
        xyxy=box,
        labels=("person",),
    )
    assert Locator(GeoOrigin(0, 0), hom).position(ev, frame) is None
