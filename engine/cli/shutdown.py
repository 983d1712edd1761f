"""Ctrl-C and SIGTERM for long-running commands: the first asks for a clean stop, a second kills."""

from __future__ import annotations

import logging
import signal
import threading

__all__ = ["stop_on_signals"]

log = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event) -> None:
    """Set `stop` on SIGINT or SIGTERM; the same signal again ends the process at once."""

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
