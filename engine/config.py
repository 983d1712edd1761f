"""Configuration: YAML files validated by pydantic v2 models.

A config names the site, its sources, the detector, zones, rules and outputs. Every model forbids
unknown keys, is frozen, and bounds every field. A bad file is rejected with one line per problem:
file and line, the field path, what was expected and what was given. Nothing is "repaired", and
validation never touches hardware, files or the network (`lookout run` checks those when it starts).

Relative paths inside a file are resolved against the file's directory.

Example:
    >>> cfg = load_config("configs/example.yaml")  # doctest: +SKIP
    >>> cfg.sources[0].id
    'gate-cam'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.config_values import (
    C_INT_MAX,
    GroundPoint,
    LatLonPoint,
    Point,
    check_invertible,
    check_port,
)
from engine.redact import redact
from engine.rule_config import ID_PATTERN, Id, RuleConfig, ZonePresenceRuleConfig
from engine.yamlconf import (
    CrossFieldError,
    bounded_repr,
    parse_yaml_model,
    read_text,
    union_tags,
)

__all__ = [
    "CalibrationConfig",
    "CalibrationPoint",
    "ClipsConfig",
    "Config",
    "CurveConfig",
    "DetectorConfig",
    "DroneSourceConfig",
    "FileSourceConfig",
    "FusionConfig",
    "GeoConfig",
    "JsonlOutputConfig",
    "MetricsConfig",
    "MotionConfig",
    "PlacementConfig",
    "PreprocessOverride",
    "RouteConfig",
    "RtspSourceConfig",
    "SupervisorConfig",
    "TilingConfig",
    "TrackingConfig",
    "ZmqOutputConfig",
    "ZoneConfig",
    "ZonePresenceRuleConfig",
    "load_config",
    "parse_config",
]

ENDPOINT_PATTERN = r"^(tcp://[^\s]+:\d+|ipc://[^\s]+|inproc://[^\s]+)$"
RTSP_PATTERN = r"^rtsps?://[^\s]+$"
# What each pattern means, for error messages people can act on.
PATTERN_MEANING = {
    ID_PATTERN: "letters, digits, '-' and '_' only",
    ENDPOINT_PATTERN: "a ZeroMQ endpoint such as tcp://127.0.0.1:5556 or ipc:///run/x.sock",
    RTSP_PATTERN: "an rtsp:// or rtsps:// URL",
}


class _Model(BaseModel):
    # NaN and infinity pass no comparison: a zone or bound holding one silently never matches
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- sources -----------------------------------------------------------------------------------


class MotionConfig(_Model):
    """Motion gating: skip the detector while nothing moves (the last detections stand)."""

    pixel_delta: float = Field(
        15.0, gt=0, le=255, description="Grey-level change from the background that is motion."
    )
    min_fraction: float = Field(
        0.001, ge=0, le=1, description="Fraction of sampled pixels that must move."
    )
    step_px: int = Field(8, ge=1, le=64, description="Sample one pixel in this many, each way.")
    adapt: float = Field(0.05, gt=0, le=1, description="Background update rate per frame.")
    hold_s: float = Field(1.0, ge=0, le=60, description="Keep detecting this long after motion.")
    force_every_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Detect at least this often (parked vehicles, debris piles stay observed).",
    )
    zones_only: bool = Field(False, description="Only motion inside this source's zones counts.")


class TilingConfig(_Model):
    """Tiled inference for small objects in large frames: overlapping tiles, merged results."""

    cols: int = Field(2, ge=1, le=8)
    rows: int = Field(2, ge=1, le=8)
    overlap: float = Field(0.2, ge=0, lt=0.9, description="Overlap between neighbouring tiles.")
    full_frame: bool = Field(True, description="Also detect on the whole frame (large objects).")


class CalibrationPoint(_Model):
    """One image point and where it lies on the ground."""

    image: Point = Field(description="Pixel [u, v].")
    ground: GroundPoint | None = Field(None, description="Metres [east, north] of the site origin.")
    latlon: LatLonPoint | None = Field(
        None, description="Or [lat, lon] (needs `geo` in the config)."
    )

    @model_validator(mode="after")
    def _one_place(self) -> CalibrationPoint:
        if (self.ground is None) == (self.latlon is None):
            raise ValueError("give either ground [east, north] or latlon [lat, lon]")
        return self


class CalibrationConfig(_Model):
    """How a fixed camera's pixels map to the ground: a 3x3 homography (ground metres ->
    pixels, as `lookout calibrate` writes it), or >= 4 point pairs fitted at start."""

    homography: list[list[Annotated[float, Field(ge=-1e12, le=1e12)]]] | None = Field(
        None, description="3x3, ground -> image."
    )
    points: list[CalibrationPoint] | None = Field(None, min_length=4)
    pixel_sigma: float = Field(
        3.0, gt=0, le=100, description="How far off (px, one sigma) an object's foot point is."
    )

    @model_validator(mode="after")
    def _one_way(self) -> CalibrationConfig:
        if (self.homography is None) == (self.points is None):
            raise ValueError("give either homography (3x3) or points (at least 4)")
        h = self.homography
        if h is not None and (len(h) != 3 or any(len(r) != 3 for r in h)):
            raise ValueError(f"homography: expected 3 rows of 3 numbers, got {bounded_repr(h)}")
        if h is not None:
            check_invertible(h)
        return self


class FusionConfig(_Model):
    """Several sensors, one picture: incidents of the same kind at the same place merge."""

    merge_incidents: bool = Field(
        True, description="One alert per incident seen by several sensors (needs positions)."
    )
    gate_m: float = Field(
        2.5, gt=0, le=100, description="Global tracks: a sensor's track joins one this close."
    )
    lost_s: float = Field(3.0, gt=0, le=600, description="A global track unseen this long ends.")
    merge_m: float = Field(10.0, gt=0, le=1000, description="Same place: within this distance.")
    merge_s: float = Field(
        30.0, gt=0, le=3600, description="... and this long after the incident's last event."
    )


class GeoConfig(_Model):
    """The site's origin on the globe: ground metres are east/north of it."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt_m: float = Field(0.0, ge=-500, le=9000, description="Ground height (ellipsoidal).")


