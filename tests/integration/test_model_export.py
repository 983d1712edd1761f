"""`lookout models export` with Ultralytics, offline, and the end-to-end layout it produces.

The bundled model's own weights (models/lookout_sim_yolo11n.pt) are exported again with NMS
inside the model ([B, 300, 6]) by `lookout models export` running in the Ultralytics environment
(`make ultralytics-env`); the engine must read that layout from the file, its card must verify,
and its detections must equal the plain export's decoded by our decoder and NMS.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from engine.config import DetectorConfig
from engine.detect import OnnxDetector
from engine.sim import Simulation, load_scenario

REPO = Path(__file__).resolve().parents[2]
ULTRA = REPO / ".venv-train" / "bin" / "lookout"
LOOKOUT = [sys.executable, "-m", "engine.cli.main"]

pytestmark = pytest.mark.skipif(
    not ULTRA.exists(), reason="the Ultralytics environment is missing: run `make ultralytics-env`"
)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (
        (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(cards folder, end-to-end ONNX file) exported offline from the bundled .pt."""
    tmp = tmp_path_factory.mktemp("export")
    card = yaml.safe_load((REPO / "models" / "lookout_sim_yolo11n.yaml").read_text())
    card.update(
        name="sim_end2end",
        file="sim_end2end.onnx",
        family="ultralytics_end2end",
        sha256="0" * 64,
        size_bytes=1,
        reproduce=None,
        export={"weights": "lookout_sim_yolo11n.pt", "imgsz": 480, "dynamic": True, "nms": True},
    )
    for key in ("data", "training", "heldout_metrics", "heldout_set"):
        card.pop(key, None)
    cards = tmp / "cards"
    cards.mkdir()
    (cards / "sim_end2end.yaml").write_text(yaml.safe_dump(card))
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp / "yolo")}
    # offline and without the weights: exact instructions, nothing written
    r = subprocess.run(
        [str(ULTRA), "models", "--cards", str(cards), "export", "sim_end2end", "--out", str(tmp)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp,
    )
    assert r.returncode != 0
    assert "the weights lookout_sim_yolo11n.pt are not here and the network is unreachable" in (
        r.stderr
    )
    assert not (tmp / "sim_end2end.onnx").exists()
    r = subprocess.run(
        [
            str(ULTRA),
            "models",
            "--cards",
            str(cards),
            "export",
            "sim_end2end",
            "--weights",
            str(REPO / "models" / "lookout_sim_yolo11n.pt"),
            "--out",
            str(tmp),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return cards, tmp / "sim_end2end.onnx"


def test_export_is_recognised_as_end_to_end_and_verifies_against_its_card(
    exported: tuple[Path, Path],
) -> None:
    cards, onnx = exported
    r = subprocess.run(
        [*LOOKOUT, "models", "--cards", str(cards), "verify", str(onnx)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "layout: ultralytics_end2end, input 480x480" in r.stdout
    assert "differs from card sim_end2end" in r.stdout  # placeholder checksum: a note only


def test_end_to_end_detections_equal_the_plain_export_through_our_nms(
    exported: tuple[Path, Path],
) -> None:
    _, onnx = exported
    # Ultralytics' NMS inside the model: class-aware, IoU 0.7, score > 0.25
    cfg = {"conf": 0.25, "iou": 0.7, "warmup_runs": 0}
    e2e = OnnxDetector(DetectorConfig(model=onnx, **cfg))
    plain = OnnxDetector(DetectorConfig(model=REPO / "models" / "lookout_sim_yolo11n.onnx", **cfg))
    assert e2e.info.family == "ultralytics_end2end" and plain.info.family == "ultralytics"
    sim = Simulation(load_scenario(REPO / "configs" / "scenarios" / "crowd_station_gate.yaml"))
    matched = total = 0
    for index in (60, 150, 240, 330):
        image, _, _ = sim.frame(index)
        a, b = e2e.detect_images([image])[0], plain.detect_images([image])[0]
        assert e2e.class_names == plain.class_names
        for box, score, cls in zip(b.xyxy, b.score, b.class_id, strict=True):
            if score < 0.3:  # near the threshold, float differences may keep or drop a box
                continue
            total += 1
            same = a.class_id == cls
            if same.any() and iou(box, a.xyxy[same]).max() > 0.95:
                matched += 1
    assert total >= 20, total
    assert matched == total
