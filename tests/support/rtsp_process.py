"""Start, kill, freeze and restart the loopback RTSP server (rtsp_server.py beside) from Python.

Used by the ingest tests and `lookout bench ingest`. The server runs under the system
interpreter, where GStreamer's Python bindings are; `available()` says whether they are.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["SYSTEM_PYTHON", "RtspServer", "available", "free_port"]

SYSTEM_PYTHON = os.environ.get("LOOKOUT_GST_PYTHON", "/usr/bin/python3")
SERVER = Path(__file__).resolve().parent / "rtsp_server.py"


def available() -> str | None:
    """None if the GStreamer RTSP server can run here, else why not."""
    if not Path(SYSTEM_PYTHON).is_file():
        return f"{SYSTEM_PYTHON} not found (set LOOKOUT_GST_PYTHON)"
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); "
            "from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode:
        return "GStreamer RTSP server bindings missing (apt-get install gir1.2-gst-rtsp-server-1.0 "
        "gstreamer1.0-plugins-ugly python3-gi)"
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RtspServer:
    """One server process serving stamped synthetic cameras.

    Args:
        mounts: {name: "WxH@FPS"}.
        port: TCP port (a free one if None); kept across `restart`.
        user, password: require basic auth.
    """

    def __init__(
        self,
        mounts: dict[str, str],
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.mounts = mounts
        self.port = port or free_port()
        self.user, self.password = user, password
        self.proc: subprocess.Popen[str] | None = None

    def url(self, mount: str, credentials: bool = True) -> str:
        """rtsp:// URL of a mount (with the credentials, if the server wants them)."""
        auth = f"{self.user}:{self.password}@" if self.user and credentials else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}/{mount}"

    def start(self, timeout_s: float = 15.0) -> RtspServer:
        """Start and wait until it serves."""
        cmd = [SYSTEM_PYTHON, str(SERVER), "--port", str(self.port)]
        for name, geometry in self.mounts.items():
            cmd += ["--mount", f"{name}:{geometry}"]
        if self.user:
            cmd += ["--user", self.user, "--password", self.password or ""]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                return self
            if not line and self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"RTSP server exited: {err.strip()[-500:]}")
        self.kill()
        raise RuntimeError(f"RTSP server not ready within {timeout_s} s")

    def kill(self) -> None:
        """SIGKILL: the camera dies mid-stream."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open, no packets flow."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after `freeze`."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Kill, then start again on the same port."""
        self.kill()
        self.start()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.thaw()
        self.kill()
