"""Two sensors, one picture, in the running engine: shared global identities, one alert."""

import json
import threading
from pathlib import Path

import numpy as np

from engine.config import parse_config
from engine.runtime import Runner
from engine.sim import load_scenario, render_scenario

REPO = Path(__file__).resolve().parents[2]


def test_two_placed_sensors_of_one_scene_give_one_alert_and_shared_ids(tmp_path: Path) -> None:
    sc = load_scenario(REPO / "configs" / "scenarios" / "crowd_station_gate.yaml")
    video = render_scenario(sc, tmp_path / "render", max_frames=75).video
    from engine.sim import Simulation

    cam = Simulation(sc).rig.pose(0.0).camera
    H = (cam.ground_homography()).round(9).tolist()
    o = sc.world.origin
    out = tmp_path / "alerts.jsonl"
    cal = f"calibration: {{homography: {H}}}"
    cfg = parse_config(f"""
site: t
geo: {{lat: {o.lat_deg}, lon: {o.lon_deg}, alt_m: {o.alt_m}}}
sources:
  - {{id: east, type: file, path: '{video}', rate: max, {cal}}}
  - {{id: west, type: file, path: '{video}', rate: max, {cal}}}
detector: {{model: '{REPO / "models" / "lookout_sim_yolo11n.onnx"}', conf: 0.2, threads: 1}}
tracking: {{new_track_score: 0.35}}
zones:
  - {{id: ze, source: east, polygon: [[0, 0], [1280, 0], [1280, 720], [0, 720]]}}
  - {{id: zw, source: west, polygon: [[0, 0], [1280, 0], [1280, 720], [0, 720]]}}
rules:
  - {{id: re, type: intrusion, zone: ze}}
  - {{id: rw, type: intrusion, zone: zw}}
outputs:
  - {{type: jsonl, path: '{out}'}}
""")
    seen: dict[str, list[tuple[float, np.ndarray]]] = {"east": [], "west": []}
    runner = Runner(cfg)
    report = runner.run(
        threading.Event(),
        on_frame=lambda f, t, e: seen[f.source_id].append((f.pts_s, t.ground_m.copy())),
    )
    assert report.errors == {}
    alerts = [json.loads(x)["data"] for x in out.read_text().splitlines()]
    starts = [a for a in alerts if a["phase"] == "start"]
    assert len(starts) == 1, [(a["sensors"], a["phase"]) for a in alerts]
    merged = [a for a in alerts if sorted(a["sensors"]) == ["east", "west"]]
    assert merged and len({a["event_id"] for a in alerts}) == 1
    assert starts[0]["position"]["uncertainty_m"] > 0
    # every object on the ground once: both sensors' tracks share the global tracks
    assert 5 <= len(runner.world) <= 60
    both = [g for g in runner.world.tracks if set(g.sensors) == {"east", "west"}]
    assert len(both) >= 0.8 * len(runner.world)
    assert all(np.isfinite(g).all() for _, g in seen["east"][-1:])
