"""Signals for long-running commands: Ctrl-C and SIGTERM ask for a clean stop (a second one
kills); SIGHUP asks for a config reload."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

__all__ = ["reload_on_sighup", "stop_on_signals"]

log = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event) -> None:
    """Set `stop` on SIGINT or SIGTERM; the same signal again ends the process at once."""

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def reload_on_sighup(reload: Callable[[], None]) -> None:
    """Call `reload` on SIGHUP (what `systemctl reload` sends)."""

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received SIGHUP: reloading zones and rules")
        reload()

    signal.signal(signal.SIGHUP, on_signal)
