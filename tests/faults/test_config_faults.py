"""Hostile and wrong config files, through the real CLI (findings 12 and 13 of issue 20).

12: an alias bomb of a few hundred bytes, a 44 MB file, and the bomb written into the config
of a running engine must be refused quickly, at bounded memory, while the engine keeps going.
13: values that parse but mean nothing (NaN vertices, ports past 65535, socket options past a C
int) must be refused by `lookout check` with file:line, field, expected and given.

The subprocesses run under an address-space limit (RLIMIT_AS), so a loader that expands the
bomb dies of MemoryError (a traceback, exit 1) instead of eating the machine.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LOOKOUT, free_port, make_video, make_yolox_model, moving_square_frames

GIB = 1 << 30


def _limit_memory(limit_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def check(config: Path, memory: int = 2 * GIB) -> subprocess.CompletedProcess[str]:
    """`lookout check CONFIG` as a real process with bounded memory."""
    return subprocess.run(
        [*LOOKOUT, "check", str(config)],
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=_limit_memory(memory),
    )


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The `lookout: error:` lines of a refused config (exit 2, no traceback)."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    lines = [x.removeprefix("lookout: error: ") for x in proc.stderr.splitlines()]
    return [x for x in lines if x.strip()]


def bomb(levels: int = 9, width: int = 9) -> str:
    """Billion laughs: `width` ** `levels` strings after alias expansion, as zone entries."""
    out = ["  - &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        out.append(f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "zones:\n" + "\n".join(out) + "\n"


HEAD = "sources: [{id: cam, type: file, path: clip.mp4}]\ndetector: {model: m.onnx}\n"


def test_alias_bomb_is_refused_quickly_at_bounded_memory(tmp_path: Path) -> None:
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text(HEAD + bomb())
    assert cfg.stat().st_size < 1024
    (line,) = error_lines(check(cfg))
    assert line.startswith(f"{cfg}:"), line
    assert "aliases counted each time they are used" in line and "200000" in line, line


def test_recursive_alias_and_deep_nesting_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "loop.yaml"
    cfg.write_text(HEAD + "zones: &z [*z]\n")
    (line,) = error_lines(check(cfg))
    assert f"{cfg}:3:" in line and "recursive" in line, line
    cfg.write_text(HEAD + "zones: " + "[" * 5000 + "]" * 5000 + "\n")
    (line,) = error_lines(check(cfg))
    assert f"{cfg}:3:" in line and "nested more than 64 levels" in line, line


def test_oversized_config_is_refused_by_its_size(tmp_path: Path) -> None:
    cfg = tmp_path / "huge.yaml"
    with cfg.open("w") as f:
        f.write(HEAD + "zones: [")
        chunk = "0, " * 100_000
        while f.tell() < 44_000_000:
            f.write(chunk)
        f.write("0]\n")
    (line,) = error_lines(check(cfg))
    assert re.fullmatch(
        rf"{re.escape(str(cfg))}: the file is 4\d\.\d MiB; a config file may be "
        r"at most 1\.0 MiB",
        line,
    ), line


# --- finding 13: values that mean nothing ----------------------------------------------------

GOOD = """\
sources:
  - id: cam
    type: file
    path: clip.mp4
detector:
  model: m.onnx
  class_names: [person, car]
zones:
  - id: z
    source: cam
    polygon: [[0, 0], [100, 0], [100, 100]]
rules:
  - {id: r, type: zone_presence, zone: z, classes: [person]}
outputs:
  - type: zmq
    endpoint: tcp://127.0.0.1:5556
