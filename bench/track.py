"""Tracking quality and speed: Lookout's ByteTrack beside the peers, on the same detections.

Sequences (all scored with py-motmetrics: MOTA, IDF1, ID switches):
- TUD-Campus and TUD-Stadtmitte: the real pedestrian ground truth py-motmetrics ships, turned
  into detections (boxes jittered by 5 % of their size, 10 % missed, 5 % false positives, scores
  drawn per box; fixed seed);
- simulator scenarios: jittered ground-truth detections from the render's truth, and the bundled
  detector in the loop on the rendered video.
Peers: supervision 0.29 `ByteTrack`, Roboflow `trackers` `ByteTrackTracker`, and Ultralytics'
`BYTETracker` (it needs torch: run in the interpreter given by --ultralytics-python, e.g. the
`make model` environment; left out, and said so, where there is none).
Speed: ms per update at 100 objects per frame (synthetic, moving, with misses).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["add_arguments", "run"]

REPO = Path(__file__).resolve().parents[1]
Sequence_ = list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int32]]]
GroundTruth = list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench track`."""
    default = REPO / ".venv-train" / "bin" / "python"
    p.add_argument(
        "--ultralytics-python",
        type=Path,
        default=default if default.exists() else None,
        help="interpreter with ultralytics (torch) for its BYTETracker",
    )
    p.add_argument("--no-sim", action="store_true", help="skip the simulator sequences")


# --- sequences ------------------------------------------------------------------------------


def _mot_gt(path: Path) -> dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    out = {}
    for f in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == f]
        xyxy = np.concatenate([r[:, 2:4], r[:, 2:4] + r[:, 4:6]], 1).astype(np.float32)
        out[int(f)] = (r[:, 1].astype(np.int64), xyxy)
    return out


def detections_from_truth(gt: GroundTruth, seed: int, size_hw: tuple[int, int]) -> Sequence_:
    """Detections a decent detector would give: jitter, misses, false positives, scores."""
    rng = np.random.default_rng(seed)
    h, w = size_hw
    seq: Sequence_ = []
    for _, boxes in gt:
        keep = rng.random(len(boxes)) > 0.10
        b = boxes[keep].copy()
        wh = np.maximum(b[:, 2:] - b[:, :2], 1.0)
        b += rng.normal(0, 0.05, b.shape).astype(np.float32) * np.concatenate([wh, wh], 1)
        score = rng.uniform(0.35, 0.95, len(b)).astype(np.float32)
        n_fp = rng.binomial(max(len(boxes), 1), 0.05)
        if n_fp:
            c = rng.uniform([0, 0], [w, h], (n_fp, 2))
            s = rng.uniform(20, 80, (n_fp, 2))
            fp = np.concatenate([c, c + s], 1).astype(np.float32)
            b = np.concatenate([b, fp])
            score = np.concatenate([score, rng.uniform(0.1, 0.6, n_fp).astype(np.float32)])
        seq.append((b.astype(np.float32), score, np.zeros(len(b), np.int32)))
    return seq


def tud_sequences() -> list[dict[str, Any]]:
    """TUD-Campus and TUD-Stadtmitte from py-motmetrics' package data."""
    base = Path(str(resources.files("motmetrics"))) / "data"
    out = []
    for k, name in enumerate(("TUD-Campus", "TUD-Stadtmitte")):
        gt_by_frame = _mot_gt(base / name / "gt.txt")
        frames = range(1, max(gt_by_frame) + 1)
        empty = (np.zeros(0, np.int64), np.zeros((0, 4), np.float32))
        gt = [gt_by_frame.get(f, empty) for f in frames]
        out.append(
            {
                "name": name,
                "fps": 25.0,
                "gt": gt,
                "dets": detections_from_truth(gt, 100 + k, (480, 640)),
            }
        )
    return out


