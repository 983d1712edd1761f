"""Alerts appended to a file, one JSON object per line (an alerts log)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from engine.alerts.wire import alert_to_dict
from engine.config import JsonlOutputConfig
from engine.errors import PublishError
from engine.types import Alert

__all__ = ["JsonlSink"]


class JsonlSink:
    """Appends each alert as a line of JSON and flushes it.

    Raises:
        PublishError: the file cannot be opened for appending.
    """

    def __init__(self, cfg: JsonlOutputConfig) -> None:
        self.cfg = cfg
        self.sent = 0
        try:
            cfg.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = cfg.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise PublishError(f"cannot write alerts to {cfg.path}: {exc.strerror}") from None

    def send(self, alert: Alert) -> None:
        """Append one alert."""
        self._fh.write(json.dumps(alert_to_dict(alert), separators=(",", ":")) + "\n")
        self._fh.flush()
        self.sent += 1

    def send_many(self, alerts: list[Alert]) -> None:
        """Append alerts in order."""
        for alert in alerts:
            self.send(alert)

    def tick(self, stats: Callable[[], dict[str, Any]] | None = None) -> None:
        """Nothing to do periodically."""

    def close(self) -> None:
        """Close the file."""
        self._fh.close()
