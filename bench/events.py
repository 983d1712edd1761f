"""Event detection scored against the simulator's ground truth, the way the MIVIA contest scores.

Every case of the suite (positive and negative cases for each kind, fixed cameras and a drone,
several seeds) is rendered frame by frame and run through the engine's own source loop and
pipeline, built from a config by the function the runner uses (bench/sim_run.py) — the bundled
detector, ByteTrack, the scene view and every rule at once — so each case also tests the other
rules for false alarms. Rule settings and zones are fixed here, the same for every case; zones
come from the scenario's areas projected into the camera image (the whole picture for drones).

Scoring, per event kind: an alert (an incident's `start`; for dumping, which comes in stages,
its `confirmed` alert: a stop cleared without a pile is no dumping, and on a delivery a true
negative) is a true positive when it falls in [start - 1 s, end + 2 s] of a true event of its
kind in the same case (for kinds about one object, loitering and abandoned objects, its box must
also show that person or object: another incident for the same person is a false one) (a staged
incident by its first alert: a patrol drone that confirms on its next pass, after the truck has
gone, confirms the incident it suspected while the truck stood), each true event matched at most
once; other alerts are false positives;
unmatched true events false negatives. Notification delay = alert time - notifiable time (at
least 0), where `notifiable` is the true start plus the operator's own threshold for kinds
defined by one (loitering: dwell_s; abandoned objects: unattended_s). Dumping has two delays:
its first alert (`suspected`) from the vehicle's stop, and its confirmation from the moment the
pile is first at least half visible to the sensor (the simulator's truth: at least half of it
unoccluded, and at least half the image area it has when it is done — a pile that has just
begun to grow is not yet half visible); its `delay_p95_s` is the larger. Dumping is also
reported per view (`dumping_drone`, `dumping_fixed`). Precision,
recall, F1 per kind; delay p50/p95; FPS of the engine (rendering excluded) and the process's
peak memory.
"""

from __future__ import annotations

import argparse
import copy
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from bench.sim_run import SensorStep, run_sims
from engine.config import Config, DetectorConfig, ZoneConfig
from engine.detect import OnnxDetector
from engine.rules.base import covered
from engine.sim import Simulation
from engine.sim.render import FrameTruth
from engine.sim.scenario import DroneSensor, parse_scenario

__all__ = [
    "KINDS",
    "SUITE",
    "Case",
    "add_arguments",
    "case_config",
    "half_visible_at",
    "run",
    "score",
    "score_views",
]

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "configs" / "scenarios"
BUNDLED = REPO / "models" / "lookout_sim_yolo11n.onnx"
KINDS = ("dumping", "crowd_gathering", "crowd_dispersal", "loitering", "abandoned_object")
# kinds about one object, and which of a true event's actors it is: an alert counts for the
# true event only if its box shows that actor (a second incident for the same person is a
# false one, as is one for somebody else nearby)
WHO = {"loitering": 0, "abandoned_object": -1}


@dataclass(frozen=True)
class Case:
    """One scenario of the suite, with changes to its incidents."""

    name: str
    file: str
    changes: tuple[tuple[str, Any], ...] = ()


SUITE = (
    Case("dumping-drone", "dumping_drone.yaml"),
    Case("dumping-fixed", "dumping_fixed.yaml"),
    Case("truck-stops-no-dumping", "dumping_fixed.yaml", (("incidents.0.leaves_pile", False),)),
    # the truck comes from beyond the lot towards the camera: its pile is behind it, hidden
    # from the pole until it drives off
    Case(
        "dumping-pile-hidden",
        "dumping_fixed.yaml",
        (("incidents.0.path", [[-70, 34], [-10, 34], [0, 12], [12, 30], [70, 34]]),),
    ),
    # a delivery stop seen from the patrol drone: suspected, then cleared on the return pass
    Case(
        "drone-truck-stops-no-dumping",
        "dumping_drone.yaml",
        (("incidents.0.leaves_pile", False),),
    ),
    Case("crowd-gathers-scatters", "crowd_station_gate.yaml"),
    Case("crowd-gathers-stays", "crowd_station_gate.yaml", (("incidents.0.disperse_at_s", None),)),
    Case("loitering-ticket-gate", "loitering_ticket_gate.yaml"),
    Case("abandoned-bag", "abandoned_platform.yaml"),
    Case("quiet-street", "quiet_street.yaml"),
)

