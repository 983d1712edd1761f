"""Stage contracts: the data that flows between Lookout's stages.

Every stage speaks in these types and nothing else: a source yields `Frame`s, a detector turns a
batch of frames into `Detections`, a tracker turns detections into `Tracks`, a rule turns tracks
into `Event`s, and the publisher wraps each event into an `Alert` on the wire. Sources also report
their own state (online, offline, stalled, ...) as `HealthEvent`s, published beside the alerts.

They are frozen, slotted dataclasses holding one NumPy array per field (struct of arrays). Shapes
and dtypes are checked once, at construction, and a mismatch raises `ValueError` saying what was
expected and what came. This module depends on nothing else in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "HEALTH_KINDS",
    "Alert",
    "ClipRef",
    "ClipStatus",
    "Detections",
    "Event",
    "EventPhase",
    "EventStage",
    "Frame",
    "GroundPosition",
    "HealthEvent",
    "HealthKind",
    "Tracks",
]

EventPhase = Literal["start", "update", "end"]
EventStage = Literal["suspected", "confirmed", "vehicle_left", "cleared", "closed"]
"""Stages of a staged incident (dumping): see `Event.stage`."""
HealthKind = Literal[
    "source.online",
    "source.offline",
    "source.stalled",
    "source.recovered",
    "source.lagging",
    "stage.failed",
    "stage.restarted",
    "config.reloaded",
    "config.rejected",
    "access.reloaded",
    "node.lost",
    "source.moved",
    "source.stranded",
    "journal.failing",
    "journal.recovered",
    "journal.replaced",
    "sink.failing",
    "sink.recovered",
    "source.failed",
    "source.truncated",
]
HEALTH_KINDS: tuple[str, ...] = HealthKind.__args__  # type: ignore[attr-defined]
ClipStatus = Literal["recording", "written", "failed"]


def _check_array(
    name: str, value: object, dtype: type[np.generic], ndim: int, cols: int | None = None
) -> None:
    """Raise ValueError unless `value` is an ndarray of `dtype`, `ndim` dims and `cols` columns."""
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(value).__name__}")
    if value.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {np.dtype(dtype)}, got {value.dtype}")
    if value.ndim != ndim or (cols is not None and value.shape[-1] != cols):
        want = "[n]" if ndim == 1 else f"[n,{cols}]"
        raise ValueError(f"{name}: expected shape {want}, got {list(value.shape)}")


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded video frame and where it came from.

    Attributes:
        source_id: the configured id of the source (camera, drone, file).
        seq: frame number from this source, counting from 0, without gaps for frames delivered.
        pts_s: presentation time in the stream, seconds; monotonic within one source (looped
            files keep counting up).
        capture_ns: `time.monotonic_ns()` when the frame was taken from the decoder; used for
            latency, never shown on the wire.
        image: BGR uint8 pixels, shape [h, w, 3].
        telemetry: per-frame sensor metadata (drone pose, ...) or empty.
    """

    source_id: str
    seq: int
    pts_s: float
    capture_ns: int
    image: npt.NDArray[np.uint8]
    telemetry: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
            got = getattr(img, "dtype", type(img).__name__)
            raise ValueError(f"Frame.image: expected uint8 ndarray, got {got}")
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"Frame.image: expected shape [h,w,3], got {list(img.shape)}")

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])


