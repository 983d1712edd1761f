"""`lookout run`: run the engine from a config file, or from a few flags for quick use.

    lookout run configs/example.yaml
    lookout run --source clip.mp4 --model yolo11n.onnx --classes person \\
                --zone 100,100,600,100,600,400,100,400 --publish tcp://127.0.0.1:5556

Ctrl-C or SIGTERM stops cleanly: open incidents are ended, queued alerts sent, sockets closed.
Zones and rules are reloaded when the config file changes, or on SIGHUP (`--no-reload`: never);
a config that does not load is refused and the running one stays.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.alerts.wire import alert_to_dict
from engine.cli.shutdown import reload_on_sighup, stop_on_signals
from engine.cli.subscribe_cmd import format_alert_line
from engine.config import (
    PATTERN_MEANING,
    Config,
    DroneSourceConfig,
    FileSourceConfig,
    load_config,
)
from engine.errors import ConfigError, EngineError
from engine.redact import strip_userinfo
from engine.runtime import Runner
from engine.runtime.reload import ConfigWatcher
from engine.types import Alert
from engine.yamlconf import format_validation_error

__all__ = ["config_from_flags", "register"]

log = logging.getLogger(__name__)

WHOLE_FRAME = [(0.0, 0.0), (1e6, 0.0), (1e6, 1e6), (0.0, 1e6)]

# Quick-form flags and the config field each one fills, for error messages.
FLAG_OF_FIELD = {
    "sources[0].path": "--source",
    "sources[0].url": "--source",
    "sources[0].max_frames": "--max-frames",
    "detector.model": "--model",
    "detector.conf": "--conf",
    "detector.imgsz": "--imgsz",
    "detector.family": "--family",
    "detector.class_names": "--class-names",
    "zones[0].polygon": "--zone",
    "outputs[0].endpoint": "--publish",
}


def register(sub: Any) -> None:
    """Add the subcommand."""
    p = sub.add_parser(
        "run",
        help="run the engine on a config, or on one source and model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", type=Path, help="YAML config file")
    q = p.add_argument_group("quick use without a config file")
    q.add_argument(
        "--source",
        help="video file, rtsp:// camera, or drone feed (udp:// or .ts file with KLV: --drone)",
    )
    q.add_argument("--drone", action="store_true", help="the source is a drone feed (telemetry)")
    q.add_argument("--model", type=Path, help="ONNX detector")
    q.add_argument("--classes", help="comma-separated class names that raise alerts")
    q.add_argument("--zone", help="polygon x1,y1,x2,y2,... in pixels (default: whole frame)")
    q.add_argument("--publish", help="ZeroMQ endpoint to publish alerts on")
    q.add_argument("--jsonl", type=Path, help="also append alerts to this file")
    q.add_argument("--conf", type=float, help="minimum detection score (default 0.25)")
    q.add_argument("--imgsz", type=int, help="input size for models with dynamic axes")
    q.add_argument(
        "--family",
        choices=["auto", "ultralytics", "yolox"],
        help="model output layout (default auto: from metadata / output shape)",
    )
    q.add_argument("--class-names", help="comma-separated class names, for models without metadata")
    q.add_argument("--loop", action="store_true", help="replay the file forever")
    q.add_argument("--site", default="site", help="site name in topics (default 'site')")
    p.add_argument("--fast", action="store_true", help="replay files as fast as possible")
    p.add_argument("--max-frames", type=int, help="stop each source after this many frames")
    p.add_argument(
        "--wait-subscribers",
        type=int,
        default=0,
        help="wait up to 10 s for this many subscriptions before the first alert",
    )
    p.add_argument("--quiet", action="store_true", help="do not print alerts on stdout")
    p.add_argument(
        "--no-reload", action="store_true", help="do not reload zones and rules on file changes"
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the sources across the nodes of this Ray cluster (host:port of its head)",
    )
    p.set_defaults(func=run)


def _parse_zone(text: str) -> list[tuple[float, float]]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--zone: expected numbers x1,y1,x2,y2,..., got {text!r}") from None
    if len(values) < 6 or len(values) % 2:
        raise ConfigError(
            f"--zone: expected at least 3 points as an even count of numbers, got {len(values)}"
        )
    return list(zip(values[0::2], values[1::2], strict=True))


def _source_from_flags(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The source config --source names, and its id (from the file name, or a stream's path or
    host and port: never its userinfo or query, which may hold credentials)."""
    text = str(args.source)
    live = "://" in text
    stem = _stream_name(text) if live else Path(text).stem
    # the id is part of topics: made topic-safe
    src_id = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem).strip("_")
    if len(src_id) > 64:  # long paths: a readable head and a hash of the whole
        src_id = src_id[:55] + "_" + hashlib.sha1(src_id.encode()).hexdigest()[:8]
    src_id = src_id or "source"
    if args.drone or text.startswith("udp://"):
        return {"type": "drone", "id": src_id, "url": text}, src_id
    if live:
        return {"type": "rtsp", "id": src_id, "url": text}, src_id
    return {"type": "file", "id": src_id, "path": Path(text), "loop": args.loop}, src_id