# The rule settings every case runs with (zones are per case).
DUMPING = {"id": "dumping", "stop_s": 2.0, "confirm_s": 1.0, "min_score": 0.3}
CROWD = {
    "id": "crowd",
    "min_count": 10,
    "gather_rise": 6,
    "gather_window_s": 20.0,
    "run_speed": 1.6,
    "min_runners": 4,
    "min_score": 0.3,
}
LOITERING: dict[str, Any] = {
    "id": "loitering",
    "dwell_s": 30.0,
    "grace_s": 4.0,
    "min_score": 0.3,
    "min_movement": 0.5,
    "clear_after_s": 10.0,
}
ABANDONED: dict[str, Any] = {
    "id": "abandoned",
    "unattended_s": 10.0,
    "object_classes": [],
    "min_size_px": 24,
}
# the bundled model is less sure of itself than COCO models: tracks start from 0.35
TRACKING: dict[str, Any] = {"new_track_score": 0.35}
POLICY_DELAY: dict[str, float] = {
    "loitering": float(LOITERING["dwell_s"]),
    "abandoned_object": float(ABANDONED["unattended_s"]),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench events`."""
    p.add_argument("--model", type=Path, default=BUNDLED, help="detector (default: bundled)")
    p.add_argument("--seeds", default="1,2", help="scenario seeds, comma-separated")
    p.add_argument("--cases", help="only these cases (comma-separated names)")
    p.add_argument("--max-s", type=float, help="cut every case to this many seconds (quick runs)")


def _patched(case: Case) -> Any:
    raw = yaml.safe_load((SCENARIOS / case.file).read_text())
    for path, value in case.changes:
        *head, last = path.split(".")
        node = raw
        for key in head:
            node = node[int(key)] if key.isdigit() else node[key]
        node[last] = value
    return parse_scenario(yaml.safe_dump(raw), case.name)


def _zone(zid: str, sim: Simulation, kinds: tuple[str, ...], buffer_m: float) -> ZoneConfig:
    """The scenario's first area of these kinds, grown by buffer_m and projected into the
    image; the whole picture for drones or when there is none."""
    sensor = sim.scenario.sensor
    w, h = sensor.resolution
    whole = ZoneConfig(id=zid, source="cam", polygon=[(0, 0), (w, 0), (w, h), (0, h)])
    areas = [a for a in sim.scenario.world.areas if a.kind in kinds]
    if isinstance(sensor, DroneSensor) or not areas:
        return whole
    poly = np.asarray(areas[0].polygon, np.float64)
    if buffer_m > 0:  # buffer_m on every side: the hull of circles round the corners
        ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        ring = buffer_m * np.column_stack([np.cos(ang), np.sin(ang)])
        poly = (poly[:, None, :] + ring[None]).reshape(-1, 2)
    grown = cv2.convexHull(poly.astype(np.float32))[:, 0, :].astype(np.float64)
    dense = np.concatenate(
        [np.linspace(grown[i], grown[(i + 1) % len(grown)], 20) for i in range(len(grown))]
    )
    cam = sim.rig.pose(0.0).camera
    uv, front = cam.project(np.column_stack([dense, np.zeros(len(dense))]))
    uv = np.clip(uv[front], [-w, -h], [2 * w, 2 * h]).astype(np.float32)
    hull = cv2.convexHull(uv)[:, 0, :]
    _, clipped = cv2.intersectConvexConvex(
        hull, np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    )
    if clipped is None or len(clipped) < 3:
        return whole
    return ZoneConfig(
        id=zid, source="cam", polygon=[(float(x), float(y)) for x, y in clipped[:, 0]]
    )


def case_config(sim: Simulation, model: Path) -> Config:
    """The engine config of one case: one source, `cam` (moving for a drone; a fixed camera
    calibrated to the ground by its known pose), the site's origin, the suite's rules, zones
    from the scenario's areas; loitering only where there are gates (an operator draws it in
    front of them, not elsewhere)."""
    sc = sim.scenario
    zones = [_zone("d", sim, ("no_dumping",), 0), _zone("c", sim, (), 0)]
    rules: list[dict[str, Any]] = [
        {"type": "dumping", "zone": "d", **DUMPING},
        {"type": "crowd", "zone": "c", **CROWD},
    ]
    if any(a.kind == "gate" for a in sc.world.areas):
        zones.append(_zone("l", sim, ("gate",), 4.0))
        rules.append({"type": "loitering", "zone": "l", **LOITERING})
    zones.append(_zone("a", sim, (), 0))
    rules.append({"type": "abandoned_object", "zone": "a", **ABANDONED})
    drone = isinstance(sc.sensor, DroneSensor)
    source: dict[str, Any] = {
        "id": "cam",
        "type": "file",
        "path": f"{sc.name}.sim",  # rendered by the bench (engine.sim.source), not read
        "rate": "max",
        "moving": drone,
    }
    if not drone:  # a fixed camera is calibrated as deployed ones are (`lookout calibrate`)
        cam = sim.rig.pose(0.0).camera
        source["calibration"] = {"homography": np.asarray(cam.ground_homography()).tolist()}
    o = sc.world.origin
    return Config.model_validate(
        {
            "site": "bench",
            "geo": {"lat": o.lat_deg, "lon": o.lon_deg, "alt_m": o.alt_m},
            "sources": [source],
            "detector": {"model": str(model), "conf": 0.2, "iou": 0.5},
            "tracking": TRACKING,
            "zones": zones,
            "rules": rules,
        }
    )


def run_case(case: Case, seed: int, detector: OnnxDetector, max_s: float | None) -> dict[str, Any]:
    """Render and run one case through the engine's own pipeline; its alerts, true events and
    engine time."""
    sim = Simulation(_patched(case), seed)
    sc = sim.scenario
    cfg = case_config(sim, detector.cfg.model)
    frames = sim.n_frames if max_s is None else min(sim.n_frames, round(max_s * sc.fps))
    alerts: list[dict[str, Any]] = []
    piles = {e.actors[1]: e for e in sim.script.events if e.kind == "dumping"}
    seen: dict[int, list[tuple[float, float]]] = {}  # pile actor -> (time, area) half unoccluded

    def on_step(step: SensorStep) -> None:
        for e in step.events:
            if e.phase == "start" or e.stage is not None:
                alert = {"kind": e.kind, "t": e.pts_s, "stage": e.stage, "id": e.event_id}
                if e.kind in WHO and step.frame is not None:
                    alert["actors"] = _overlapping(e.xyxy, step.source.truths)
                alerts.append(alert)
        if step.frame is not None:
            for x in step.source.truths:
                if x.actor_id in piles and x.visibility >= 0.5:
                    x0, y0, x1, y1 = x.box_xyxy
                    seen.setdefault(x.actor_id, []).append(
                        (step.frame.pts_s, (x1 - x0) * (y1 - y0))
                    )

    engine_s = run_sims(
        cfg,
        {"cam": sim},
        lambda _src: detector.detect_images,
        detector.class_names,
        on_step,
        max_frames=frames,
    )
    end = frames / sc.fps
    half_visible = {pile: half_visible_at(areas) for pile, areas in seen.items()}
    truth = [
        {
            "kind": e.kind,
            "start": e.start_s,
            "end": min(e.end_s, end),
            **({"pile_half_visible": half_visible.get(e.actors[1])} if e.kind == "dumping" else {}),
            **({"actor": e.actors[WHO[e.kind]]} if e.kind in WHO else {}),
        }
        for e in sim.script.events
        if e.start_s + POLICY_DELAY.get(e.kind, 0) < end
    ]
    return {
        "view": "drone" if isinstance(sc.sensor, DroneSensor) else "fixed",
        "case": case.name,
        "seed": seed,
        "frames": frames,
        "engine_s": engine_s,
        "alerts": alerts,
        "truth": truth,
    }


def _overlapping(xyxy: np.ndarray, truths: list[FrameTruth]) -> list[int]:
    """The truth objects of a frame that an alert's boxes show: a box and the object's box
    mostly cover one another (half of either lies inside the other)."""
    boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
    out = []
    for x in truths:
        truth = np.asarray(x.box_xyxy, np.float32)
        if covered(truth, boxes) or any(covered(b, truth[None]) for b in boxes):
            out.append(x.actor_id)
    return out


def half_visible_at(seen: list[tuple[float, float]]) -> float:
    """The first time a pile, seen at least half unoccluded at (time, image area), has half the
    area it has once grown (its largest such area; the sensor's distance held)."""
    full = max(area for _, area in seen)
    return next(t for t, area in seen if area >= 0.5 * full)


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _counted(alert: dict[str, Any]) -> bool:
    """The alert that makes an incident one of its kind: a staged incident's confirmation,
    any other incident's start (alerts recorded without stages: every start)."""
    if alert["kind"] == "dumping" and "stage" in alert:
        return alert["stage"] == "confirmed"
    return True


def score(
    results: list[dict[str, Any]], kinds: tuple[str, ...] = KINDS
) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and delays per kind over all cases (see the module docstring)."""
    return {kind: _score_kind(results, kind) for kind in kinds}


def score_views(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Dumping scored per view (`dumping_drone`, `dumping_fixed`): cases carry their `view`."""
    return {
        f"dumping_{view}": {
            **_score_kind([r for r in results if r.get("view") == view], "dumping"),
            "kind": f"dumping_{view}",
        }
        for view in ("drone", "fixed")
    }


def _score_kind(results: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    tp = fp = fn = 0
    delays: list[float] = []
    suspected: list[float] = []
    for r in results:
        truths = [t for t in r["truth"] if t["kind"] == kind]
        used = [False] * len(truths)
        mine = [a for a in r["alerts"] if a["kind"] == kind]
        first: dict[Any, float] = {}  # incident -> its first alert's time
        for a in sorted(mine, key=lambda a: a["t"]):
            first.setdefault(a.get("id"), a["t"])
        for a in sorted((a for a in mine if _counted(a)), key=lambda a: a["t"]):
            hit = None
            at = first[a.get("id")] if a.get("stage") else a["t"]  # a staged incident: its first
            for k, t in enumerate(truths):
                if (
                    not used[k]
                    and t["start"] - 1.0 <= at <= t["end"] + 2.0
                    and ("actor" not in t or "actors" not in a or t["actor"] in a["actors"])
                ):
                    hit = k
                    break
            if hit is None:
                fp += 1
                continue
            used[hit] = True
            tp += 1
            truth = truths[hit]
            if kind == "dumping":
                suspected.append(max(0.0, first[a.get("id")] - truth["start"]))
                seen = truth.get("pile_half_visible")
                notifiable = truth["start"] if seen is None else seen
            else:
                notifiable = truth["start"] + POLICY_DELAY.get(kind, 0.0)
            delays.append(max(0.0, a["t"] - notifiable))
        fn += used.count(False)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    p95 = _pct(delays, 95)
    row: dict[str, Any] = {
        "kind": kind,
        "true_events": tp + fn,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "delay_p50_s": _pct(delays, 50),
        "delay_p95_s": p95,
    }
    if kind == "dumping":
        s95 = _pct(suspected, 95)
        row["delay_suspected_p95_s"] = s95
        row["delay_confirmed_p95_s"] = p95
        row["delay_p95_s"] = max((d for d in (p95, s95) if d is not None), default=None)
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every case under every seed; the scores and the engine's speed."""
    detector = OnnxDetector(DetectorConfig(model=args.model, conf=0.2, iou=0.5))
    seeds = [int(s) for s in str(args.seeds).split(",")]
    wanted = set(args.cases.split(",")) if args.cases else None
    cases = [c for c in SUITE if wanted is None or c.name in wanted]
    results = []
    for seed in seeds:
        for case in cases:
            r = run_case(copy.deepcopy(case), seed, detector, args.max_s)
            results.append(r)
            print(
                f"  {case.name} seed {seed}: {len(r['alerts'])} alerts "
                f"{[(a['stage'] or a['kind'], round(a['t'], 1)) for a in r['alerts']]}; truth "
                f"{[(t['kind'], round(t['start'], 1)) for t in r['truth']]}",
                flush=True,
            )
    per_kind = score(results)
    per_view = score_views(results)
    frames = sum(r["frames"] for r in results)
    engine_s = sum(r["engine_s"] for r in results)
    fps = frames / engine_s if engine_s else 0.0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kinds = list(per_kind.values())
    delays = [k["delay_p95_s"] for k in kinds if k["delay_p95_s"] is not None]
    summary = {
        "cases": len(results),
        "true_events": sum(k["true_events"] for k in kinds),
        "min_f1": min(k["f1"] for k in kinds),
        "max_delay_p95_s": max(delays) if delays else None,
        **{f"f1_{k}": v["f1"] for k, v in (per_kind | per_view).items()},
        "fps": fps,
        "peak_rss_mb": peak_mb,
        "model": args.model.name,
    }
    table = [{**v, "fps": fps, "peak_rss_mb": peak_mb} for v in (per_kind | per_view).values()]
    return {
        "suite": "events",
        "summary": summary,
        "per_kind": per_kind,
        "per_view": per_view,
        "cases": results,
        "table": table,
    }