@dataclass(frozen=True, slots=True)
class Detections:
    """Objects found in one frame, in source-image pixels.

    Attributes:
        xyxy: f32 [n, 4] boxes (x1, y1, x2, y2) in pixels of the source frame.
        score: f32 [n] confidence in [0, 1].
        class_id: i32 [n] index into `class_names`.
        class_names: the detector's class names (shared, not copied per frame).
    """

    xyxy: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int32]
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_array("Detections.xyxy", self.xyxy, np.float32, 2, 4)
        _check_array("Detections.score", self.score, np.float32, 1)
        _check_array("Detections.class_id", self.class_id, np.int32, 1)
        n = len(self.xyxy)
        if len(self.score) != n or len(self.class_id) != n:
            raise ValueError(
                f"Detections: fields differ in length: xyxy {n}, score {len(self.score)}, "
                f"class_id {len(self.class_id)}"
            )

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls, class_names: tuple[str, ...] = ()) -> Detections:
        """No detections."""
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            class_names,
        )

    def labels(self) -> list[str]:
        """Class name of every detection (the id as text where no name is known)."""
        names = self.class_names
        return [names[c] if 0 <= c < len(names) else str(c) for c in self.class_id.tolist()]

    def select(self, mask: npt.NDArray[np.bool_]) -> Detections:
        """The detections where `mask` (bool [n]) is true."""
        return Detections(self.xyxy[mask], self.score[mask], self.class_id[mask], self.class_names)


@dataclass(frozen=True, slots=True)
class Tracks:
    """Detections with identities that persist across frames of one source.

    Attributes:
        xyxy, score, class_id, class_names: as in `Detections`.
        track_id: i64 [n], unique within one source for the life of the tracker.
        velocity: f32 [n, 2] box-centre velocity in pixels per second (0 where untracked).
        stationary: bool [n], the object has not moved for a while (parked, dumped).
        ground_m: f32 [n, 2] foot point on the ground, metres east/north of the site origin
            (nan where the source is not mapped to the ground).
        speed_mps: f32 [n] ground speed, metres per second (nan where unknown).
    """

    xyxy: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int32]
    track_id: npt.NDArray[np.int64]
    class_names: tuple[str, ...] = ()
    velocity: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    stationary: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    ground_m: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    speed_mps: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        Detections(self.xyxy, self.score, self.class_id)  # same checks for the shared fields
        _check_array("Tracks.track_id", self.track_id, np.int64, 1)
        n = len(self.xyxy)
        if len(self.track_id) != n:
            raise ValueError(f"Tracks: track_id has {len(self.track_id)} rows, xyxy {n}")
        # not given: zeros (frozen, so set through object.__setattr__)
        if n and isinstance(self.velocity, np.ndarray) and len(self.velocity) == 0:
            object.__setattr__(self, "velocity", np.zeros((n, 2), np.float32))
        if n and isinstance(self.stationary, np.ndarray) and len(self.stationary) == 0:
            object.__setattr__(self, "stationary", np.zeros(n, np.bool_))
        if n and isinstance(self.ground_m, np.ndarray) and len(self.ground_m) == 0:
            object.__setattr__(self, "ground_m", np.full((n, 2), np.nan, np.float32))
        if n and isinstance(self.speed_mps, np.ndarray) and len(self.speed_mps) == 0:
            object.__setattr__(self, "speed_mps", np.full(n, np.nan, np.float32))
        _check_array("Tracks.velocity", self.velocity, np.float32, 2, 2)
        _check_array("Tracks.stationary", self.stationary, np.bool_, 1)
        _check_array("Tracks.ground_m", self.ground_m, np.float32, 2, 2)
        _check_array("Tracks.speed_mps", self.speed_mps, np.float32, 1)
        rows = {len(self.velocity), len(self.stationary), len(self.ground_m), len(self.speed_mps)}
        if rows != {n}:
            raise ValueError(
                f"Tracks: velocity/stationary/ground_m/speed_mps rows differ from xyxy's {n}"
            )

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls, class_names: tuple[str, ...] = ()) -> Tracks:
        """No tracks."""
        return cls.from_detections(Detections.empty(class_names), np.zeros(0, np.int64))

    @classmethod
    def from_detections(cls, dets: Detections, track_id: npt.NDArray[np.int64]) -> Tracks:
        """Attach identities (i64 [n]) to detections."""
        return cls(dets.xyxy, dets.score, dets.class_id, track_id, dets.class_names)

    @classmethod
    def untracked(cls, dets: Detections) -> Tracks:
        """Detections passed on without identities: every track id is -1."""
        return cls.from_detections(dets, np.full(len(dets), -1, np.int64))

    def labels(self) -> list[str]:
        """Class name of every track."""
        return Detections(self.xyxy, self.score, self.class_id, self.class_names).labels()


