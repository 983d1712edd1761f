"""`lookout bench run` on real footage against the real peers: one command, the figures the
users compare, and detections that agree with Ultralytics' box by box."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.peers import TRAIN_PYTHON

pytestmark = [pytest.mark.assets, pytest.mark.slow]


def test_bench_run_against_the_peers(assets: Callable[..., Path], tmp_path: Path) -> None:
    if not TRAIN_PYTHON.exists():
        pytest.skip(f"{TRAIN_PYTHON} missing: `make ultralytics-env` installs the peer")
    clip = assets("footage/intel_car-detection.mp4")
    model = assets("models/yolo11n_coco_320_dynbatch.onnx")
    out = tmp_path / "report"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "--log-level",
            "WARNING",
            "bench",
            "run",
            str(clip),
            "--model",
            str(model),
            "--peers",
            "--passes",
            "detect,motion",
            "--limit-seconds",
            "0.5",
            "--out",
            str(out),
            "--json",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    s = result["summary"]
    # the same model on the same frames: Lookout's boxes are Ultralytics' boxes
    assert s["detections_agree_iou90"] >= 0.95, result["agreement"]
    assert result["agreement"]["frames"] == 377 and result["agreement"]["n_b"] > 50
    for key in (
        "speedup_vs_ultralytics",
        "fraction_of_ort_limit",
        "ultralytics_track_fps",
        "motion_inferences_saved",
        "limit_fps",
    ):
        assert s[key] > 0, key
    names = [r["name"] for r in result["runs"]]
    assert names == [
        "lookout detect",
        "lookout detect, motion gating",
        "ultralytics predict",
        "ultralytics track",
    ]
    motion = result["runs"][1]
    assert motion["inferences"] < motion["frames"] == 377  # gating saved inferences
    assert set(result["ort_limit"]["batches"]) == {"1", "2", "4", "8"}
    assert result["machine"]["cpus"] >= 1
    report = (out / "report.md").read_text()
    assert "speedup_vs_ultralytics" in report and "ultralytics predict" in report
    for png in ("throughput.png", "latency.png", "stages.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "result.json").read_text())["summary"] == s


def test_bench_run_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "bench",
            "run",
            str(tmp_path / "none.mp4"),
            "--model",
            str(tmp_path / "m.onnx"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "no such file" in proc.stderr and "Traceback" not in proc.stderr
