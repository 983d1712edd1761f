"""Alerts appended to a file, one JSON object per line (an alerts log).

A batch is written with one `write` and flushed. When the write fails (disk full), whatever part
of the batch reached the file is cut off again, so the file never holds a torn line: readers
can trust every line, and the next batch starts on a line of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
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
            self._fh = cfg.path.open("ab", buffering=0)
        except OSError as exc:
            raise PublishError(f"cannot write alerts to {cfg.path}: {exc.strerror}") from None
        self._end = self._fh.seek(0, os.SEEK_END)  # where the last whole line ends

    def send(self, alert: Alert) -> None:
        """Append one alert."""
        self.send_many([alert])

    def send_many(self, alerts: list[Alert]) -> None:
        """Append alerts in order.

        Raises:
            OSError: the file cannot be written (nothing of the batch stays in it).
        """
        if not alerts:
            return
        text = "".join(
            json.dumps(alert_to_dict(a), separators=(",", ":")) + "\n" for a in alerts
        ).encode()
        try:
            view = memoryview(text)
            while view:
                n = self._fh.write(view)
                view = view[n or 0 :]
        except OSError as exc:
            self._cut()
            raise OSError(exc.errno, f"cannot append to {self.cfg.path}: {exc.strerror}") from None
        self._end += len(text)
        self.sent += len(alerts)

    def _cut(self) -> None:
        """Drop a torn tail (best effort: the disk may refuse even that)."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fh.fileno(), self._end)

    def tick(self, stats: Callable[[], dict[str, Any]] | None = None) -> None:
        """Nothing to do periodically."""

    def close(self) -> None:
        """Close the file."""
        self._fh.close()
