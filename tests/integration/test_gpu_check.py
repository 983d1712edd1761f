"""bench/gpu_check runs where there is no GPU: the CPU row, the GPU providers listed as absent."""

import json
import subprocess
from pathlib import Path

import numpy as np

from bench.gpu_check import match_fraction
from engine.types import Detections

REPO = Path(__file__).resolve().parents[2]
NAMES = ("a", "b")


def dets(boxes: list[list[float]], scores: list[float], classes: list[int]) -> Detections:
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(scores, np.float32),
        np.array(classes, np.int32),
        NAMES,
    )


def test_match_fraction_needs_class_iou_and_score() -> None:
    ref = [dets([[0, 0, 100, 100], [200, 200, 300, 300]], [0.9, 0.5], [0, 1])]
    assert match_fraction(ref, ref) == 1.0
    moved = [dets([[0, 0, 100, 100], [230, 200, 330, 300]], [0.9, 0.5], [0, 1])]
    assert match_fraction(ref, moved) == 0.5  # IoU 0.54 < 0.9
    other_class = [dets([[0, 0, 100, 100], [200, 200, 300, 300]], [0.9, 0.5], [1, 1])]
    assert match_fraction(ref, other_class) == 0.5
    score_off = [dets([[0, 0, 100, 100], [200, 200, 300, 300]], [0.8, 0.5], [0, 1])]
    assert match_fraction(ref, score_off) == 0.5


def test_gpu_check_script_runs_on_a_cpu_only_machine(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            "bash",
            "bench/gpu_check",
            "--model",
            "models/lookout_sim_yolo11n.onnx",
            "--frames",
            "8",
            "--runs",
            "2",
            "--batches",
            "1,2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((REPO / "runs" / "gpu_check.json").read_text())
    assert result["summary"]["providers_run"] == ["CPUExecutionProvider"]
    rows = {row["variant"]: row for row in result["rows"]}
    assert rows["cpu"]["ms_b2"] > 0 and rows["cpu"]["match_vs_cpu"] == 1.0
    for name in ("cuda", "tensorrt-fp16"):
        assert "not available (ran nothing)" in rows[name]["provider"]
