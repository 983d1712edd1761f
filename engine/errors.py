"""The engine's exception tree.

User errors (a bad config, a missing model, an unreadable video) raise one of these with a message
that names the culprit; the CLI prints that one line and exits non-zero without a traceback.
Anything else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EngineError",
    "ModelError",
    "PublishError",
    "SourceError",
    "TelemetryError",
]


class EngineError(Exception):
    """Base of every error Lookout raises on purpose."""

    exit_code: int = 1


class ConfigError(EngineError):
    """A configuration file or command-line option is invalid."""

    exit_code = 2


class SourceError(EngineError):
    """A video source cannot be opened or read."""


class ModelError(EngineError):
    """A model file is missing, corrupt, or has a layout Lookout does not support."""


class PublishError(EngineError):
    """Alerts cannot be published (socket cannot bind, sink cannot be written)."""


class TelemetryError(EngineError):
    """Telemetry (KLV, SRT) is malformed; the message says which packet and what is wrong."""
