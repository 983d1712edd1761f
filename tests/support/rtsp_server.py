"""A real RTSP server on loopback for tests and benchmarks: GStreamer's, serving synthetic cameras.

Runs under the system interpreter (`/usr/bin/python3`, where the `gi` bindings live; Debian
packages gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-ugly, python3-gi). Each mount is a live
H.264 camera of the given size and rate whose frames carry a stamp (see tests/support/stamp.py): the
server's monotonic clock in microseconds and the frame's number, so that a client can measure
camera-to-frame latency and count lost frames exactly.

    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 --mount cam1:1280x720@30 \
        --mount cam2:...

Prints `READY <port>` when it serves. Credentials: `--user U --password P` requires them (basic
auth) on every mount.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stamp import stamp_i420  # noqa: E402


def _pattern_frames(width: int, height: int, count: int) -> list[bytearray]:
    """Moving diagonal stripes (I420): content that costs the encoder and decoder real work."""
    period = 97
    ramp = bytes((40 + (i * 181) % 180) for i in range(period))
    row_src = ramp * ((width + height) // period + 3)
    chroma_w, chroma_h = width // 2, height // 2
    u_plane = bytes((100 + (i * 7) % 56) for i in range(chroma_w)) * chroma_h
    v_plane = bytes((120 + (i * 5) % 40) for i in range(chroma_w)) * chroma_h
    frames = []
    for k in range(count):
        shift = k * 3
        y_plane = b"".join(row_src[(y + shift) % period :][:width] for y in range(height))
        frames.append(bytearray(y_plane + u_plane + v_plane))
    return frames


class StampedCamera:
    """Feeds one appsrc at a fixed rate with stamped frames, from its own thread."""

    def __init__(self, appsrc: Gst.Element, width: int, height: int, fps: int) -> None:
        self.appsrc = appsrc
        self.width, self.height, self.fps = width, height, fps
        self.frames = _pattern_frames(width, height, 32)
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        period = 1.0 / self.fps
        duration = Gst.SECOND // self.fps
        t0 = time.monotonic()
        n = 0
        while not self.stop.is_set():
            due = t0 + n * period
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            data = bytearray(self.frames[n % len(self.frames)])
            stamp_i420(data, self.width, self.height, time.monotonic_ns() // 1000, n)
            buf = Gst.Buffer.new_wrapped(bytes(data))
            buf.pts = n * duration
            buf.duration = duration
            if self.appsrc.emit("push-buffer", buf) != Gst.FlowReturn.OK:
                return
            n += 1


class Factory(GstRtspServer.RTSPMediaFactory):
    """One mount: appsrc -> x264 -> RTP."""

    def __init__(self, width: int, height: int, fps: int) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        kbps = max(500, width * height * fps // 15000)
        self.launch = (
            f"( appsrc name=src is-live=true format=time do-timestamp=false "
            f"caps=video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 "
            f"! queue max-size-buffers=4 leaky=downstream "
            f"! x264enc tune=zerolatency speed-preset=ultrafast threads=1 bitrate={kbps} "
            f"key-int-max={fps} ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        self.set_shared(True)
        self.connect("media-configure", self._configure)

    def do_create_element(self, url: object) -> Gst.Element:
        return Gst.parse_launch(self.launch)

    def _configure(self, _factory: object, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name_recurse_up("src")
        camera = StampedCamera(appsrc, self.width, self.height, self.fps)
        media.connect("unprepared", lambda *_: camera.stop.set())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mount", action="append", required=True, help="NAME:WxH@FPS")
    p.add_argument("--user")
    p.add_argument("--password")
    a = p.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    mounts = server.get_mount_points()
    for spec in a.mount:
        name, geometry = spec.split(":", 1)
        size, fps = geometry.split("@")
        width, height = (int(v) for v in size.split("x"))
        factory = Factory(width, height, int(fps))
        if a.user:
            perm = GstRtspServer.RTSPPermissions()
            perm.add_permission_for_role("viewer", "media.factory.access", True)
            perm.add_permission_for_role("viewer", "media.factory.construct", True)
            factory.set_permissions(perm)
        mounts.add_factory(f"/{name}", factory)
    if a.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password or ""), token)
        server.set_auth(auth)
    if server.attach(None) == 0:
        sys.exit(f"cannot serve on 127.0.0.1:{a.port}")
    print(f"READY {a.port}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
