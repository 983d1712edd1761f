"""Event detection scored against the simulator's ground truth, the way the MIVIA contest scores.

Every case of the suite (positive and negative cases for each kind, fixed cameras and a drone,
several seeds) is rendered frame by frame and run through the engine's own stages — the bundled
detector, ByteTrack, the scene view and every rule at once — so each case also tests the other
rules for false alarms. Rule settings and zones are fixed here, the same for every case; zones
come from the scenario's areas projected into the camera image (the whole picture for drones).

Scoring, per event kind: an alert (an incident's `start`) is a true positive when it falls in
[start - 1 s, end + 2 s] of a true event of its kind in the same case, each true event matched at
most once; other alerts are false positives; unmatched true events false negatives. Notification
delay = alert time - notifiable time (at least 0), where `notifiable` is the true start plus the
operator's own threshold for kinds defined by one (loitering: dwell_s; abandoned objects:
unattended_s). Precision, recall, F1 per kind; delay p50/p95; FPS of the engine (rendering
excluded) and the process's peak memory.
"""

from __future__ import annotations

import argparse
import copy
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from engine.config import (
    AbandonedObjectRuleConfig,
    CrowdRuleConfig,
    DetectorConfig,
    DumpingRuleConfig,
    LoiteringRuleConfig,
    TrackingConfig,
    ZoneConfig,
)
from engine.detect import OnnxDetector
from engine.rules import AbandonedObjectRule, CrowdRule, DumpingRule, LoiteringRule, Rule
from engine.rules.scene_view import SceneView
from engine.sim import Simulation
from engine.sim.scenario import DroneSensor, parse_scenario
from engine.track import ByteTracker
from engine.types import Frame

__all__ = ["KINDS", "SUITE", "Case", "add_arguments", "run", "score"]

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "configs" / "scenarios"
BUNDLED = REPO / "models" / "lookout_sim_yolo11n.onnx"
KINDS = ("dumping", "crowd_gathering", "crowd_dispersal", "loitering", "abandoned_object")


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
    import cv2

    poly = np.asarray(areas[0].polygon, np.float64)
    centre = poly.mean(axis=0)
    grown = centre + (poly - centre) * (
        1 + buffer_m / max(1e-6, float(np.abs(poly - centre).max()))
    )
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


def run_case(case: Case, seed: int, detector: OnnxDetector, max_s: float | None) -> dict[str, Any]:
    """Render and run one case; its alerts, true events and engine time."""
    sim = Simulation(_patched(case), seed)
    sc = sim.scenario
    names = detector.class_names
    # loitering is watched where an operator would draw it: in front of gates (none elsewhere)
    has_gate = any(a.kind == "gate" for a in sc.world.areas)
    gates = _zone("l", sim, ("gate",), 4.0) if has_gate else None
    rules: list[Rule] = [
        DumpingRule(
            DumpingRuleConfig(zone="d", **DUMPING), _zone("d", sim, ("no_dumping",), 0), names
        ),
        CrowdRule(CrowdRuleConfig(zone="c", **CROWD), _zone("c", sim, (), 0), names),
        *(
            [LoiteringRule(LoiteringRuleConfig(zone="l", **LOITERING), gates, names)]
            if gates is not None
            else []
        ),
        AbandonedObjectRule(
            AbandonedObjectRuleConfig(zone="a", **ABANDONED), _zone("a", sim, (), 0), names
        ),
    ]
    tracker = ByteTracker(TrackingConfig(**TRACKING), names)
    scene = SceneView(isinstance(sc.sensor, DroneSensor), rules)
    frames = sim.n_frames if max_s is None else min(sim.n_frames, round(max_s * sc.fps))
    alerts: list[dict[str, Any]] = []
    engine_s = 0.0
    for i in range(frames):
        image, _, _ = sim.frame(i)
        t0 = time.perf_counter()
        frame = Frame("cam", i, sim.time_of(i), time.monotonic_ns(), image)
        tracks = tracker.update(detector.detect_images([image])[0], frame.pts_s)
        for rule in rules:
            if tracker.ended:
                rule.forget(tracker.ended)
        view = scene.view(frame, tracks)
        events = [e for rule in rules for e in rule.step(tracks, frame, view)]
        engine_s += time.perf_counter() - t0
        alerts += [{"kind": e.kind, "t": e.pts_s} for e in events if e.phase == "start"]
    end = frames / sc.fps
    truth = [
        {"kind": e.kind, "start": e.start_s, "end": min(e.end_s, end)}
        for e in sim.script.events
        if e.start_s + POLICY_DELAY.get(e.kind, 0) < end
    ]
    return {
        "case": case.name,
        "seed": seed,
        "frames": frames,
        "engine_s": engine_s,
        "alerts": alerts,
        "truth": truth,
    }


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def score(
    results: list[dict[str, Any]], kinds: tuple[str, ...] = KINDS
) -> dict[str, dict[str, Any]]:
    """Precision, recall, F1 and delays per kind over all cases (see the module docstring)."""
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        tp = fp = fn = 0
        delays: list[float] = []
        for r in results:
            truths = [t for t in r["truth"] if t["kind"] == kind]
            used = [False] * len(truths)
            for a in sorted((a for a in r["alerts"] if a["kind"] == kind), key=lambda a: a["t"]):
                hit = None
                for k, t in enumerate(truths):
                    if not used[k] and t["start"] - 1.0 <= a["t"] <= t["end"] + 2.0:
                        hit = k
                        break
                if hit is None:
                    fp += 1
                    continue
                used[hit] = True
                tp += 1
                notifiable = truths[hit]["start"] + POLICY_DELAY.get(kind, 0.0)
                delays.append(max(0.0, a["t"] - notifiable))
            fn += used.count(False)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[kind] = {
            "kind": kind,
            "true_events": tp + fn,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "delay_p50_s": _pct(delays, 50),
            "delay_p95_s": _pct(delays, 95),
        }
    return out


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
                f"{[(a['kind'], round(a['t'], 1)) for a in r['alerts']]}; truth "
                f"{[(t['kind'], round(t['start'], 1)) for t in r['truth']]}",
                flush=True,
            )
    per_kind = score(results)
    frames = sum(r["frames"] for r in results)
    engine_s = sum(r["engine_s"] for r in results)
    fps = frames / engine_s if engine_s else 0.0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    delays = [k["delay_p95_s"] for k in per_kind.values() if k["delay_p95_s"] is not None]
    summary = {
        "cases": len(results),
        "true_events": sum(k["true_events"] for k in per_kind.values()),
        "min_f1": min(k["f1"] for k in per_kind.values()),
        "max_delay_p95_s": max(delays) if delays else None,
        **{f"f1_{k}": v["f1"] for k, v in per_kind.items()},
        "fps": fps,
        "peak_rss_mb": peak_mb,
        "model": args.model.name,
    }
    table = [{**v, "fps": fps, "peak_rss_mb": peak_mb} for v in per_kind.values()]
    return {
        "suite": "events",
        "summary": summary,
        "per_kind": per_kind,
        "cases": results,
        "table": table,
    }
