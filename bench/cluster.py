"""Beyond one box, measured: the same 4 recorded streams on one box and on a local Ray cluster
with one and with two worker nodes, and alerts across a worker node's death.

Every run processes the same frames (4 streams of the shared person clip, `--frames` each, at
`rate: max`: as fast as the nodes go) through yolo11n@320 with a zone rule per stream. Figures:
frames/s over the whole run (starting the actors and loading their models included, as the
single box's includes loading its model; the Ray nodes themselves are up before), and the
control overhead per frame (the time a source spends handing its records to the hub
and waiting for acks, per frame), against the single box in the same run. The kill run (2
workers, native rate) cuts one worker's power mid-stream, adds a replacement for it, and
counts `alerts_lost`: gaps in the journaled alert sequence plus streams that did not reach
their end.

On a 2-core machine every "node" shares the same two cores: two worker nodes cannot be faster
than one here; the figures show what the cluster costs, not what more boxes bring.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.streams import watch_whole_frame
from engine.config import Config
from engine.errors import EngineError
from engine.runtime import Runner
from tests.support.assets import assets_dir, missing_reason
from tests.support.ray_local import LocalCluster  # sets Ray's environment: before Ray is imported
from tests.support.rtsp_process import free_port

__all__ = ["add_arguments", "run"]

CLIP = "footage/intel_one-by-one-person-detection.mp4"
MODEL = "models/yolo11n_coco_320.onnx"
STREAMS = 4


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench cluster`."""
    p.add_argument("--frames", type=int, default=300, help="frames per stream")
    p.add_argument("--no-kill", action="store_true", help="skip the worker-kill run")


def _config(out: Path, frames: int, rate: str, reach: bool) -> Config:
    root = assets_dir()
    sources: list[dict[str, Any]] = []
    for i in range(STREAMS):
        src: dict[str, Any] = {
            "id": f"cam{i + 1}",
            "type": "file",
            "path": str(root / CLIP),
            "rate": rate,
            "max_frames": frames,
        }
        if reach:
            src["cluster"] = {"reach": "site"}
        sources.append(src)
    return Config.model_validate(
        {
            "site": "bench",
            "sources": sources,
            **watch_whole_frame([s["id"] for s in sources], ["person"], clear_after_s=0.5),
            "detector": {"model": str(root / MODEL), "threads": 1},
            "outputs": [
                {
                    "type": "zmq",
                    "endpoint": f"tcp://127.0.0.1:{free_port()}",
                    "journal": str(out / "journal.db"),
                    "snapshots": False,
                },
                {"type": "jsonl", "path": str(out / "alerts.jsonl")},
            ],
        }
    )


def _single_box(cfg: Config) -> dict[str, Any]:
    t0 = time.monotonic()
    runner = Runner(cfg)
    report = runner.run(threading.Event())
    elapsed = time.monotonic() - t0
    frames = sum(report.frames.values())
    return {
        "run": "one box (no Ray)",
        "workers": 0,
        "frames": frames,
        "seconds": round(elapsed, 2),
        "fps": round(frames / elapsed, 1),
        "control_ms_per_frame": 0.0,
        "alerts": report.alerts,
    }


def _on_cluster(cfg: Config, workers: int, kill_after_s: float | None = None) -> dict[str, Any]:
    import ray

    from engine.cluster import run_cluster

    labels = {"reach-site": "1"}
    cluster = LocalCluster([labels] * workers)
    stop = threading.Event()
    out: dict[str, Any] = {}
    try:
        thread = threading.Thread(
            target=lambda: out.update(r=run_cluster(cfg, cluster.address, stop))
        )
        t0 = time.monotonic()
        thread.start()
        if kill_after_s is not None:
            time.sleep(kill_after_s)
            # the node that runs cam1 (the driver in this process knows where its actors are)
            actor = ray.get_actor("lookout-source-cam1", namespace="lookout")
            status: dict[str, Any] = ray.get(actor.status.remote(), timeout=30)  # type: ignore[assignment]
            node = status["node"]
            cluster.kill(next(w for w in cluster.workers if w.node_id == node))
            cluster.add(labels)  # the replacement box
        thread.join(900)
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        cluster.shutdown()
    report = out["r"]
    # records the hub accepted, less each stream's end record
    frames = sum(s["frames"] - 1 for s in report.sources.values())
    sent = sum(w["records_sent"] for w in report.workers.values())
    deliver = sum(w["deliver_s"] for w in report.workers.values())
    return {
        "run": f"cluster, {workers} worker node{'s' if workers > 1 else ''}"
        + (", one killed" if kill_after_s is not None else ""),
        "workers": workers,
        "frames": frames,
        "seconds": round(elapsed, 2),
        "fps": round(frames / elapsed, 1),
        "control_ms_per_frame": round(deliver / max(1, sent) * 1000, 3),
        "alerts": report.alerts,
        "nodes_lost": len(report.nodes_lost),
        "moves": sum(s["moves"] for s in report.sources.values()),
        "sources": report.sources,
    }


def _alerts_lost(out: Path, row: dict[str, Any], frames: int) -> int:
    """Gaps in the journaled alert sequence, incidents that started and never ended, and
    streams that did not reach their end record."""
    if not row["moves"]:
        raise EngineError("bench cluster: the killed node ran no source; nothing was measured")
    lines = [json.loads(x) for x in (out / "alerts.jsonl").read_text().splitlines()]
    seqs = [x["seq"] for x in lines]
    gaps = (seqs[-1] - len(set(seqs))) if seqs else 0
    phases = [(x["data"].get("event_id"), x["data"].get("phase")) for x in lines]
    starts = {e for e, p in phases if p == "start"}
    ends = {e for e, p in phases if p == "end"}
    unfinished = sum(1 for s in row["sources"].values() if s["next_seq"] < frames + 1)
    return gaps + len(starts - ends) + unfinished


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The single box, the cluster with one and two workers, and the kill run."""
    why = missing_reason(CLIP, MODEL)
    if why:
        raise EngineError(f"bench cluster: {why}")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lookout-bench-cluster-") as tmp:
        for name, fn in (
            ("box", lambda c: _single_box(c)),
            ("one", lambda c: _on_cluster(c, 1)),
            ("two", lambda c: _on_cluster(c, 2)),
        ):
            out = Path(tmp) / name
            out.mkdir()
            rows.append(fn(_config(out, args.frames, "max", reach=name != "box")))
            print(f"  {rows[-1]['run']}: {rows[-1]['fps']} frames/s")
        lost = None
        if not args.no_kill:
            out = Path(tmp) / "kill"
            out.mkdir()
            row = _on_cluster(_config(out, args.frames, "native", reach=True), 2, kill_after_s=12)
            lost = _alerts_lost(out, row, args.frames)
            rows.append(row)
            print(f"  {row['run']}: alerts lost {lost}")
    box, one, two = rows[0], rows[1], rows[2]
    summary = {
        "fps_one_box": box["fps"],
        "fps_1_worker": one["fps"],
        "fps_2_workers": two["fps"],
        "ratio_1_worker_vs_box": round(one["fps"] / box["fps"], 3),
        "ratio_2_vs_1_workers": round(two["fps"] / one["fps"], 3),
        "control_ms_per_frame": two["control_ms_per_frame"],
        "alerts_lost": lost,
    }
    table = [{k: v for k, v in r.items() if k != "sources"} for r in rows]
    return {
        "suite": "cluster",
        "frames_per_stream": args.frames,
        "streams": STREAMS,
        "table": table,
        "runs": rows,
        "summary": summary,
    }