class PlacementConfig(_Model):
    """Where a source may run on a cluster (`lookout run --cluster`)."""

    reach: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
        description="Camera group: only nodes labelled reach-<group>=1 can reach this camera.",
    )
    gpu: float = Field(0.0, ge=0, le=16, description="GPUs the source's detector takes.")
    decode: float = Field(
        0.0, ge=0, le=64, description="Decode slots it takes of a node's `decode` resource."
    )


class _SourceOptions(_Model):
    """What every source can have: motion gating and tiling."""

    cluster: PlacementConfig | None = Field(
        None, description="Placement on a cluster (ignored on a single box)."
    )

    motion: MotionConfig | None = Field(None, description="Skip inference on still scenes.")
    tiling: TilingConfig | None = Field(None, description="Detect on tiles (small objects).")
    calibration: CalibrationConfig | None = Field(
        None, description="Fixed cameras: pixels to ground (alerts then carry lat/lon)."
    )
    clock_offset_s: float = Field(
        0.0,
        ge=-86400,
        le=86400,
        description="Added to this source's stream time to put it on the site's time base "
        "(fusion matches what sensors see at the same moment).",
    )
    moving: bool | None = Field(
        None,
        description="The camera moves (a drone): rules follow the scene by estimating the image "
        "shift between frames (default: true for drone sources).",
    )


class FileSourceConfig(_SourceOptions):
    """Recorded footage: MP4, MPEG-TS, MKV, GIF, ... anything FFmpeg demuxes."""

    type: Literal["file"] = "file"
    id: Id
    path: Path = Field(description="Video file; relative paths are relative to the config file.")
    rate: Literal["native", "max"] = Field(
        "native",
        description="'native' replays at the stream's own pace (like a camera); 'max' as fast as "
        "the engine can take frames.",
    )
    loop: bool = Field(False, description="Start again at the end; timestamps keep counting up.")
    max_frames: int | None = Field(
        None, ge=1, le=10**12, description="Stop after this many frames (all loops counted)."
    )
    buffer_frames: int = Field(
        4, ge=1, le=256, description="Frames decoded ahead and held for the engine."
    )
    when_behind: Literal["auto", "drop_oldest", "wait"] = Field(
        "auto",
        description="When the engine is slower than the file: drop the oldest held frame (like "
        "a live camera; latency stays bounded) or wait (nothing lost). auto: drop_oldest at "
        "native rate, wait at max rate.",
    )