def sim_sequences(tmp: Path) -> list[dict[str, Any]]:
    """Rendered scenarios: jittered truth, and the bundled detector in the loop."""
    from engine.config import DetectorConfig, FileSourceConfig
    from engine.detect import OnnxDetector
    from engine.sim import load_scenario
    from engine.sim.simulation import render_scenario
    from engine.sources import FileSource

    det = OnnxDetector(
        DetectorConfig(model=REPO / "models" / "lookout_sim_yolo11n.onnx", conf=0.1, threads=2)
    )
    person = det.class_names.index("person")
    out = []
    for name in ("crowd_station_gate", "loitering_ticket_gate"):
        sc = load_scenario(REPO / "configs" / "scenarios" / f"{name}.yaml")
        render_scenario(sc, tmp / name)
        truth = json.loads((tmp / name / "truth.json").read_text())
        gt = []
        for fr in truth["frames"]:
            objs = [o for o in fr["objects"] if o["class"] == "person" and o["visibility"] >= 0.3]
            ids = np.array([o["actor_id"] for o in objs], np.int64)
            gt.append((ids, np.array([o["box_xyxy"] for o in objs], np.float32).reshape(-1, 4)))
        size = (sc.sensor.resolution[1], sc.sensor.resolution[0])
        out.append(
            {
                "name": f"{name} (jittered truth)",
                "fps": sc.fps,
                "gt": gt,
                "dets": detections_from_truth(gt, 7, size),
            }
        )
        video = next((tmp / name).glob("*.mp4"))
        src = FileSource(FileSourceConfig(id="s", path=video, rate="max"))
        src.open()
        dets: Sequence_ = []
        while (frame := src.read()) is not None:
            d = det.detect([frame])[0]
            keep = d.class_id == person
            dets.append((d.xyxy[keep], d.score[keep], np.zeros(int(keep.sum()), np.int32)))
        out.append(
            {"name": f"{name} (detector)", "fps": sc.fps, "gt": gt[: len(dets)], "dets": dets}
        )
    return out


# --- trackers -------------------------------------------------------------------------------

# one tracker run over a sequence: per frame, the track ids and their boxes
TrackerPass = Callable[
    [Sequence_, float], list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]
]