def _stream_name(url: str) -> str:
    """The last path segment of a stream URL (`.../gate` -> `gate`), or its `host:port` when it
    has no path; never from its userinfo, query or fragment."""
    rest = strip_userinfo(url).split("://", 1)[1]
    authority, _, path = rest.split("?", 1)[0].split("#", 1)[0].partition("/")
    return path.rstrip("/").rsplit("/", 1)[-1] or authority


def config_from_flags(args: argparse.Namespace) -> Config:
    """Build and validate a config from the quick-form flags.

    Raises:
        ConfigError: a flag is missing or invalid; the message names the flag.
    """
    missing = [f for f, v in (("--source", args.source), ("--model", args.model)) if v is None]
    if missing:
        raise ConfigError(f"give a CONFIG file, or at least {' and '.join(missing)}")
    classes = [c.strip() for c in (args.classes or "").split(",") if c.strip()]
    outputs: list[dict[str, Any]] = []
    if args.publish:
        outputs.append({"type": "zmq", "endpoint": args.publish})
    if args.jsonl:
        outputs.append({"type": "jsonl", "path": args.jsonl})
    detector: dict[str, Any] = {"model": args.model}
    if args.conf is not None:
        detector["conf"] = args.conf
    if args.imgsz is not None:
        detector["imgsz"] = args.imgsz
    if args.family is not None:
        detector["family"] = args.family
    if args.class_names:
        detector["class_names"] = [c.strip() for c in args.class_names.split(",")]
    source, src_id = _source_from_flags(args)
    data = {
        "site": args.site,
        "sources": [source],
        "detector": detector,
        "zones": [
            {
                "id": "zone",
                "source": src_id,
                "polygon": _parse_zone(args.zone) if args.zone else WHOLE_FRAME,
            }
        ],
        "rules": [{"type": "zone_presence", "id": "presence", "zone": "zone", "classes": classes}],
        "outputs": outputs,
    }
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        text = format_validation_error(exc, "command line", data=data, patterns=PATTERN_MEANING)
        for field, flag in FLAG_OF_FIELD.items():
            text = text.replace(f"command line: {field}", f"{flag}")
        raise ConfigError(text) from None


def _apply_overrides(cfg: Config, args: argparse.Namespace) -> Config:
    """--fast, --max-frames and --wait-subscribers apply to a config file too."""
    sources = [
        s.model_copy(
            update={
                "rate": "max" if args.fast else s.rate,
                "max_frames": args.max_frames or s.max_frames,
            }
        )
        if isinstance(s, FileSourceConfig)
        else s.model_copy(update={"rate": "max" if args.fast else s.rate})
        if isinstance(s, DroneSourceConfig)
        else s
        for s in cfg.sources
    ]
    outputs = [
        o.model_copy(update={"wait_subscribers": args.wait_subscribers})
        if o.type == "zmq" and args.wait_subscribers
        else o
        for o in cfg.outputs
    ]
    return cfg.model_copy(update={"sources": sources, "outputs": outputs})


def _run_cluster(cfg: Config, address: str) -> int:
    """The config across a Ray cluster; alerts go to its outputs (from the hub)."""
    from engine.cluster import run_cluster

    stop = threading.Event()
    stop_on_signals(stop)
    report = run_cluster(cfg, address, stop)
    for sid, st in sorted(report.sources.items()):
        node = (st["node"] or "-")[:12]
        log.info(
            "source %s: up to frame %d, %d records, on node %s (moves %d, duplicates dropped "
            "%d, batches of outdated workers refused %d)",
            sid,
            st["next_seq"] - 1,
            st["frames"],
            node,
            st["moves"],
            st["duplicates"],
            st["fenced"],
        )
    lost = len(report.nodes_lost)
    log.info(
        "done: cluster run of %d sources in %.1f s, %d alerts, %d node(s) lost",
        len(report.sources),
        report.elapsed_s,
        report.alerts,
        lost,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run until the sources end or a signal arrives; exit 1 if a source failed."""
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames: expected a positive number, got {args.max_frames}")
    cfg = load_config(args.config) if args.config else config_from_flags(args)
    cfg = _apply_overrides(cfg, args)
    if args.cluster:
        return _run_cluster(cfg, args.cluster)
    watch = None
    if args.config and not args.no_reload:
        watch = ConfigWatcher(args.config, lambda p: _apply_overrides(load_config(p), args))
    runner = Runner(cfg, watch=watch)
    stop = threading.Event()

    stop_on_signals(stop)
    reload_on_sighup(runner.request_reload)

    def on_alert(alert: Alert) -> None:
        if not args.quiet:
            sys.stdout.write(format_alert_line(alert_to_dict(alert)) + "\n")
            sys.stdout.flush()

    report = runner.run(stop, on_alert=on_alert)
    frames = sum(report.frames.values())
    fps = frames / report.elapsed_s if report.elapsed_s > 0 else 0.0
    log.info(
        "done: %d frames from %d sources in %.1f s (%.1f fps), %d alerts",
        frames,
        len(cfg.sources),
        report.elapsed_s,
        fps,
        report.alerts,
    )
    if report.errors:
        raise EngineError("\n".join(report.errors.values()))
    return 0
