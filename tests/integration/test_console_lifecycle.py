"""The web console's life: nothing runs before `start`, a port in use fails `start` itself,
and `close` stops and joins both of its threads (HTTP loop and alert relay), twice harmlessly."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest

from engine.console import WebConsole
from engine.console.auth import hash_password
from engine.console.web import WebAccess
from tests.conftest import free_port


def _console(port: int) -> WebConsole:
    access = WebAccess(password_hash=hash_password("a long enough password"))
    return WebConsole(f"tcp://127.0.0.1:{free_port()}", port=port, access=access)


def _console_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("lookout-console")}


def test_start_serves_close_joins_both_threads() -> None:
    console = _console(0)
    assert _console_threads() == set()  # the constructor started nothing
    console.start()
    assert _console_threads() == {"lookout-console", "lookout-console-relay"}
    with urllib.request.urlopen(f"http://127.0.0.1:{console.port}/login", timeout=10) as r:
        assert r.status == 200
    console.close()
    assert _console_threads() == set() and console.wait(0) and console.failure is None
    console.close()


def test_a_port_in_use_fails_start_and_leaves_nothing_running() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        console = _console(taken.getsockname()[1])
        with pytest.raises(OSError):
            console.start()
    assert _console_threads() == set()
    console.close()
