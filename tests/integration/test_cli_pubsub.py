"""The issue's acceptance check: `lookout run` publishes person alerts that a separate
`lookout subscribe --json` process receives and prints, one JSON object per line."""

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.alerts.schema import validate_message
from tests.conftest import free_port

pytestmark = pytest.mark.assets


def lookout_bin() -> list[str]:
    exe = Path(sys.executable).parent / "lookout"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("lookout")
    return [found] if found else [sys.executable, "-m", "engine.cli.main"]


def test_run_publishes_and_subscribe_prints_json(assets: Callable[..., Path]) -> None:
    clip = assets("footage/intel_one-by-one-person-detection.mp4")
    model = assets("models/yolo11n_coco_320.onnx")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    sub = subprocess.Popen(
        [*lookout_bin(), "subscribe", endpoint, "--json", "--count", "4", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run = subprocess.run(
            [
                *lookout_bin(),
                "run",
                "--source",
                str(clip),
                "--model",
                str(model),
                "--classes",
                "person",
                "--publish",
                endpoint,
                "--fast",
                "--max-frames",
                "600",
                "--wait-subscribers",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert run.returncode == 0, run.stderr
        out, err = sub.communicate(timeout=30)
    finally:
        sub.kill()
    assert sub.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 4
    alerts = [json.loads(line) for line in lines]  # one JSON object per line
    assert [a["seq"] for a in alerts] == [1, 2, 3, 4]
    assert [a["data"]["phase"] for a in alerts] == ["start", "end", "start", "end"]
    for a in alerts:
        validate_message(a)  # the published JSON Schema
        assert a["specversion"] == "1.0" and a["type"].startswith("lookout.zone_presence.")
        assert a["data"]["sensors"] == ["intel_one-by-one-person-detection"]
        for obj in a["data"]["objects"]:
            x1, y1, x2, y2 = obj["box_xyxy"]
            assert obj["label"] == "person" and 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 432
    assert alerts[0]["data"]["objects"], "a start alert carries the person's box"
    # the run also printed them for the operator
    assert run.stdout.count("zone_presence") >= 4


def test_sigterm_stops_cleanly_and_ends_open_incidents(
    assets: Callable[..., Path], tmp_path: Path
) -> None:
    import signal
    import time

    clip = assets("footage/intel_one-by-one-person-detection.mp4")
    model = assets("models/yolo11n_coco_320.onnx")
    log = tmp_path / "alerts.jsonl"
    proc = subprocess.Popen(
        [
            *lookout_bin(),
            "run",
            "--source",
            str(clip),
            "--model",
            str(model),
            "--classes",
            "person",
            "--jsonl",
            str(log),
            "--loop",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        # wait until an incident is open (a start without its end yet), then stop
        while time.monotonic() < deadline:
            phases = [a["data"]["phase"] for a in incident_alerts(log)] if log.exists() else []
            if phases and phases[-1] == "start":
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        t_signal = time.monotonic()
        _, err = proc.communicate(timeout=30)
        stopped_s = time.monotonic() - t_signal
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "received SIGTERM: stopping" in err and "done:" in err and "Traceback" not in err
    # every thread joined within the shutdown bound (10 s; it logs any that was not)
    assert stopped_s < 15 and "did not stop" not in err
    alerts = incident_alerts(log)
    phases = [a["data"]["phase"] for a in alerts]
    assert phases[-1] == "end" and phases.count("start") == phases.count("end")
    assert alerts[-1]["data"]["attributes"]["reason"] == "stream_ended"


def incident_alerts(log: Path) -> list[dict[str, Any]]:
    """The alerts of incidents in a JSON-lines log (health events such as `source.lagging`,
    which a loaded machine may cause at native rate, have no phase)."""
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    return [a for a in lines if "phase" in a["data"]]
