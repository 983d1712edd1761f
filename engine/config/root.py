"""The whole file: the top-level `Config`, the checks across its sections, and loading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from engine.config.base import ID_PATTERN, ConfigModel, Id
from engine.config.deploy import SupervisorConfig
from engine.config.detector import DetectorConfig
from engine.config.outputs import (
    ENDPOINT_PATTERN,
    ClipsConfig,
    JsonlOutputConfig,
    MetricsConfig,
    OutputConfig,
    RouteConfig,
)
from engine.config.rules import RuleConfig
from engine.config.scene import FusionConfig, GeoConfig, ZoneConfig
from engine.config.sources import (
    RTSP_PATTERN,
    DroneSourceConfig,
    FileSourceConfig,
    SourceConfig,
)
from engine.config.tracking import TrackingConfig
from engine.yamlconf import CrossFieldError, parse_yaml_model, read_text, union_tags

__all__ = ["PATTERN_MEANING", "Config", "load_config", "parse_config"]

# What each pattern means, for error messages people can act on.
PATTERN_MEANING = {
    ID_PATTERN: "letters, digits, '-' and '_' only",
    ENDPOINT_PATTERN: "a ZeroMQ endpoint such as tcp://127.0.0.1:5556 or ipc:///run/x.sock",
    RTSP_PATTERN: "an rtsp:// or rtsps:// URL",
}


class Config(ConfigModel):
    """A Lookout deployment: what to watch, how to detect, what to flag, where to send it."""

    version: Literal[1] = Field(1, description="Config format version.")
    site: Id = Field("site", description="Site name; part of every alert topic.")
    sources: list[SourceConfig] = Field(min_length=1, description="Video sources.")
    detector: DetectorConfig = Field(description="The object detector, shared by all sources.")
    zones: list[ZoneConfig] = Field(
        default_factory=list, description="Polygons drawn on the sources' images."
    )
    rules: list[RuleConfig] = Field(default_factory=list, description="What is flagged.")
    outputs: list[OutputConfig] = Field(default_factory=list, description="Where alerts go.")
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig, description="Multi-object tracking per source."
    )
    routing: list[RouteConfig] = Field(
        default_factory=list, description="Agencies and the alerts each is responsible for."
    )
    geo: GeoConfig | None = Field(
        None, description="Site origin: alerts carry latitude/longitude (drones: from telemetry)."
    )
    fusion: FusionConfig = Field(
        default_factory=FusionConfig, description="Several sensors' views as one picture."
    )
    clips: ClipsConfig | None = Field(
        None, description="Record a short clip around each incident's start (None: no clips)."
    )
    metrics: MetricsConfig | None = Field(
        None, description="Serve Prometheus metrics over HTTP (None: not served)."
    )
    supervisor: SupervisorConfig = Field(
        default_factory=SupervisorConfig, description="Restarting a source's failed worker."
    )

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
