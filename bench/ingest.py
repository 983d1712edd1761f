"""Live ingest cost: CPU per stream and camera-to-frame latency, Lookout (PyAV) beside OpenCV.

A real GStreamer RTSP server on 127.0.0.1 (tests/support/rtsp_server.py, its own process, not
counted) serves 720p and 1080p cameras whose frames carry their send time and number in the pixels.
Each reader runs alone for `--seconds`, taking BGR frames as an engine would; we count this
process's CPU time over the wall time (100 % = one core), the latency from the stamp to the
moment the frame is handed over (p50/p99), and frames lost (gaps in the numbers). Readers:
`lookout` = `LiveSource` (PyAV, capture thread, latest-frame buffer); `opencv` =
`cv2.VideoCapture(url, CAP_FFMPEG)` with default settings, the usual choice (the reference).
"""

from __future__ import annotations

import argparse
import resource
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tests.support.rtsp_process import RtspServer, available
from tests.support.stamp import latency_us, read_stamp

__all__ = ["add_arguments", "run"]

STREAMS = {"720p": "1280x720@30", "1080p": "1920x1080@30"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench ingest`."""
    p.add_argument("--seconds", type=float, default=15.0, help="measured time per reader")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured start per reader")


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _lookout_frames(url: str, stop: threading.Event) -> Iterator[np.ndarray]:
    from engine.config import RtspSourceConfig
    from engine.sources import LiveSource

    src = LiveSource(RtspSourceConfig(type="rtsp", id="bench", url=url))
    src.open()

    def close_on_stop() -> None:
        stop.wait()
        src.close()

    threading.Thread(target=close_on_stop, daemon=True).start()
    while (frame := src.read()) is not None:
        yield frame.image


def _opencv_frames(url: str, stop: threading.Event) -> Iterator[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(
        url,
        cv2.CAP_FFMPEG,
        [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000],
    )
    try:
        while not stop.is_set():
            ok, image = cap.read()
            if not ok:
                return
            yield image
    finally:
        cap.release()


READERS: dict[str, Callable[[str, threading.Event], Iterator[np.ndarray]]] = {
    "lookout": _lookout_frames,
    "opencv": _opencv_frames,
}


def measure(reader: str, url: str, seconds: float, warmup: float) -> dict[str, Any]:
    """Run one reader on one stream; CPU %, latency percentiles, frames and losses."""
    stop = threading.Event()
    lat_ms: list[float] = []
    numbers: list[int] = []
    t_start = time.monotonic()
    cpu0 = wall0 = None
    for image in READERS[reader](url, stop):
        now = time.monotonic()
        stamp = read_stamp(image)
        if now - t_start < warmup:
            continue
        if cpu0 is None:
            cpu0, wall0 = _cpu_s(), now
        if stamp is not None:
            lat_ms.append(latency_us(stamp[0], time.monotonic_ns() // 1000) / 1000)
            numbers.append(stamp[1])
        if now - t_start >= warmup + seconds:
            break
    stop.set()
    if cpu0 is None or wall0 is None or not numbers:
        raise RuntimeError(f"{reader}: no stamped frames from {url}")
    wall = time.monotonic() - wall0
    cpu = _cpu_s() - cpu0
    span = max(numbers) - min(numbers) + 1
    return {
        "frames": len(numbers),
        "fps": len(numbers) / wall,
        "cpu_pct": 100.0 * cpu / wall,
        "latency_p50_ms": float(np.percentile(lat_ms, 50)),
        "latency_p99_ms": float(np.percentile(lat_ms, 99)),
        "lost_pct": 100.0 * (1 - len(set(numbers)) / span),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both readers on both streams, one at a time."""
    why = available()
    if why:
        raise SystemExit(f"bench ingest needs the GStreamer RTSP server: {why}")
    table: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    with RtspServer(STREAMS) as server:
        for name in STREAMS:
            rows = {}
            for reader in READERS:
                rows[reader] = measure(reader, server.url(name), args.seconds, args.warmup)
                table.append(
                    {
                        "stream": name,
                        "reader": reader,
                        **{k: round(v, 2) for k, v in rows[reader].items()},
                    }
                )
            for key in ("cpu_pct", "latency_p50_ms", "latency_p99_ms", "lost_pct"):
                for reader in READERS:
                    summary[f"{name}_{reader}_{key}"] = rows[reader][key]
            for key in ("cpu_pct", "latency_p50_ms", "latency_p99_ms"):
                ref = rows["opencv"][key]
                summary[f"{name}_ratio_{key}"] = rows["lookout"][key] / ref if ref else None
    config = {"streams": STREAMS, "seconds": args.seconds, "warmup": args.warmup}
    return {"suite": "ingest", "summary": summary, "table": table, "config": config}
