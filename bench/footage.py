"""The benchmark users run on their own recorded footage, with our numbers against the peers.

    lookout bench run FOOTAGE... --model M [--streams N] [--events TRUTH --rules CONFIG]
                                 [--peers] [--out DIR] [--json FILE]

Passes, each the whole engine (`Runner`) on every file as fast as it goes (bench/pipeline_run.py):
`detect` (detector only: tracking and rules off, motion gating off; the headline throughput),
`track` (ByteTrack on; with `--rules`, the zones and rules too), `motion` (as `detect`, with
motion gating on: the inferences it saves), and with `--streams N`, `detect` on 2, 4, ... N
copies of each file (scaling). `--events` scores the `track` pass's alerts against ground truth
(a `truth.json` of `lookout sim render`, or YAML/JSON `events: [{source, kind, start_s,
end_s}]`) the way `lookout bench events` does: precision, recall, F1 and notification delay.

With `--peers`, in the same run: Ultralytics' own pipeline on the same ONNX file and footage
(`predict(stream=True)` and `track()`, its defaults; `make ultralytics-env` installs it), and
onnxruntime alone on pre-decoded, pre-letterboxed frames at batch 1 to 8 (its best figure: the
limit for any pipeline here). Both Lookout and Ultralytics use score >= 0.25 and NMS IoU 0.7
(Ultralytics' default), so their detections can be compared box by box.

Writes JSON (`--json`, and `result.json` in `--out`), a Markdown report and PNG plots (`--out`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import yaml

from bench.events import score
from bench.pipeline_run import PipelineRun, RunSpec, measure_pipeline, source_id
from bench.report import machine, write_json
from engine.errors import ConfigError, EngineError

__all__ = ["add_arguments", "run"]

LIMIT_FRAMES = 64  # frames of the first file that the onnxruntime limit runs on


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench run`."""
    p.add_argument("footage", nargs="+", type=Path, help="recorded video files")
    p.add_argument("--model", type=Path, required=True, help="ONNX detector")
    p.add_argument("--imgsz", type=int, help="input size of a model with dynamic H and W")
    p.add_argument("--streams", type=int, default=1, help="scale up to N copies of each file")
    p.add_argument("--batch", type=int, default=4, help="frames per inference call at most")
    p.add_argument(
        "--spin", action="store_true", help="onnxruntime threads spin between runs (detector.spin)"
    )
    p.add_argument("--events", type=Path, help="ground truth of the events in the footage")
    p.add_argument("--rules", type=Path, help="config file whose zones and rules to run")
    p.add_argument("--peers", action="store_true", help="also run Ultralytics and bare ORT")
    p.add_argument("--peer-python", type=Path, help="interpreter with ultralytics")
    p.add_argument("--limit-seconds", type=float, default=3.0, help="ORT limit: s per batch")
    p.add_argument("--out", type=Path, help="folder for result.json, report.md and plots")
    p.add_argument(
        "--passes",
        default="detect,track,motion",
        help="which of the engine's passes to run (detect, track, motion)",
    )


def frame_count(path: Path) -> int:
    """Frames in a video file (the container's count, or a demux count)."""
    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            return sum(1 for p in c.demux(stream) if p.size)
    except (av.error.FFmpegError, IndexError) as exc:
        raise EngineError(f"cannot read video {path}: {exc}") from None


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=None, leave=False)


def _pass(spec: RunSpec, total: int) -> PipelineRun:
    with _progress(total * spec.streams, spec.name) as bar:
        result = measure_pipeline(spec, bar.update)
    print(f"  {spec.name}: {result.fps:.1f} frames/s ({result.frames} frames)")
    return result