class _LiveOptions(_SourceOptions):
    """How a live feed is read: timeouts, reconnects, and the latest-frame buffer."""

    transport: Literal["tcp", "udp"] = Field(
        "tcp", description="RTSP transport: tcp (default; survives lossy links) or udp."
    )
    open_timeout_s: float = Field(5.0, gt=0, le=120, description="Give up one connect after this.")
    read_timeout_s: float = Field(
        3.0, gt=0, le=120, description="No packets for this long: the source is stalled."
    )
    buffer_frames: int = Field(
        2, ge=1, le=64, description="Frames held for the engine; when full, the oldest is dropped."
    )
    backoff_initial_s: float = Field(0.5, gt=0, le=60, description="First reconnect delay.")
    backoff_max_s: float = Field(30.0, gt=0, le=3600, description="Longest reconnect delay.")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """repr() and str() show URLs without their credentials."""
        for key, value in super().__repr_args__():
            yield key, redact(value) if isinstance(value, str) else value


class RtspSourceConfig(_LiveOptions):
    """A live RTSP camera. Reconnects forever; credentials never appear in logs or messages."""

    type: Literal["rtsp"]
    id: Id
    url: str = Field(
        pattern=RTSP_PATTERN, description="rtsp:// or rtsps:// URL, user:password@ allowed."
    )

    _port = field_validator("url")(check_port)


class DroneSourceConfig(_LiveOptions):
    """A drone feed: MPEG-TS with MISB ST 0601 KLV telemetry, or video with a DJI SRT sidecar.

    `url` is a recorded file (.ts, .mp4, ...), `udp://host:port` or `rtsp://...`; live feeds
    reconnect forever, a file ends at its end.
    """

    type: Literal["drone"]
    id: Id
    url: str = Field(min_length=1, description="File path, udp://host:port or rtsp:// URL.")
    srt: Path | None = Field(None, description="DJI-style SRT sidecar of a recorded file.")
    rate: Literal["native", "max"] = Field(
        "native", description="For a recorded file: replay at its own pace, or as fast as read."
    )
    telemetry_max_gap_s: float = Field(
        1.0, gt=0, le=60, description="Frames further than this from any telemetry get none."
    )

    _port = field_validator("url")(check_port)

    @property
    def is_file(self) -> bool:
        """True when `url` names a recorded file rather than a live feed."""
        return "://" not in self.url


SourceConfig = Annotated[
    FileSourceConfig | RtspSourceConfig | DroneSourceConfig, Field(discriminator="type")
]


# --- detector ----------------------------------------------------------------------------------


class PreprocessOverride(_Model):
    """How the model wants its input, where its metadata does not say (None: family default)."""

    channel_order: Literal["rgb", "bgr"] | None = Field(None, description="Input channel order.")
    scale_to_unit: bool | None = Field(
        None, description="Divide pixel values by 255 (True) or feed 0..255 (False)."
    )
    pad: Literal["center", "top_left"] | None = Field(
        None, description="Where the letterboxed image sits inside the padded input."
    )


# Short names of onnxruntime's execution providers, as users write them in configs.
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