"""

ZONE = "[[0, 0], [100, 0], [100, 100]]"
ZMQ = "    endpoint: tcp://127.0.0.1:5556\n"
FILE = "    path: clip.mp4\n"
CALIB = FILE + (
    "    calibration: {points: [{image: [0, 0], latlon: [45, 7]}, {image: [9, 0], ground: [9, 0]},"
    " {image: [0, 9], ground: [0, 9]}, {image: [9, 9], ground: [9, 9]}]}\n"
)

# (edit of GOOD, the line of the problem, the fragment the message must hold)
BAD = {
    "nan vertex": (
        (ZONE, "[[0, 0], [.nan, 0], [100, 100]]"),
        11,
        "zones[0].polygon[1][0]: expected a finite number, got nan",
    ),
    "inf vertex": (
        (ZONE, "[[0, 0], [100, 0], [100, -.inf]]"),
        11,
        "zones[0].polygon[2][1]: expected a finite number, got -inf",
    ),
    "vertex far out": (
        (ZONE, "[[0, 0], [1.0e+300, 0], [100, 100]]"),
        11,
        "zones[0].polygon[1][0]: expected less than or equal to 10000000",
    ),
    "zmq port": (
        (ZMQ, "    endpoint: tcp://127.0.0.1:65536\n"),
        16,
        "outputs[0].endpoint: expected a port from 0 to 65535, got 65536",
    ),
    "replay port": (
        (ZMQ, ZMQ + "    replay_endpoint: tcp://127.0.0.1:99999\n"),
        17,
        "outputs[0].replay_endpoint: expected a port from 0 to 65535, got 99999",
    ),
    "sndhwm": (
        (ZMQ, ZMQ + "    sndhwm: 100000000000000000000\n"),
        17,
        "outputs[0].sndhwm: expected less than or equal to 2147483647, got 1000000",
    ),
    "sndhwm float": (
        (ZMQ, ZMQ + "    sndhwm: 1.0e+20\n"),
        17,
        "outputs[0].sndhwm: expected an integer within this setting's range",
    ),
    "metrics port": (
        (ZMQ, ZMQ + "metrics: {listen: '0.0.0.0:70000'}\n"),
        17,
        "metrics.listen: expected a port from 0 to 65535, got 70000",
    ),
    "rtsp port": (
        ("    type: file\n" + FILE, "    type: rtsp\n    url: rtsp://u:p@10.0.0.9:554000/s\n"),
        4,
        "sources[0].url: expected a port from 0 to 65535, got 554000 (in rtsp://***@10.0.0.9",
    ),
    "geo nan": ((ZMQ, ZMQ + "geo: {lat: .nan, lon: 7}\n"), 17, "geo.lat: expected a finite"),
    "lon range": (
        (ZMQ, ZMQ + "geo: {lat: 45, lon: 181}\n"),
        17,
        "geo.lon: expected less than or equal to 180, got 181",
    ),
    "singular homography": (
        (FILE, FILE + "    calibration: {homography: [[1, 2, 3], [2, 4, 6], [0, 0, 1]]}\n"),
        5,
        "expected an invertible 3x3 matrix",
    ),
    "latlon without geo": ((FILE, CALIB), None, "points in lat/lon need `geo`"),
    "unknown class": (
        ("classes: [person]", "classes: [bicycle]"),
        None,
        "classes ['bicycle'] are not known to the detector",
    ),
    "line nan": (
        (
            "rules:\n",
            "rules:\n  - {id: l, type: line_crossing, source: cam, line: [[0, 0], [5, .nan]]}\n",
        ),
        13,
        "rules[0].line[1][1]: expected a finite",
    ),
    "timeout inf": (
        (ZMQ, ZMQ + "supervisor: {healthy_s: .inf}\n"),
        17,
        "supervisor.healthy_s: expected a finite number, got inf",
    ),
}


def bad_config(name: str) -> str:
    (old, new), _, _ = BAD[name]
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


def test_good_config_passes_check(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"x")
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "c.yaml").write_text(GOOD)
    proc = check(tmp_path / "c.yaml")
    assert proc.returncode == 0 and "OK (1 sources" in proc.stdout, proc.stderr


@pytest.mark.parametrize("name", list(BAD))
def test_check_refuses_values_that_mean_nothing(name: str, tmp_path: Path) -> None:
    _, line, fragment = BAD[name]
    (tmp_path / "clip.mp4").write_bytes(b"x")
    (tmp_path / "m.onnx").write_bytes(b"x")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(bad_config(name))
    lines = error_lines(check(cfg))
    assert any(fragment in x for x in lines), lines
    if line is not None:
        assert any(x.startswith(f"{cfg}:{line}: ") and fragment in x for x in lines), lines
    assert not [x for x in lines if ":p@" in x]  # credentials stay out of messages


# --- finding 12: the bomb written into a running engine's config ------------------------------


def _frames_in(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        float(x.rsplit(" ", 1)[1])
        for x in text.splitlines()
        if x.startswith(("lookout_frames_in_total{", "lookout_frames_in{"))
    )


def test_bomb_reloaded_into_a_running_engine_is_refused_and_the_engine_goes_on(
    tmp_path: Path,
) -> None:
    clip = make_video(tmp_path / "clip.mp4", moving_square_frames(30), fps=10)
    model = make_yolox_model(tmp_path / "tiny.onnx")
    port = free_port()
    head = (
        f"sources: [{{id: cam, type: file, path: '{clip}', rate: native, loop: true}}]\n"
        f"detector: {{model: '{model}', class_names: [a, b]}}\n"
        f"metrics: {{listen: '127.0.0.1:{port}'}}\n"
    )
    cfg = tmp_path / "lookout.yaml"
    cfg.write_text(head + "zones: [{id: z, source: cam, polygon: [[0, 0], [128, 0], [128, 96]]}]\n")
    proc = subprocess.Popen(
        [*LOOKOUT, "run", str(cfg), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limit_memory(4 * GIB),
    )
    log: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")))
    reader.start()

    def wait_for(pred: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"engine ended waiting for {what}: {''.join(log)[-3000:]}"
            try:
                if pred():
                    return
            except OSError:
                pass  # metrics not served yet
            assert time.monotonic() < deadline, f"no {what}: {''.join(log)[-3000:]}"
            time.sleep(0.2)

    try:
        wait_for(lambda: _frames_in(port) > 0, "frames before the reload")
        tmp = tmp_path / "new.yaml"
        tmp.write_text(head + bomb())
        os.replace(tmp, cfg)  # as a config-management tool would write it
        wait_for(lambda: any("config reload refused" in x for x in log), "config.rejected")
        refused = next(x for x in log if "config reload refused" in x)
        assert "lookout.yaml:" in refused and "aliases counted" in refused, refused
        at_refusal = _frames_in(port)
        wait_for(lambda: _frames_in(port) > at_refusal + 5, "frames after the refusal")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            proc.kill()
            reader.join(timeout=10)
    assert proc.returncode == 0, "".join(log)[-3000:]
    assert "Traceback" not in "".join(log), "".join(log)[-3000:]