def run_lookout(
    seq: Sequence_, fps: float
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
    from engine.track import ByteTracker
    from engine.types import Detections

    tracker = ByteTracker(class_names=("person",))
    out = []
    for k, (xyxy, score, cls) in enumerate(seq):
        t = tracker.update(Detections(xyxy, score, cls, ("person",)), k / fps)
        out.append((t.track_id, t.xyxy))
    return out


def _sv_runner(make: Callable[[float], Any], method: str) -> TrackerPass:
    def run(
        seq: Sequence_, fps: float
    ) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        import supervision as sv

        tracker = make(fps)
        out = []
        for xyxy, score, cls in seq:
            d = sv.Detections(
                xyxy=xyxy.reshape(-1, 4).astype(np.float32), confidence=score, class_id=cls
            )
            r = getattr(tracker, method)(d)
            ids = np.asarray(r.tracker_id if r.tracker_id is not None else [], np.int64)
            keep = ids >= 0
            out.append((ids[keep], np.asarray(r.xyxy, np.float32).reshape(-1, 4)[keep]))
        return out

    return run


def _supervision(fps: float) -> Any:
    import supervision as sv

    return sv.ByteTrack(frame_rate=round(fps))


def _trackers(fps: float) -> Any:
    from trackers import ByteTrackTracker

    return ByteTrackTracker(frame_rate=fps)


PEERS: dict[str, TrackerPass] = {
    "supervision ByteTrack": _sv_runner(_supervision, "update_with_detections"),
    "trackers ByteTrackTracker": _sv_runner(_trackers, "update"),
}


def run_ultralytics(
    python: Path, sequences: list[dict[str, Any]], tmp: Path, speed_seq: Sequence_
) -> dict[str, Any] | None:
    """Ultralytics' BYTETracker in its own interpreter (it imports torch): tracks, and ms/update."""

    def plain(seq: Sequence_) -> list[list[Any]]:
        return [[b.tolist(), sc.tolist()] for b, sc, _ in seq]

    job = {
        "sequences": [{"fps": s["fps"], "dets": plain(s["dets"])} for s in sequences],
        "speed": plain(speed_seq),
    }
    (tmp / "job.json").write_text(json.dumps(job))
    peer = Path(__file__).resolve().parent / "track_peer_ultralytics.py"
    run = subprocess.run(
        [str(python), str(peer), str(tmp / "job.json"), str(tmp / "out.json")],
        capture_output=True,
        text=True,
        timeout=1800,
        env={"YOLO_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    if run.returncode:
        print(f"ultralytics peer failed: {run.stderr.strip()[-400:]}", file=sys.stderr)
        return None
    return json.loads((tmp / "out.json").read_text())


# --- scoring --------------------------------------------------------------------------------


def score(
    gt: GroundTruth, hyp: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]], name: str
) -> Any:
    """A motmetrics accumulator of one tracker on one sequence (IoU matching at 0.5)."""
    import motmetrics as mm

    from engine.track import iou_matrix

    acc = mm.MOTAccumulator(auto_id=True)
    for (gid, gbox), (hid, hbox) in zip(gt, hyp, strict=True):
        # motmetrics' own iou_matrix needs NumPy < 2: the same distance, 1 - IoU, NaN below 0.5
        iou = iou_matrix(
            gbox.reshape(-1, 4).astype(np.float32), hbox.reshape(-1, 4).astype(np.float32)
        )
        dist = np.where(iou >= 0.5, 1.0 - iou, np.nan)
        acc.update(gid.tolist(), hid.tolist(), dist)
    return acc


def speed_sequence(n_obj: int = 100, frames: int = 300, seed: int = 5) -> Sequence_:
    """100 moving objects per frame, 10 % missed per frame."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 1800, (n_obj, 2))
    vel = rng.normal(0, 3, (n_obj, 2))
    size = rng.uniform(20, 60, (n_obj, 2))
    seq: Sequence_ = []
    for _ in range(frames):
        pos += vel
        keep = rng.random(n_obj) > 0.1
        c = pos[keep] + rng.normal(0, 1, (int(keep.sum()), 2))
        s = size[keep]
        seq.append(
            (
                np.concatenate([c - s / 2, c + s / 2], 1).astype(np.float32),
                rng.uniform(0.3, 0.95, int(keep.sum())).astype(np.float32),
                np.zeros(int(keep.sum()), np.int32),
            )
        )
    return seq


def _ms_per_update(runner: TrackerPass, seq: Sequence_) -> float:
    runner(seq[:20], 30.0)  # warm (numba, imports)
    t0 = time.perf_counter()
    runner(seq, 30.0)
    return (time.perf_counter() - t0) / len(seq) * 1000


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every tracker on every sequence; overall metrics per tracker; speed at 100 objects."""
    import motmetrics as mm

    with tempfile.TemporaryDirectory(prefix="lookout-bench-track-") as d:
        tmp = Path(d)
        sequences = tud_sequences() + ([] if args.no_sim else sim_sequences(tmp))
        speed_seq = speed_sequence()
        trackers: dict[str, TrackerPass] = {"lookout": run_lookout, **PEERS}
        results = {
            name: [fn(s["dets"], s["fps"]) for s in sequences] for name, fn in trackers.items()
        }
        speed = {name: _ms_per_update(fn, speed_seq) for name, fn in trackers.items()}
        ultra = None
        if args.ultralytics_python:
            ultra = run_ultralytics(args.ultralytics_python, sequences, tmp, speed_seq)
        if ultra is not None:
            results["ultralytics BYTETracker"] = [
                [
                    (np.asarray(ids, np.int64), np.asarray(b, np.float32).reshape(-1, 4))
                    for ids, b in seq
                ]
                for seq in ultra["sequences"]
            ]
            speed["ultralytics BYTETracker"] = ultra["ms_per_update"]
    mh = mm.metrics.create()
    table = []
    overall: dict[str, dict[str, float]] = {}
    for name, per_seq in results.items():
        accs = [score(s["gt"], h, s["name"]) for s, h in zip(sequences, per_seq, strict=True)]
        names = [s["name"] for s in sequences]
        df = mh.compute_many(
            accs, metrics=["mota", "idf1", "num_switches"], names=names, generate_overall=True
        )
        for seq_name, row in df.iterrows():
            ms = speed[name] if seq_name == "OVERALL" else None
            table.append(
                {
                    "tracker": name,
                    "sequence": seq_name,
                    "mota": float(row["mota"]),
                    "idf1": float(row["idf1"]),
                    "id_switches": int(row["num_switches"]),
                    "ms_per_update_100obj": ms,
                }
            )
        ov = df.loc["OVERALL"]
        overall[name] = {
            "mota": float(ov["mota"]),
            "idf1": float(ov["idf1"]),
            "id_switches": int(ov["num_switches"]),
        }
    peers = [n for n in overall if n != "lookout"]
    best_idf1 = max(overall[n]["idf1"] for n in peers)
    fastest = min(speed[n] for n in peers)
    summary = {
        "idf1": overall["lookout"]["idf1"],
        "mota": overall["lookout"]["mota"],
        "id_switches": overall["lookout"]["id_switches"],
        "best_peer_idf1": best_idf1,
        "idf1_ratio_vs_best_peer": overall["lookout"]["idf1"] / best_idf1 if best_idf1 else None,
        "ms_per_update_100obj": speed["lookout"],
        "fastest_peer_ms_per_update_100obj": fastest,
        "speedup_vs_fastest_peer_100obj": fastest / speed["lookout"],
        "peers": peers,
    }
    return {"suite": "track", "summary": summary, "overall": overall, "table": table}
