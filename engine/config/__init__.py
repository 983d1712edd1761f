"""Configuration: YAML files validated by pydantic v2 models, one module per section.

A config names the site, its sources, the detector, zones, rules and outputs. Every model
derives from `ConfigModel` (`base.py`): it forbids unknown keys, is frozen, and bounds every
field. A bad file is rejected with one line per problem: file and line, the field path, what was
expected and what was given. Nothing is "repaired", and validation never touches hardware, files
or the network (`lookout run` checks those when it starts).

Relative paths inside a file are resolved against the file's directory.

The sections: `sources.py`, `detector.py` (with motion gating and tiling), `tracking.py`,
`scene.py` (zones, geo, calibration, fusion), `rules.py`, `outputs.py` (ZeroMQ, JSONL, routes,
clips, metrics), `deploy.py` (cluster placement, supervisor); `root.py` holds the whole file and
its loading. A stage imports its own section; everything is re-exported here.

Example:
    >>> cfg = load_config("configs/example.yaml")  # doctest: +SKIP
    >>> cfg.sources[0].id
    'gate-cam'
"""

from engine.config.base import ID_PATTERN, ConfigModel, Id
from engine.config.deploy import PlacementConfig, SupervisorConfig
from engine.config.detector import (
    PROVIDER_ALIASES,
    DetectorConfig,
    MotionConfig,
    PreprocessOverride,
    TilingConfig,
)
from engine.config.outputs import (
    ENDPOINT_PATTERN,
    ClipsConfig,
    CurveConfig,
    JsonlOutputConfig,
    MetricsConfig,
    OutputConfig,
    RouteConfig,
    ZmqOutputConfig,
    is_loopback,
)
from engine.config.root import PATTERN_MEANING, Config, load_config, parse_config
from engine.config.rules import (
    AbandonedObjectRuleConfig,
    Anchor,
    CrowdRuleConfig,
    DumpingRuleConfig,
    IntrusionRuleConfig,
    LineCrossingRuleConfig,
    LoiteringRuleConfig,
    RuleConfig,
    ZonePresenceRuleConfig,
)
from engine.config.scene import (
    CalibrationConfig,
    CalibrationPoint,
    FusionConfig,
    GeoConfig,
    ZoneConfig,
)
from engine.config.sources import (
    RTSP_PATTERN,
    DroneSourceConfig,
    FileSourceConfig,
    RtspSourceConfig,
    SourceConfig,
)
from engine.config.tracking import TrackingConfig

__all__ = [
    "ENDPOINT_PATTERN",
    "ID_PATTERN",
    "PATTERN_MEANING",
    "PROVIDER_ALIASES",
    "RTSP_PATTERN",
    "AbandonedObjectRuleConfig",
    "Anchor",
    "CalibrationConfig",
    "CalibrationPoint",
    "ClipsConfig",
    "Config",
    "ConfigModel",
    "CrowdRuleConfig",
    "CurveConfig",
    "DetectorConfig",
    "DroneSourceConfig",
    "DumpingRuleConfig",
    "FileSourceConfig",
    "FusionConfig",
    "GeoConfig",
    "Id",
    "IntrusionRuleConfig",
    "JsonlOutputConfig",
    "LineCrossingRuleConfig",
    "LoiteringRuleConfig",
    "MetricsConfig",
    "MotionConfig",
    "OutputConfig",
    "PlacementConfig",
    "PreprocessOverride",
    "RouteConfig",
    "RtspSourceConfig",
    "RuleConfig",
    "SourceConfig",
    "SupervisorConfig",
    "TilingConfig",
    "TrackingConfig",
    "ZmqOutputConfig",
    "ZoneConfig",
    "ZonePresenceRuleConfig",
    "is_loopback",
    "load_config",
    "parse_config",
]
