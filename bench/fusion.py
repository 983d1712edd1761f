"""Ground positions and fusion, scored against the simulator's truth: a fixed camera and a drone
at 60 m over the same lot, where a truck dumps debris.

Both sensors render the same world (same scenario, seed, actors) and run through the engine's
own source loops and pipelines, built from a config by the function the runner uses
(bench/sim_run.py): detector, ByteTrack, ground mapping (the camera through its ground
homography from intrinsics and pose; the drone through the camera its telemetry describes at
each frame), the dumping rule with alert positions, the shared world tracker, and the incident
merger as the alert outlet applies it. Reported:
- median ground-position error of tracks matched to true objects (IoU >= 0.5 with the true box):
  drone, and camera within 30 m of it;
- identity consistency of the global tracks against the true actors (IDF1, py-motmetrics, match
  within 2 m on the ground);
- dumping alerts after merging (duplicates: more than one start per true incident) and their
  distance from the true pile.
Run twice: with the bundled detector, and with the true boxes as detections ("oracle"), which
isolates the geometry and fusion from the detector's quality.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.sim_run import SensorStep, run_sims, true_boxes
from engine.config import Config, DetectorConfig
from engine.detect import OnnxDetector
from engine.detect.inference import DetectFn
from engine.fusion import IncidentMerger
from engine.sim import Simulation
from engine.sim.scenario import parse_scenario
from engine.sim.source import SimSource
from engine.track import iou_matrix
from engine.types import Tracks

__all__ = ["add_arguments", "run"]

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "models" / "lookout_sim_yolo11n.onnx"
SCENARIO = REPO / "configs" / "scenarios" / "dumping_fixed.yaml"
DRONE_SIZE = (1280, 720)
DRONE = {
    "type": "drone",
    "id": "drone9",
    "resolution": list(DRONE_SIZE),
    "hfov_deg": 62.0,
    "altitude_m": 60.0,
    "path": [[-4.0, 8.0], [4.0, 16.0]],
    "speed_mps": 0.5,
    "gimbal_elevation_deg": -90.0,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench fusion`."""
    p.add_argument("--model", type=Path, default=BUNDLED, help="detector (default: bundled)")
    p.add_argument("--seeds", default="1,2", help="scenario seeds, comma-separated")
    p.add_argument("--max-s", type=float, help="cut each run to this many seconds")


def _sims(seed: int) -> dict[str, Simulation]:
    raw = yaml.safe_load(SCENARIO.read_text())
    fixed = Simulation(parse_scenario(yaml.safe_dump(raw), "fixed"), seed)
    raw["sensor"] = {**DRONE, "effects": raw["sensor"].get("effects", {})}
    drone = Simulation(parse_scenario(yaml.safe_dump(raw), "drone"), seed)
    return {"pole3": fixed, "drone9": drone}


def fusion_config(sims: dict[str, Simulation], model: Path) -> Config:
    """The engine config of the two sensors: the site's origin, the pole camera calibrated by
    its ground homography, the drone placed by its telemetry, a dumping rule on each (the lot
    in the camera's picture, the whole picture of the drone)."""
    o = sims["pole3"].scenario.world.origin
    cam0 = sims["pole3"].rig.pose(0.0).camera
    lot = next(a for a in sims["pole3"].scenario.world.areas if a.kind == "no_dumping")
    uv, _ = cam0.project(np.column_stack([np.asarray(lot.polygon), np.zeros(len(lot.polygon))]))
    w, h = DRONE_SIZE
    zones = [
        {"id": "lot", "source": "pole3", "polygon": [[float(x), float(y)] for x, y in uv]},
        {"id": "view", "source": "drone9", "polygon": [[0, 0], [w, 0], [w, h], [0, h]]},
    ]
    dumping = {"type": "dumping", "stop_s": 2, "confirm_s": 1, "min_score": 0.3}
    homography = np.asarray(cam0.ground_homography(), np.float64).tolist()
    return Config.model_validate(
        {
            "site": "bench",
            "geo": {"lat": o.lat_deg, "lon": o.lon_deg, "alt_m": o.alt_m},
            "sources": [  # rendered by the bench (engine.sim.source), not read
                {
                    "id": "pole3",
                    "type": "file",
                    "path": "pole3.sim",
                    "rate": "max",
                    "calibration": {"homography": homography},
                },
                {"id": "drone9", "type": "drone", "url": "drone9.sim", "rate": "max"},
            ],
            "detector": {"model": str(model), "conf": 0.2, "iou": 0.5},
            "tracking": {"new_track_score": 0.35},
            "zones": zones,
            "rules": [{**dumping, "id": f"dumping-{z['id']}", "zone": z["id"]} for z in zones],
            "fusion": {"gate_m": 2.5, "merge_m": 10.0},
        }
    )


