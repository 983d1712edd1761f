"""Where alerts go: ZeroMQ publishers (journaled, optionally CURVE-encrypted) and JSONL files
(a discriminated union on `type`), agencies' routes, clips around incidents, and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from engine.config.base import ConfigModel, Id
from engine.config.values import C_INT_MAX, check_port

__all__ = [
    "ENDPOINT_PATTERN",
    "ClipsConfig",
    "CurveConfig",
    "JsonlOutputConfig",
    "MetricsConfig",
    "OutputConfig",
    "RouteConfig",
    "ZmqOutputConfig",
    "is_loopback",
]

ENDPOINT_PATTERN = r"^(tcp://[^\s]+:\d+|ipc://[^\s]+|inproc://[^\s]+)$"


class CurveConfig(ConfigModel):
    """CURVE encryption and authentication of the alert stream (keys from `lookout keys new`)."""

    server_secret_key: Path = Field(
        description="This engine's key pair (the NAME.key_secret file `lookout keys new` wrote)."
    )
    allowed_clients: Path = Field(
        description="Folder of the consoles' public keys (NAME.key files); no other may connect."
    )


class ZmqOutputConfig(ConfigModel):
    """A ZeroMQ publisher: multipart [topic, JSON, optional JPEG snapshot], journaled first."""

    type: Literal["zmq"] = Field("zmq", description="A ZeroMQ publisher.")
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


class RouteConfig(ConfigModel):
    """An agency and the alerts it is responsible for: any listed kind, zone or source matches
    (nothing listed: every alert). Its copies go out under `@<agency>.<kind>.<site>.<source>.`."""

    agency: Id = Field(description="The agency's name; part of its copies' topics.")
    kinds: list[str] = Field(default_factory=list, description="Event kinds, e.g. dumping.")
    zones: list[Id] = Field(default_factory=list, description="Zone ids.")
    sources: list[Id] = Field(default_factory=list, description="Source ids.")


class JsonlOutputConfig(ConfigModel):
    """Alerts appended to a file, one JSON object per line."""

    type: Literal["jsonl"] = Field("jsonl", description="A JSON-lines file.")
    path: Path = Field(description="File to append to; relative to the config file.")


OutputConfig = Annotated[ZmqOutputConfig | JsonlOutputConfig, Field(discriminator="type")]


class ClipsConfig(ConfigModel):
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


class MetricsConfig(ConfigModel):
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
