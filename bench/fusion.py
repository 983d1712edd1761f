"""Ground positions and fusion, scored against the simulator's truth: a fixed camera and a drone
at 60 m over the same lot, where a truck dumps debris.

Both sensors render the same world (same scenario, seed, actors) and run the engine's stages:
detector, ByteTrack, ground mapping (the camera through its ground homography from intrinsics
and pose; the drone through the camera its telemetry describes at each frame), the dumping rule
with alert positions, the world tracker and the incident merger. Reported:
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

from engine.config import DetectorConfig, DumpingRuleConfig, TrackingConfig, ZoneConfig
from engine.detect import OnnxDetector
from engine.fusion import IncidentMerger, WorldTracker
from engine.geo import GeoOrigin, GroundHomography
from engine.geo.locate import Locator
from engine.geo.positions import GroundTracks, with_position
from engine.rules import DumpingRule
from engine.rules.scene_view import SceneView
from engine.sim import Simulation
from engine.sim.scenario import parse_scenario
from engine.track import ByteTracker, iou_matrix
from engine.types import Detections, Frame

__all__ = ["add_arguments", "run"]

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "models" / "lookout_sim_yolo11n.onnx"
SCENARIO = REPO / "configs" / "scenarios" / "dumping_fixed.yaml"
DRONE = {
    "type": "drone",
    "id": "drone9",
    "resolution": [1280, 720],
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


def run_once(
    seed: int, detector: OnnxDetector | None, names: tuple[str, ...], max_s: float | None
) -> dict[str, Any]:
    """One seed, with the detector or (None) the true boxes."""
    import motmetrics as mm

    sims = _sims(seed)
    o = sims["pole3"].scenario.world.origin
    origin = GeoOrigin(o.lat_deg, o.lon_deg, o.alt_m)
    cam0 = sims["pole3"].rig.pose(0.0).camera
    locators = {
        "pole3": Locator(origin, GroundHomography(cam0.ground_homography())),
        "drone9": Locator(origin, None),
    }
    lot = next(a for a in sims["pole3"].scenario.world.areas if a.kind == "no_dumping")
    uv, _ = cam0.project(np.column_stack([np.asarray(lot.polygon), np.zeros(len(lot.polygon))]))
    zones = {
        "pole3": ZoneConfig(id="lot", source="pole3", polygon=[tuple(p) for p in uv]),
        "drone9": ZoneConfig(
            id="view", source="drone9", polygon=[(0, 0), (1280, 0), (1280, 720), (0, 720)]
        ),
    }
    rules = {
        s: DumpingRule(
            DumpingRuleConfig(id="dumping", zone=z.id, stop_s=2, confirm_s=1, min_score=0.3),
            z,
            names,
        )
        for s, z in zones.items()
    }
    trackers = {s: ByteTracker(TrackingConfig(new_track_score=0.35), names) for s in sims}
    ground = {s: GroundTracks(loc) for s, loc in locators.items()}
    scenes = {"pole3": SceneView(False, [rules["pole3"]]), "drone9": SceneView(True, [])}
    world = WorldTracker(gate_m=2.5)
    merger = IncidentMerger(merge_m=10.0)
    acc = mm.MOTAccumulator(auto_id=True)
    errors: dict[str, list[float]] = {"pole3": [], "drone9": []}
    alerts: list[dict[str, Any]] = []
    fixed_xy = cam0.position_m[:2]
    sc = sims["pole3"].scenario
    frames = sims["pole3"].n_frames if max_s is None else round(max_s * sc.fps)
    for i in range(frames):
        t = i / sc.fps
        truth_xy: dict[int, np.ndarray] = {}
        seen: dict[int, np.ndarray] = {}
        for s, sim in sims.items():
            image, truths, pose = sim.frame(i)
            frame = Frame(s, i, t, int(t * 1e9), image, pose.telemetry)
            visible = [x for x in truths if x.visibility >= 0.25 and x.cls in names]
            if detector is not None:
                dets = detector.detect_images([image])[0]
            else:
                boxes = np.array([x.box_xyxy for x in visible], np.float32).reshape(-1, 4)
                dets = Detections(
                    boxes,
                    np.full(len(visible), 0.9, np.float32),
                    np.array([names.index(x.cls) for x in visible], np.int32),
                    names,
                )
            tr = trackers[s]
            tracks = tr.update(dets, t)
            if tr.ended:
                rules[s].forget(tr.ended)
                ground[s].forget(tr.ended)
                world.forget(s, tr.ended)
            tracks = ground[s](tracks, frame)
            gids = world.update(s, tracks, t)
            for k, gid in enumerate(gids):
                if gid >= 0:
                    seen[int(gid)] = tracks.ground_m[k].astype(np.float64)
            for x in visible:
                truth_xy[x.actor_id] = np.array(x.world_m[:2])
            # position errors of tracks that match a true object in this sensor's picture
            if len(tracks) and visible:
                iou = iou_matrix(tracks.xyxy, np.array([x.box_xyxy for x in visible], np.float32))
                for k in range(len(tracks)):
                    j = int(np.argmax(iou[k]))
                    if iou[k, j] < 0.5 or not np.all(np.isfinite(tracks.ground_m[k])):
                        continue
                    true_xy = np.array(visible[j].world_m[:2])
                    if s == "pole3" and np.hypot(*(true_xy - fixed_xy)) > 30:
                        continue
                    errors[s].append(float(np.hypot(*(tracks.ground_m[k] - true_xy))))
            for e in rules[s].step(tracks, frame, scenes[s].view(frame, tracks)):
                e = merger(with_position(e, locators[s], frame))
                if e.phase == "start":
                    pos = e.attributes.get("position") or {}
                    alerts.append(
                        {
                            "t": t,
                            "sensor": s,
                            "east": pos.get("east_m"),
                            "north": pos.get("north_m"),
                        }
                    )
        tids = sorted(truth_xy)
        hids = sorted(seen)
        dist = np.array(
            [[float(np.sum((truth_xy[a] - seen[b]) ** 2)) for b in hids] for a in tids]
        ).reshape(len(tids), len(hids))
        dist[dist > 4.0] = np.nan  # beyond 2 m: no match
        acc.update(tids, hids, dist)
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
