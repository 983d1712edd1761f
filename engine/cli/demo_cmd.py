"""`lookout demo`: the whole engine on rendered incidents with the bundled model, no network.

Renders (or reuses) the demo scenarios, runs the demo pipeline (`pipelines/demo.yaml`) on them,
publishes alerts over ZeroMQ, prints them as they happen with a progress line, and writes the
rendered footage, an annotated video and a track log per source, clips and an alerts log under
`--out` (default `out/demo/` in the current folder). The pipeline, the bundled model and the
scenarios come from `engine.resources`: the checkout's folders, or the copies an installed wheel
carries.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from engine.alerts.wire import alert_to_dict
from engine.cli.shutdown import stop_on_signals
from engine.cli.subscribe_cmd import format_alert_line
from engine.config import (
    Config,
    DroneSourceConfig,
    FileSourceConfig,
    JsonlOutputConfig,
    SourceConfig,
    ZmqOutputConfig,
    load_config,
)
from engine.errors import ConfigError, EngineError
from engine.record import AnnotatedVideo
from engine.record.track_log import TrackLog
from engine.resources import demo_pipeline, scenarios_dir
from engine.runtime import Runner
from engine.types import Alert, Event, Frame, Tracks

__all__ = ["register"]

SCENARIOS = {
    "drone7": "dumping_drone.yaml",
    "gatecam2": "crowd_station_gate.yaml",
    "pole3": "dumping_fixed.yaml",
}
"""Source id of the demo pipeline -> the scenario (in `scenarios_dir()`) rendered for it."""


def register(sub: Any) -> None:
    """Add the subcommand."""
    p = sub.add_parser("demo", help="run the engine on rendered incidents (no network needed)")
    p.add_argument("--publish", help="ZeroMQ endpoint for alerts (default tcp://127.0.0.1:5560)")
    p.add_argument("--rerender", action="store_true", help="render the footage again")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out/demo"),
        help="where footage, annotated videos, clips and the alerts log go (default out/demo)",
    )
    p.set_defaults(func=run)


def _render_all(todo: dict[Path, Path], force: bool) -> None:
    """Render each scenario (value) whose video (key) is missing or stale, in parallel: one
    process per core, as rendering is pure CPU and the scenarios are independent."""
    stale = {}
    for video, scenario in todo.items():
        stamp = video.parent / "scenario.sha256"
        digest = hashlib.sha256(scenario.read_bytes()).hexdigest()
        if not force and video.exists() and stamp.exists() and stamp.read_text() == digest:
            print(f"reusing rendered {_shown(video)}")
        else:
            stale[video] = (scenario, digest)
    if not stale:
        return
    workers = max(1, min(len(stale), os.cpu_count() or 1))
    print(f"rendering {len(stale)} scenarios in {workers} processes ...", flush=True)
    t0 = time.monotonic()
    context = multiprocessing.get_context("spawn")  # no threads or sockets inherited
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        jobs = {pool.submit(_render_one, s, v.parent): v for v, (s, _) in stale.items()}
        for job in as_completed(jobs):
            video = jobs[job]
            name, seconds = job.result()
            (video.parent / "scenario.sha256").write_text(stale[video][1])
            print(f"rendered {name} in {seconds:.0f} s -> {_shown(video)}", flush=True)
    print(f"rendering took {time.monotonic() - t0:.0f} s", flush=True)


def _render_one(scenario: Path, out: Path) -> tuple[str, float]:
    """Render one scenario into `out` (in a worker process); (its name, seconds)."""
    from engine.sim import load_scenario, render_scenario

    sc = load_scenario(scenario)
    t0 = time.monotonic()
    render_scenario(sc, out)
    return sc.name, time.monotonic() - t0


def run(args: argparse.Namespace) -> int:
    """Render, run, print; exits non-zero if a source failed."""
    out_dir = args.out.resolve()
    cfg = _rebased(load_config(demo_pipeline()), out_dir)
    if not cfg.detector.model.is_file():
        raise ConfigError(f"bundled model missing: {cfg.detector.model} (see models/README.md)")
    todo = {}
    for src in cfg.sources:
        todo[_footage(src)] = scenarios_dir() / SCENARIOS[src.id]
    _render_all(todo, args.rerender)
    if args.publish:
        outputs = [
            o.model_copy(update={"endpoint": args.publish}) if isinstance(o, ZmqOutputConfig) else o
            for o in cfg.outputs
        ]
        cfg = cfg.model_copy(update={"outputs": outputs})
    log_path = out_dir / "alerts.jsonl"
    log_path.unlink(missing_ok=True)  # one demo, one log
    runner = Runner(cfg)
    zones = {s.id: [list(z.polygon) for z in cfg.zones if z.source == s.id] for s in cfg.sources}
    videos = {
        s.id: AnnotatedVideo(out_dir / f"{s.id}_annotated.mp4", s.fps, zones[s.id])
        for s in runner.sources
    }
    logs = {s.id: TrackLog(out_dir / f"{s.id}_tracks.jsonl") for s in runner.sources}
    totals = {s.id: _frame_count(_footage(s)) for s in cfg.sources}
    done: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    stop_on_signals(stop)

    def on_frame(frame: Frame, tracks: Tracks, events: list[Event]) -> None:
        videos[frame.source_id].add(frame, tracks, events)
        logs[frame.source_id].add(frame, tracks)
        with lock:
            done[frame.source_id] = frame.seq + 1
            if frame.seq % 25 == 0:
                line = "  ".join(f"{k} {done.get(k, 0)}/{totals[k]}" for k in totals)
                sys.stderr.write(f"\r[{line}]")
                sys.stderr.flush()

    def on_alert(alert: Alert) -> None:
        with lock:
            sys.stderr.write("\r" + " " * 60 + "\r")
            print(format_alert_line(alert_to_dict(alert)), flush=True)

    endpoints = [o.endpoint for o in cfg.outputs if isinstance(o, ZmqOutputConfig)]
    if endpoints:
        print(f"publishing alerts on {endpoints[0]} (watch: lookout subscribe {endpoints[0]})")
    try:
        report = runner.run(stop, on_alert=on_alert, on_frame=on_frame)
    finally:
        for v in videos.values():
            v.close()
        for log in logs.values():
            log.close()
    sys.stderr.write("\n")
    frames = sum(report.frames.values())
    print(f"done: {frames} frames in {report.elapsed_s:.1f} s, {report.alerts} alerts")
    print(f"alerts log: {_shown(log_path)}")
    for v in videos.values():
        print(f"annotated video: {_shown(v.path)}")
    for log in logs.values():
        print(f"tracks: {_shown(log.path)}")
    if report.errors:
        raise EngineError("\n".join(report.errors.values()))
    return 0


def _rebased(cfg: Config, out_dir: Path) -> Config:
    """The pipeline with what it reads and writes under `out/demo/` (beside `pipelines/`) moved
    to `out_dir`: rendered footage, clips and the alerts log; the model stays where it is."""
    written = demo_pipeline().parent.parent / "out" / "demo"

    def move(path: Path) -> Path:
        path = Path(os.path.normpath(path))
        return out_dir / path.relative_to(written) if path.is_relative_to(written) else path

    sources = [
        s.model_copy(update={"path": move(s.path)})
        if isinstance(s, FileSourceConfig)
        else s.model_copy(update={"url": str(move(_footage(s)))})
        for s in cfg.sources
    ]
    outputs = [
        o.model_copy(update={"path": move(o.path)}) if isinstance(o, JsonlOutputConfig) else o
        for o in cfg.outputs
    ]
    update: dict[str, object] = {"sources": sources, "outputs": outputs}
    if cfg.clips is not None and cfg.clips.dir is not None:
        update["clips"] = cfg.clips.model_copy(update={"dir": move(cfg.clips.dir)})
    return cfg.model_copy(update=update)


def _footage(src: SourceConfig) -> Path:
    """The rendered file a demo source reads (a file source's path, a drone feed's url)."""
    if isinstance(src, FileSourceConfig):
        return src.path
    if isinstance(src, DroneSourceConfig) and src.is_file:
        return Path(src.url)
    raise ConfigError(f"demo source {src.id}: the demo pipeline reads rendered files only")


def _shown(path: Path) -> str:
    """`path` relative to the current folder when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _frame_count(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        if v.frames:
            return int(v.frames)
        # MPEG-TS carries no frame count: estimate from duration and rate
        rate = float(v.average_rate or v.guessed_rate or 0)
        return round((c.duration or 0) / 1_000_000 * rate)