class DetectorConfig(_Model):
    """An ONNX object detector run with onnxruntime."""

    type: Literal["onnx"] = "onnx"
    model: Path = Field(description="ONNX model file.")
    family: Literal["auto", "ultralytics", "yolox"] = Field(
        "auto",
        description="Output layout. 'auto' reads Ultralytics metadata, or recognises a YOLOX raw "
        "grid from the output shape; anything else is refused.",
    )
    imgsz: int | None = Field(
        None,
        ge=32,
        le=4096,
        description="Input size for models with dynamic spatial axes (default: from metadata).",
    )
    conf: float = Field(0.25, ge=0.0, le=1.0, description="Minimum score to keep a detection.")
    iou: float = Field(
        0.45, gt=0.0, le=1.0, description="IoU threshold of non-maximum suppression."
    )
    max_det: int = Field(300, ge=1, le=10000, description="At most this many boxes per frame.")
    agnostic_nms: bool = Field(False, description="Suppress overlaps across classes too.")
    class_names: list[str] | None = Field(
        None, description="Class names when the model carries none (YOLOX); index = class id."
    )
    threads: int = Field(
        0, ge=0, le=256, description="onnxruntime intra-op threads (0: onnxruntime decides)."
    )
    spin: bool = Field(
        False,
        description="Let onnxruntime's threads spin between runs: slightly lower latency on an "
        "idle box, but they burn CPU that decoding and the other streams need (measured: one "
        "stream 52 % CPU spinning, 16 % not).",
    )
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        min_length=1,
        description="onnxruntime execution providers in order of preference: tensorrt, cuda, "
        "openvino, cpu (or onnxruntime's own names). Those not available on this machine are "
        "skipped, and the CPU is the last resort; the log says which one runs.",
    )
    fp16: bool = Field(
        True, description="TensorRT builds fp16 engines (CUDA/CPU run the model's own precision)."
    )
    engine_cache_dir: Path | None = Field(
        None,
        description="TensorRT engine and timing cache (default: $LOOKOUT_STATE_DIR/trt-cache); "
        "engines are built once per model, precision and shape profile, then reused.",
    )
    device_id: int = Field(0, ge=0, le=64, description="GPU index for CUDA and TensorRT.")
    openvino_device: str = Field(
        "CPU", pattern=r"^[A-Z]+(\.[0-9]+)?$", description="OpenVINO device: CPU, GPU, NPU, GPU.1."
    )
    io_binding: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Keep input and output tensors on the device with onnxruntime IO binding "
        "(auto: on for CUDA and TensorRT).",
    )
    warmup_runs: int = Field(
        1, ge=0, le=100, description="Dummy inferences at start, so the first frame is not slow."
    )

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, v: list[str]) -> list[str]:
        out = []
        for name in v:
            full = PROVIDER_ALIASES.get(name.lower(), name)
            if not full.endswith("ExecutionProvider"):
                known = ", ".join(PROVIDER_ALIASES)
                raise ValueError(
                    f"unknown execution provider {name!r}: use one of {known}, or "
                    "onnxruntime's own name (…ExecutionProvider)"
                )
            if full not in out:
                out.append(full)
        return out

    batch_max: int = Field(
        1,
        ge=1,
        le=64,
        description="Frames per inference call (dynamic-batch models): of different sources, "
        "and of one source when several of its frames are already waiting.",
    )
    batch_wait_ms: float = Field(
        5.0, ge=0, le=1000, description="How long a frame waits for others to batch with."
    )
    input: PreprocessOverride = Field(
        default_factory=PreprocessOverride, description="Input layout overrides."
    )


# --- zones and rules -----------------------------------------------------------------------------


class TrackingConfig(_Model):
    """Multi-object tracking (ByteTrack) per source; its thresholds and timings."""

    enabled: bool = Field(True, description="Track objects (rules then see identities).")
    high_score: float = Field(0.25, gt=0, le=1, description="First-stage detections.")
    new_track_score: float = Field(
        0.6, gt=0, le=1, description="A detection this sure may start a track."
    )
    lost_s: float = Field(1.0, gt=0, le=60, description="A moving track unseen this long ends.")
    stationary_s: float = Field(2.0, gt=0, le=600, description="Still this long: stationary.")
    stationary_lost_s: float = Field(
        30.0, gt=0, le=3600, description="A stationary track survives gaps this long."
    )
    class_groups: list[list[str]] = Field(
        default_factory=lambda: [["car", "truck", "bus", "van"]],
        description="Classes the detector confuses: a track keeps its identity across them.",
    )


class ZoneConfig(_Model):
    """A polygon in one source's image, in pixels."""

    id: Id
    source: Id = Field(description="The source whose image the polygon is drawn on.")
    polygon: list[Point] = Field(min_length=3, description="Vertices [x, y] in pixels, in order.")

    @field_validator("polygon")
    @classmethod
    def _has_area(cls, polygon: list[Point]) -> list[Point]:
        area2 = sum(
            x0 * y1 - x1 * y0
            for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True)
        )
        if abs(area2) < 1e-6:
            raise ValueError(
                f"a polygon with non-zero area, got points all on one line: {bounded_repr(polygon)}"
            )
        return polygon


# --- outputs -----------------------------------------------------------------------------------


class CurveConfig(_Model):
    """CURVE encryption and authentication of the alert stream (keys from `lookout keys new`)."""

    server_secret_key: Path = Field(
        description="This engine's key pair (the NAME.key_secret file `lookout keys new` wrote)."
    )
    allowed_clients: Path = Field(
        description="Folder of the consoles' public keys (NAME.key files); no other may connect."
    )