def run_once(
    seed: int, detector: OnnxDetector | None, names: tuple[str, ...], max_s: float | None
) -> dict[str, Any]:
    """One seed, with the detector or (None) the true boxes, through the engine's own source
    loops and pipelines (bench/sim_run.py) sharing one world tracker."""
    import motmetrics as mm

    sims = _sims(seed)
    model = detector.cfg.model if detector is not None else BUNDLED
    cfg = fusion_config(sims, model)
    merger = IncidentMerger(cfg.fusion.merge_m, cfg.fusion.merge_s)  # as the alert outlet does
    acc = mm.MOTAccumulator(auto_id=True)
    errors: dict[str, list[float]] = {"pole3": [], "drone9": []}
    alerts: list[dict[str, Any]] = []
    fixed_xy = sims["pole3"].rig.pose(0.0).camera.position_m[:2]
    sc = sims["pole3"].scenario
    frames = sims["pole3"].n_frames if max_s is None else round(max_s * sc.fps)
    truth_xy: dict[int, np.ndarray] = {}  # this frame's, both sensors
    seen: dict[int, np.ndarray] = {}

    def on_step(step: SensorStep) -> None:
        s, tracks, frame = step.source.id, step.tracks, step.frame
        if tracks is not None and frame is not None:
            visible = [x for x in step.source.truths if x.visibility >= 0.25 and x.cls in names]
            for k, tid in enumerate(tracks.track_id.tolist()):
                gid = step.pipeline.global_ids.get(int(tid), -1)
                if gid >= 0:
                    seen[int(gid)] = tracks.ground_m[k].astype(np.float64)
            for x in visible:
                truth_xy[x.actor_id] = np.array(x.world_m[:2])
            errors[s] += _position_errors(tracks, visible, fixed_xy if s == "pole3" else None)
        for e in step.events:
            e = merger(e)
            counted = e.stage == "confirmed" if e.kind == "dumping" else e.phase == "start"
            if counted:  # a dumping counts once confirmed (its start is a suspicion)
                pos = e.position
                alerts.append(
                    {
                        "t": e.pts_s,
                        "sensor": s,
                        "east": pos.east_m if pos is not None else None,
                        "north": pos.north_m if pos is not None else None,
                    }
                )

    def after_frame(_i: int) -> None:
        tids = sorted(truth_xy)
        hids = sorted(seen)
        dist = np.array(
            [[float(np.sum((truth_xy[a] - seen[b]) ** 2)) for b in hids] for a in tids]
        ).reshape(len(tids), len(hids))
        dist[dist > 4.0] = np.nan  # beyond 2 m: no match
        acc.update(tids, hids, dist)
        truth_xy.clear()
        seen.clear()

    def detect_of(source: SimSource) -> DetectFn:
        return detector.detect_images if detector is not None else true_boxes(source, names)

    run_sims(cfg, sims, detect_of, names, on_step, after_frame, frames)
    mh = mm.metrics.create()
    idf1 = float(mh.compute(acc, metrics=["idf1"], name="w")["idf1"].iloc[0])
    truth_events = [e for e in sims["pole3"].script.events if e.kind == "dumping"]
    place = np.array(truth_events[0].place_m) if truth_events else None
    pos_err = [
        float(np.hypot(a["east"] - place[0], a["north"] - place[1]))
        for a in alerts
        if a["east"] is not None and place is not None
    ]
    return {
        "seed": seed,
        "detector": "oracle" if detector is None else "model",
        "drone_pos_err_m": errors["drone9"],
        "camera_pos_err_m": errors["pole3"],
        "world_idf1": idf1,
        "alerts": alerts,
        "true_incidents": len(truth_events),
        "duplicate_alerts": max(0, len(alerts) - len(truth_events)),
        "merged": merger.merged,
        "alert_pos_err_m": pos_err,
    }


def _position_errors(tracks: Tracks, visible: list[Any], near: Any) -> list[float]:
    """Ground-position errors of the tracks that match a true object in the sensor's picture
    (IoU >= 0.5), those within 30 m of `near` only when it is given."""
    out: list[float] = []
    if not len(tracks) or not visible:
        return out
    iou = iou_matrix(tracks.xyxy, np.array([x.box_xyxy for x in visible], np.float32))
    for k in range(len(tracks)):
        j = int(np.argmax(iou[k]))
        if iou[k, j] < 0.5 or not np.all(np.isfinite(tracks.ground_m[k])):
            continue
        true_xy = np.array(visible[j].world_m[:2])
        if near is not None and np.hypot(*(true_xy - near)) > 30:
            continue
        out.append(float(np.hypot(*(tracks.ground_m[k] - true_xy))))
    return out


def _p50(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every seed, with the detector and with the true boxes."""
    detector = OnnxDetector(DetectorConfig(model=args.model, conf=0.2, iou=0.5))
    names = detector.class_names
    seeds = [int(s) for s in str(args.seeds).split(",")]
    rows: list[dict[str, Any]] = []
    runs: dict[str, list[dict[str, Any]]] = {"model": [], "oracle": []}
    for which, det in (("model", detector), ("oracle", None)):
        for seed in seeds:
            r = run_once(seed, det, names, args.max_s)
            runs[which].append(r)
            print(
                f"  {which} seed {seed}: idf1 {r['world_idf1']:.3f}, alerts {r['alerts']}",
                flush=True,
            )

    def agg(which: str) -> dict[str, Any]:
        rs = runs[which]
        drone = [e for r in rs for e in r["drone_pos_err_m"]]
        camera = [e for r in rs for e in r["camera_pos_err_m"]]
        alert_err = [e for r in rs for e in r["alert_pos_err_m"]]
        return {
            "detector": which,
            "drone_pos_err_m_p50": _p50(drone),
            "camera_pos_err_m_p50": _p50(camera),
            "world_idf1": float(np.mean([r["world_idf1"] for r in rs])),
            "duplicate_alerts": sum(r["duplicate_alerts"] for r in rs),
            "alerts": sum(len(r["alerts"]) for r in rs),
            "true_incidents": sum(r["true_incidents"] for r in rs),
            "merged_starts": sum(r["merged"] for r in rs),
            "alert_pos_err_m_max": max(alert_err) if alert_err else None,
        }

    model, oracle = agg("model"), agg("oracle")
    rows = [model, oracle]
    summary = {
        **{k: v for k, v in model.items() if k != "detector"},
        **{f"{k}_oracle": v for k, v in oracle.items() if k != "detector"},
        "seeds": len(seeds),
        "model": args.model.name,
    }
    return {"suite": "fusion", "summary": summary, "runs": runs, "table": rows}