def _rules_of(path: Path | None, footage: list[Path]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Zones, rules and tracking settings of a config file, and its detector's score and NMS
    thresholds. A zone goes to the footage file named like its source's file in the config
    (a pipeline config can be used as it is); with one footage file and no such match, every
    zone goes to it. Rules whose zone found no footage are left out."""
    if path is None:
        return {}, {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    by_name = {p.name: source_id(p, 0) for p in footage}
    to_footage = {}
    for src in data.get("sources") or []:
        name = Path(str(src.get("path") or src.get("url") or "")).name
        if name in by_name:
            to_footage[src.get("id")] = by_name[name]
    zones = []
    for z in data.get("zones") or []:
        target = to_footage.get(z.get("source"))
        if target is None and not to_footage and len(footage) == 1:
            target = source_id(footage[0], 0)
        if target is not None:
            zones.append({**z, "source": target})
    kept = {z["id"] for z in zones}
    rules = [r for r in data.get("rules") or [] if r.get("zone") in kept]
    if not rules:
        raise ConfigError(f"{path}: no rule watches a zone of the footage given")
    extra: dict[str, Any] = {"zones": zones, "rules": rules}
    if data.get("tracking"):
        extra["tracking"] = {**data["tracking"], "enabled": True}
    det = {k: v for k, v in (data.get("detector") or {}).items() if k in ("conf", "iou")}
    return extra, det


def _truth_of(path: Path, footage: list[Path]) -> list[dict[str, Any]]:
    """Ground-truth events with their source: [{source, kind, start, end}]."""
    data = (
        json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    )
    events = (data or {}).get("events")
    if not isinstance(events, list):
        raise ConfigError(f"{path}: expected `events: [{{source, kind, start_s, end_s}}]`")
    out = []
    for i, e in enumerate(events):
        src = e.get("source") or (source_id(footage[0], 0) if len(footage) == 1 else None)
        if src is None or "kind" not in e or "start_s" not in e or "end_s" not in e:
            raise ConfigError(f"{path}: events[{i}]: needs source, kind, start_s and end_s")
        out.append(
            {
                "source": src,
                "kind": e["kind"],
                "start": float(e["start_s"]),
                "end": float(e["end_s"]),
            }
        )
    return out


def _events(truth: list[dict[str, Any]], alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kinds = tuple(sorted({t["kind"] for t in truth} | {a["kind"] for a in alerts}))
    sources = {t["source"] for t in truth} | {a["source"] for a in alerts}
    cases = [
        {
            "truth": [t for t in truth if t["source"] == s],
            "alerts": [a for a in alerts if a["source"] == s],
        }
        for s in sorted(sources)
    ]
    return [{"kind": k, **v} for k, v in score(cases, kinds).items()]


def _peers(
    args: argparse.Namespace, footage: list[Path], imgsz: int | None, detect: PipelineRun
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from bench.peers import agreement, detections_of, ort_limit, run_ultralytics

    runs: list[dict[str, Any]] = []
    figures: dict[str, Any] = {}
    size = _model_size(args.model, imgsz)
    for mode in ("predict", "track"):
        print(f"  ultralytics {mode} ...")
        res = run_ultralytics(args.model, size, footage, mode, python=args.peer_python)
        videos = res["videos"]
        # its steady state (the first frames of each file, session start-up, not counted)
        frames = sum(v["steady_frames"] for v in videos)
        seconds = sum(v["steady_s"] for v in videos)
        wall = sum(v["wall_s"] for v in videos)
        n_all = sum(v["frames"] for v in videos)
        runs.append(
            {
                "name": f"ultralytics {mode}",
                "peer": True,
                "fps": round(frames / seconds, 2),
                "fps_all_frames": round(n_all / wall, 2),
                "frames": n_all,
                "seconds": round(seconds, 2),
                "stages_ms": _speed(videos),
                "cpu_pct": round(sum(v["cpu_s"] for v in videos) / wall * 100, 1),
                "rss_mb": res.get("peak_rss_mb"),
                "rect": res.get("rect"),
            }
        )
        if mode == "predict":
            theirs = [d for v in res["videos"] for d in detections_of(v)]
            ours = [d for p in footage for d in detect.detections[source_id(p, 0)]]
            if len(theirs) != len(ours):
                raise EngineError(
                    f"frame counts differ: lookout {len(ours)}, ultralytics {len(theirs)}"
                )
            figures["agreement"] = agreement(ours, theirs, 0.9)
    frames = _first_frames(footage[0], LIMIT_FRAMES)
    print("  onnxruntime limit ...")
    figures["ort_limit"] = ort_limit(args.model, imgsz, frames, seconds=args.limit_seconds)
    return runs, figures


def _model_size(model: Path, imgsz: int | None) -> int:
    """The input size the engine runs the model at (what Ultralytics' imgsz must say)."""
    if imgsz:
        return imgsz
    from engine.config import DetectorConfig
    from engine.detect import OnnxDetector

    det = OnnxDetector(DetectorConfig(model=model, warmup_runs=0))
    return max(det.info.input_hw)


def _speed(videos: list[dict[str, Any]]) -> dict[str, float]:
    keys = ("preprocess", "inference", "postprocess")
    return {
        k: round(float(np.mean([v["speed_ms"][k] for v in videos])), 2)
        for k in keys
        if all(k in v.get("speed_ms", {}) for v in videos)
    }


def _first_frames(path: Path, n: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            out.append(frame.to_ndarray(format="bgr24"))
            if len(out) >= n:
                break
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every pass, the peers, the scores; the result (also written to --out)."""
    footage = [Path(p) for p in args.footage]
    for p in [*footage, args.model]:
        if not p.is_file():
            raise ConfigError(f"bench run: no such file: {p}")
    if args.events and not args.rules:
        raise ConfigError("bench run: --events needs --rules (the zones and rules to score)")
    passes = {p.strip() for p in str(args.passes).split(",") if p.strip()}
    if not passes or passes - {"detect", "track", "motion"}:
        raise ConfigError(f"bench run: --passes: expected detect, track, motion; got {args.passes}")
    if args.peers:
        passes.add("detect")  # what the peers are compared with
    if args.events:
        passes.add("track")
    total = sum(frame_count(p) for p in footage)
    base = {
        "footage": tuple(footage),
        "model": args.model,
        "imgsz": args.imgsz,
        "batch": args.batch,
        "spin": args.spin,
    }
    summary: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    scaling: list[dict[str, Any]] = []
    detect = track = None
    if "detect" in passes:
        detect = _pass(RunSpec("lookout detect", keep_detections=args.peers, **base), total)
        runs.append(detect.row())
        summary.update(lookout_fps=round(detect.fps, 2), latency_p99_ms=detect.latency_ms["p99"])
        scaling.append(_scale_row(detect, 1))
    if "track" in passes:
        rules, det = _rules_of(args.rules, footage)
        spec = RunSpec("lookout track", tracking=True, rules=rules, **{**base, **det})
        track = _pass(spec, total)
        runs.append(track.row())
        summary["lookout_track_fps"] = round(track.fps, 2)
    if "motion" in passes:
        motion = _pass(RunSpec("lookout detect, motion gating", motion=True, **base), total)
        runs.append(motion.row())
        saved = 1 - motion.inferences / max(1, motion.frames)
        summary.update(motion_inferences_saved=round(saved, 3), motion_fps=round(motion.fps, 2))
    n = 2
    while n <= args.streams:
        scaled = _pass(RunSpec(f"lookout detect x{n}", streams=n, **base), total)
        scaling.append(_scale_row(scaled, n))
        n *= 2
    result: dict[str, Any] = {
        "title": "lookout bench run",
        "footage": [str(p) for p in footage],
        "model": str(args.model),
        "frames": total,
    }
    if args.peers:
        assert detect is not None
        peer_runs, fig = _peers(args, footage, args.imgsz, detect)
        runs += peer_runs
        predict, trk = peer_runs[0]["fps"], peer_runs[1]["fps"]
        limit = fig["ort_limit"]
        if track is not None:
            summary["speedup_vs_ultralytics_track"] = round(track.fps / trk, 3)
        summary.update(
            {
                "ultralytics_fps": predict,
                "ultralytics_track_fps": trk,
                "speedup_vs_ultralytics": round(detect.fps / predict, 3),
                "detections_agree_iou90": round(fig["agreement"]["frac_b"], 4),
                "detections_agree_iou90_symmetric": round(fig["agreement"]["symmetric"], 4),
                "limit_fps": round(limit["limit_fps"], 2),
                "limit_batch": limit["best_batch"],
                "fraction_of_ort_limit": round(detect.fps / limit["limit_fps"], 3),
            }
        )
        result["agreement"] = fig["agreement"]
        result["ort_limit"] = limit
    if args.events:
        assert track is not None
        result["events"] = _events(_truth_of(args.events, footage), track.alerts)
        summary["events_min_f1"] = round(min(r["f1"] for r in result["events"]), 3)
    result.update(
        summary=summary,
        runs=runs,
        scaling=scaling,
        machine=machine(),
        table=[_table_row(r) for r in runs],
    )
    if args.out:
        _write(result, args.out)
    return result


def _scale_row(r: PipelineRun, n: int) -> dict[str, Any]:
    return {
        "streams": n,
        "fps_total": round(r.fps, 2),
        "fps_per_stream": round(r.fps / n, 2),
        "latency_p99_ms": r.latency_ms["p99"],
        "drops": r.drops,
    }


def _table_row(r: dict[str, Any]) -> dict[str, Any]:
    lat = r.get("latency_ms") or {}
    return {
        "run": r["name"],
        "fps": r["fps"],
        "frames": r["frames"],
        "p50_ms": lat.get("p50"),
        "p99_ms": lat.get("p99"),
        "inferences": r.get("inferences"),
        "cpu_pct": r.get("cpu_pct"),
        "rss_mb": r.get("rss_mb"),
    }


def _write(result: dict[str, Any], out: Path) -> None:
    from bench.plots import write_markdown

    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "result.json")
    try:
        from bench.plots import write_plots

        pngs = write_plots(result, out)
    except ImportError:
        print("  (no plots: matplotlib is missing; pip install 'lookout[bench]')")
        pngs = []
    write_markdown(result, out / "report.md", pngs)
    print(f"  wrote {out / 'report.md'}")