class ZmqOutputConfig(_Model):
    """A ZeroMQ publisher: multipart [topic, JSON, optional JPEG snapshot], journaled first."""

    type: Literal["zmq"] = "zmq"
    endpoint: str = Field(
        pattern=ENDPOINT_PATTERN,
        description="Where to bind, e.g. tcp://127.0.0.1:5556.",
    )
    replay_endpoint: str | None = Field(
        None,
        pattern=ENDPOINT_PATTERN,
        description="ROUTER endpoint answering 'alerts after sequence S' from the journal.",
    )
    journal: Path | None = Field(
        None,
        description="SQLite journal every alert is written to before it is published "
        "(default: $LOOKOUT_STATE_DIR or ~/.local/state/lookout, one file per endpoint).",
    )
    journal_on_failure: Literal["publish", "stop"] = Field(
        "publish",
        description="When the journal cannot be written (disk full, damaged file): 'publish' "
        "sends the alerts anyway, marked durable: false, with a critical journal.failing health "
        "event, holds them for replay (journal_backlog_*) and journals them once a retry "
        "(journal_retry_s) succeeds, and at start moves a damaged file aside for a fresh one "
        "(journal.replaced); 'stop' ends the run with an error (exit 1) and refuses to start on "
        "a damaged file.",
    )
    journal_retry_s: float = Field(
        1.0,
        ge=0,
        le=600,
        description="While the journal fails, how often it is tried again (0: with every "
        "batch; each try rewrites the whole backlog).",
    )
    journal_backlog_alerts: int = Field(
        100_000,
        ge=100,
        le=10_000_000,
        description="While the journal fails, at most this many alerts are held in memory "
        "(served by replay, journaled once it recovers); older ones are dropped, and reported.",
    )
    journal_backlog_mb: int = Field(
        256,
        ge=1,
        le=65536,
        description="... and at most this many MiB of them (bodies and snapshots).",
    )
    retention_days: float = Field(7.0, gt=0, le=3650, description="Journal keeps alerts this long.")
    retention_max_alerts: int = Field(
        1_000_000, ge=1000, le=10**10, description="... and at most this many (the newest)."
    )
    heartbeat_s: float = Field(
        1.0, ge=0, le=3600, description="Heartbeat with stats on health.<site>.@engine. (0: off)."
    )
    curve: CurveConfig | None = Field(
        None, description="Encrypt and authenticate; required off loopback unless allow_plaintext."
    )
    allow_plaintext: bool = Field(
        False, description="Publish unencrypted on a non-loopback endpoint (explicit opt-in)."
    )
    snapshots: bool = Field(True, description="Attach a JPEG of the frame to each rule alert.")
    sndhwm: int = Field(
        100_000,
        ge=1,
        le=C_INT_MAX,
        description="Messages queued per subscriber before any is dropped (a C int in libzmq).",
    )
    wait_subscribers: int = Field(
        0, ge=0, le=1000, description="Wait for this many subscribers before publishing."
    )
    wait_timeout_s: float = Field(
        10.0, ge=0.0, le=3600.0, description="Give up waiting for subscribers after this long."
    )

    _ports = field_validator("endpoint", "replay_endpoint")(
        lambda v: v if v is None else check_port(v)
    )

    @model_validator(mode="after")
    def _encrypted_off_loopback(self) -> ZmqOutputConfig:
        if self.curve is None and not self.allow_plaintext:
            for name in ("endpoint", "replay_endpoint"):
                value = getattr(self, name)
                if value is not None and not is_loopback(value):
                    raise ValueError(
                        f"{name} {value} is not loopback: expected curve keys (lookout keys "
                        "new), or allow_plaintext: true to publish unencrypted"
                    )
        return self