@dataclass(frozen=True, slots=True)
class GroundPosition:
    """Where on the ground an event happened (engine.geo.locate), as its alert says.

    Attributes:
        lat_deg: latitude, degrees (WGS 84).
        lon_deg: longitude, degrees.
        uncertainty_m: radius of the 95 % circle around it, metres.
        east_m: metres east of the site origin (config `geo`).
        north_m: metres north of the site origin.
    """

    lat_deg: float
    lon_deg: float
    uncertainty_m: float
    east_m: float
    north_m: float


@dataclass(frozen=True, slots=True)
class ClipRef:
    """What became of the video clip recorded for an incident (engine.record.clips).

    Attributes:
        status: "recording", "written" or "failed".
        file: the clip's name relative to the clips folder (`<source>/<event id>.mp4`); None
            when it failed.
        pre_s: seconds of video before the incident's start that the clip holds.
        post_s: seconds after the start it goes on for.
        size_bytes: the written file's size, when this run wrote it.
        reason: why it failed (status "failed").
    """

    status: ClipStatus
    file: str | None = None
    pre_s: float = 0.0
    post_s: float = 0.0
    size_bytes: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """Something a rule noticed, at one moment of one source.

    An incident has one `event_id` through its lifecycle: a `start`, any number of `update`s and
    an `end`.

    Attributes:
        event_id: stable id of the incident (all phases share it).
        kind: what happened, e.g. "zone_presence", "intrusion", "dumping".
        phase: "start", "update" or "end".
        source_id: the source whose frames showed it.
        rule_id: the configured rule that fired.
        pts_s: stream time of the frame that caused this phase.
        capture_ns: monotonic capture time of that frame (latency accounting).
        xyxy: f32 [n, 4] boxes of the objects involved, in source pixels.
        score: f32 [n] their confidences.
        labels: class name of each object.
        track_id: i64 [n] their track ids (-1 where untracked).
        zone_id: the zone concerned, if any.
        severity: "info", "warning" or "critical".
        attributes: rule-specific facts (counts, dwell seconds, ...), JSON-serialisable.
        frame_size: (width, height) of the source frame, for the consumer's drawing.
        snapshot: JPEG of the frame that caused this phase (sent as the message's third part).
        position: where on the ground it happened, when the source maps to the ground.
        global_id: i64 [n] each object's identity across sensors (-1 where it has none), or
            None where the source takes no part in fusion.
        clip: what became of the incident's video clip, when clips are recorded.
        sensors: the sources that see this incident, when several sensors' incidents merged
            into one (empty: only `source_id`).
        sensor_event_id: this source's own id of a merged incident, when it differs from
            `event_id`.
        stage: where a staged incident stands at this phase (None for rules without stages).
            Dumping: `suspected` (a vehicle stopped in the zone), `confirmed` (a new pile where
            it stood), `vehicle_left`, and at the end `cleared` (it left and no pile was found:
            not a dumping) or `closed` (it ended otherwise: a confirmed dumping ended, or the
            stream or engine stopped first; `attributes.confirmed` says which).
    """

    event_id: str
    kind: str
    phase: EventPhase
    source_id: str
    rule_id: str
    pts_s: float
    capture_ns: int
    xyxy: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]
    labels: tuple[str, ...]
    track_id: npt.NDArray[np.int64]
    zone_id: str | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    attributes: dict[str, Any] = field(default_factory=dict)
    frame_size: tuple[int, int] = (0, 0)
    snapshot: bytes | None = field(default=None, repr=False)
    position: GroundPosition | None = None
    global_id: npt.NDArray[np.int64] | None = None
    clip: ClipRef | None = None
    sensors: tuple[str, ...] = ()
    sensor_event_id: str | None = None
    stage: EventStage | None = None

    def __post_init__(self) -> None:
        _check_array("Event.xyxy", self.xyxy, np.float32, 2, 4)
        _check_array("Event.score", self.score, np.float32, 1)
        _check_array("Event.track_id", self.track_id, np.int64, 1)
        n = len(self.xyxy)
        if self.global_id is not None:
            _check_array("Event.global_id", self.global_id, np.int64, 1)
            if len(self.global_id) != n:
                raise ValueError(f"Event: global_id has {len(self.global_id)} rows, xyxy {n}")
        if len(self.score) != n or len(self.labels) != n or len(self.track_id) != n:
            raise ValueError(
                f"Event: per-object fields differ in length: xyxy {n}, score {len(self.score)}, "
                f"labels {len(self.labels)}, track_id {len(self.track_id)}"
            )
        if self.phase not in ("start", "update", "end"):
            raise ValueError(f"Event.phase: expected start|update|end, got {self.phase!r}")


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """A source's change of state.

    Attributes:
        kind: `source.online` (first frames), `source.offline` (connection lost or refused),
            `source.stalled` (connected, but no packets for the read timeout: the camera is
            silent), `source.recovered` (frames again after offline/stalled), `source.lagging`
            (the engine is slower than the camera or the file's pace: frames were dropped to
            keep latency bounded; one meaning for every source, engine/sources/lag.py),
            `stage.failed` / `stage.restarted` (a source's worker failed and was restarted),
            `config.reloaded` / `config.rejected` (zones and rules from the config file), and on
            a cluster `node.lost` (a node died), `source.moved` (a source runs on another node
            now), `source.stranded` (no node left that can reach the camera); about outputs,
            `journal.failing` / `journal.recovered` (alerts go out but cannot be journaled, so
            not replayed; and again they can), `journal.replaced` (a damaged journal was moved
            aside and a fresh one started), `sink.failing` / `sink.recovered` (an output such as
            an alerts file cannot be written; the others still get every alert; also clips and
            snapshots, attribute `sink`); `source.failed` (a source could not be opened or read
            on: it ended with this error, the others run on), `source.truncated` (a file ended
            before its header said it would: frames read and expected).
        source_id: the source concerned.
        time_ns: `time.monotonic_ns()` when it was noticed.
        reason: what happened, for people (redacted on the wire: engine.alerts.wire).
        attributes: figures (timeouts, drop counts, retry delay), JSON-serialisable.
    """

    kind: HealthKind
    source_id: str
    time_ns: int
    reason: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in HEALTH_KINDS:
            raise ValueError(f"HealthEvent.kind: expected one of {HEALTH_KINDS}, got {self.kind!r}")

    @property
    def severity(self) -> Literal["info", "warning", "critical"]:
        """critical when a source is lost (or a stage gave up), warning when degraded, info
        otherwise."""
        lost = ("source.offline", "node.lost", "source.stranded", "source.failed")
        if self.kind in lost or self.attributes.get("final"):
            return "critical"
        if self.kind in ("journal.failing", "journal.replaced"):
            return "critical"
        degraded = (
            "source.stalled",
            "source.lagging",
            "stage.failed",
            "config.rejected",
            "source.moved",
            "sink.failing",
            "source.truncated",
        )
        return "warning" if self.kind in degraded else "info"


@dataclass(frozen=True, slots=True)
class Alert:
    """An event as published: sequenced, stamped with wall-clock time and addressed by topic.

    Attributes:
        event: what happened (a rule's event, or a source's health event).
        topic: ZeroMQ topic, `<kind>.<site>.<source>.` for events and `health.<site>.<source>.`
            for health events (it ends in the delimiter so that a subscription to `cam1` never
            matches `cam10`).
        seq: publisher sequence number, +1 per alert, starting at 1 in each epoch.
        epoch: id of this publisher run; changes on every restart.
        time_utc: ISO-8601 UTC time at publication.
        site: the deployment's site name.
        routes: further topics it goes out under, `@<agency>.<kind>.<site>.<source>.`, one per
            agency responsible for it (config `routing`).
    """

    event: Event | HealthEvent
    topic: str
    seq: int
    epoch: str
    time_utc: str
    site: str
    routes: tuple[str, ...] = ()