def is_loopback(endpoint: str) -> bool:
    """True for endpoints only this machine can reach (127.x, ::1, localhost, ipc, inproc)."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host = endpoint.removeprefix("tcp://").rsplit(":", 1)[0].strip("[]")
    return host == "localhost" or host == "::1" or host.startswith("127.")


class RouteConfig(_Model):
    """An agency and the alerts it is responsible for: any listed kind, zone or source matches
    (nothing listed: every alert). Its copies go out under `@<agency>.<kind>.<site>.<source>.`."""

    agency: Id
    kinds: list[str] = Field(default_factory=list, description="Event kinds, e.g. dumping.")
    zones: list[Id] = Field(default_factory=list)
    sources: list[Id] = Field(default_factory=list)


class JsonlOutputConfig(_Model):
    """Alerts appended to a file, one JSON object per line."""

    type: Literal["jsonl"] = "jsonl"
    path: Path = Field(description="File to append to; relative to the config file.")


OutputConfig = Annotated[ZmqOutputConfig | JsonlOutputConfig, Field(discriminator="type")]


class ClipsConfig(_Model):
    """Short clips around each incident's start, from a ring buffer of recent frames per source;
    the alert names the clip file (attribute `clip`)."""

    dir: Path | None = Field(
        None, description="Where clips go (default: $LOOKOUT_STATE_DIR/clips)."
    )
    pre_s: float = Field(5.0, ge=0, le=120, description="Seconds kept before the event.")
    post_s: float = Field(5.0, ge=0, le=600, description="Seconds recorded after it.")
    fps: float = Field(5.0, gt=0, le=30, description="Frames per second kept (a clip is evidence).")
    max_width: int = Field(640, ge=64, le=3840, description="Frames are scaled down to this width.")
    keep: int = Field(1000, ge=1, le=1_000_000, description="At most this many clips (oldest go).")


class MetricsConfig(_Model):
    """Prometheus metrics over HTTP (per source and stage; see engine/runtime/metrics.py)."""

    listen: str = Field(
        "127.0.0.1:9108",
        pattern=r"^[^\s:]+:\d{1,5}$",
        description="host:port of the /metrics endpoint (port 0: any free port).",
    )
    tls_cert: Path | None = Field(None, description="Serve HTTPS with this certificate (PEM).")
    tls_key: Path | None = Field(None, description="The certificate's private key (PEM).")
    client_ca: Path | None = Field(
        None, description="Only scrapers with a client certificate signed by this CA."
    )

    _port = field_validator("listen")(check_port)

    @model_validator(mode="after")
    def _tls_pair(self) -> MetricsConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.client_ca is not None and self.tls_cert is None:
            raise ValueError("client_ca needs tls_cert and tls_key")
        return self


class SupervisorConfig(_Model):
    """How a failed per-source stage is restarted (the other sources go on meanwhile)."""

    backoff_initial_s: float = Field(0.5, gt=0, le=60, description="First restart delay.")
    backoff_max_s: float = Field(30.0, gt=0, le=3600, description="Longest restart delay.")
    healthy_s: float = Field(
        60.0, gt=0, le=30 * 86400, description="Running this long without failing resets the delay."
    )
    max_restarts: int | None = Field(
        None, ge=0, le=10**9, description="Give a source up after this many restarts (None: never)."
    )


# --- the whole file --------------------------------------------------------------------------


class Config(_Model):
    """A Lookout deployment: what to watch, how to detect, what to flag, where to send it."""

    version: Literal[1] = Field(1, description="Config format version.")
    site: Id = Field("site", description="Site name; part of every alert topic.")
    sources: list[SourceConfig] = Field(min_length=1, description="Video sources.")
    detector: DetectorConfig
    zones: list[ZoneConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)
    outputs: list[OutputConfig] = Field(default_factory=list)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    routing: list[RouteConfig] = Field(
        default_factory=list, description="Agencies and the alerts each is responsible for."
    )
    geo: GeoConfig | None = Field(
        None, description="Site origin: alerts carry latitude/longitude (drones: from telemetry)."
    )
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    clips: ClipsConfig | None = Field(
        None, description="Record a short clip around each incident's start (None: no clips)."
    )
    metrics: MetricsConfig | None = Field(
        None, description="Serve Prometheus metrics over HTTP (None: not served)."
    )
    supervisor: SupervisorConfig = Field(default_factory=SupervisorConfig)

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        problems = _unique_ids(self) + _references(self)
        if problems:
            raise CrossFieldError(problems)
        return self

    def resolve_paths(self, base: Path) -> Config:
        """A copy with every relative file path made relative to `base` (a directory)."""

        def fix(p: Path) -> Path:
            return p if p.is_absolute() else base / p

        sources = [_resolve_source(s, fix) for s in self.sources]
        outputs = [_resolve_output(o, fix) for o in self.outputs]
        detector = self.detector.model_copy(update={"model": fix(self.detector.model)})
        update: dict[str, object] = {"sources": sources, "outputs": outputs, "detector": detector}
        if self.clips is not None and self.clips.dir is not None:
            update["clips"] = self.clips.model_copy(update={"dir": fix(self.clips.dir)})
        if self.metrics is not None:
            update["metrics"] = self.metrics.model_copy(
                update={k: fix(v) for k, v in self.metrics if isinstance(v, Path)}
            )
        return self.model_copy(update=update)


def _resolve_source(s: SourceConfig, fix: Callable[[Path], Path]) -> SourceConfig:
    if isinstance(s, FileSourceConfig):
        return s.model_copy(update={"path": fix(s.path)})
    if isinstance(s, DroneSourceConfig):
        update: dict[str, object] = {"srt": fix(s.srt)} if s.srt else {}
        if s.is_file:
            update["url"] = str(fix(Path(s.url)))
        return s.model_copy(update=update)
    return s


def _resolve_output(o: OutputConfig, fix: Callable[[Path], Path]) -> OutputConfig:
    if isinstance(o, JsonlOutputConfig):
        return o.model_copy(update={"path": fix(o.path)})
    update: dict[str, object] = {"journal": fix(o.journal)} if o.journal else {}
    if o.curve is not None:
        update["curve"] = o.curve.model_copy(
            update={
                "server_secret_key": fix(o.curve.server_secret_key),
                "allowed_clients": fix(o.curve.allowed_clients),
            }
        )
    return o.model_copy(update=update)


# Sections that hold discriminated unions, and the `type` tags each accepts.
_UNION_TAGS: dict[str, list[str]] = {
    "sources": union_tags(SourceConfig),
    "rules": union_tags(RuleConfig),
    "outputs": union_tags(OutputConfig),
}


def _unique_ids(cfg: Config) -> list[tuple[tuple[int | str, ...], str]]:
    problems: list[tuple[tuple[int | str, ...], str]] = []
    for section in ("sources", "zones", "rules"):
        first: dict[str, int] = {}
        for i, item in enumerate(getattr(cfg, section)):
            if item.id in first:
                problems.append(
                    (
                        (section, i, "id"),
                        f"expected a unique id, got {item.id!r} again "
                        f"(first used by {section}[{first[item.id]}])",
                    )
                )
            first.setdefault(item.id, i)
    return problems


def _references(cfg: Config) -> list[tuple[tuple[int | str, ...], str]]:
    problems: list[tuple[tuple[int | str, ...], str]] = []
    sources = sorted(s.id for s in cfg.sources)
    zones = sorted(z.id for z in cfg.zones)
    for i, z in enumerate(cfg.zones):
        if z.source not in sources:
            problems.append(
                (
                    ("zones", i, "source"),
                    f"expected one of the source ids {sources}, got {z.source!r}",
                )
            )
    for i, route in enumerate(cfg.routing):
        for field, known in (("zones", zones), ("sources", sources)):
            for name in getattr(route, field):
                if name not in known:
                    why = f"expected one of the {field[:-1]} ids {known}, got {name!r}"
                    problems.append((("routing", i, field), why))
    for i, r in enumerate(cfg.rules):
        zone = getattr(r, "zone", None)
        if zone is not None and zone not in zones:
            problems.append(
                (("rules", i, "zone"), f"expected one of the zone ids {zones}, got {zone!r}")
            )
        source = getattr(r, "source", None)
        if source is not None and source not in sources:
            problems.append(
                (
                    ("rules", i, "source"),
                    f"expected one of the source ids {sources}, got {source!r}",
                )
            )
    return problems


# --- loading and error reports ------------------------------------------------------------------


def load_config(path: str | Path) -> Config:
    """Read, validate and resolve a YAML config file.

    Args:
        path: the YAML file.

    Returns:
        The validated config, relative paths resolved against the file's directory.

    Raises:
        ConfigError: the file is missing, not YAML, or invalid; the message has one line per
            problem: `file:line: field.path: expected ..., got ...`.
    """
    path = Path(path)
    return parse_config(read_text(path), name=str(path)).resolve_paths(path.parent)


def parse_config(text: str, name: str = "<config>") -> Config:
    """Validate YAML text (paths stay as written). Raises ConfigError like `load_config`."""
    return parse_yaml_model(text, Config, name, _UNION_TAGS, PATTERN_MEANING)
