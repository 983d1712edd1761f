"""COCO YOLO11n's weights, taken from its ONNX export, rebuilt as a trainable PyTorch model
(models/sim_detector/coco_init.py) reproduce the export's outputs on real images, before any
fine-tuning: with its own 80 classes, and with ours (person, car and truck from COCO's rows).

The export runs in onnxruntime here; the rebuilt model runs in the Ultralytics environment
(`make ultralytics-env`), on the same letterboxed COCO128 images.
"""

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from models.sim_detector.coco_init import coco_names, letterbox
from tests.conftest import REPO

TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not TRAIN_PYTHON.exists(),
    reason="the Ultralytics environment is missing: run `make ultralytics-env`",
)


def _rebuilt(onnx: Path, inputs: np.ndarray, tmp: Path, *args: str) -> np.ndarray:
    """The rebuilt model's outputs on `inputs` (run in the Ultralytics environment)."""
    np.save(tmp / "in.npy", inputs)
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp / "yolo")}
    module = [str(TRAIN_PYTHON), "-m", "models.sim_detector.coco_init", "--onnx", str(onnx)]
    subprocess.run(
        [*module, *args, "--run", str(tmp / "in.npy"), str(tmp / "out.npy")],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return np.load(tmp / "out.npy")


def test_the_rebuilt_model_reproduces_the_export_on_real_images(
    assets: Callable[..., Path], tmp_path: Path
) -> None:
    onnx = assets("models/yolo11n_coco_320.onnx")
    images = sorted(assets("eval/coco128/images").glob("*.jpg"))
    # images the batch norms are not calibrated on (the first 32 are)
    inputs = np.stack([letterbox(f, 320) for f in images[100:106]])
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    export = np.concatenate([session.run(None, {name: x[None]})[0] for x in inputs])
    assert export.shape == (6, 84, 2100) and export[:, 4:].max() > 0.5  # it sees something

    calibrate = ["--calibrate", str(assets("eval/coco128/images")), "--calibrate-n", "32"]
    same = _rebuilt(onnx, inputs, tmp_path, *calibrate)
    assert same.shape == export.shape
    assert np.abs(same[:, :4] - export[:, :4]).max() < 0.05  # box coordinates, pixels of 320
    assert np.abs(same[:, 4:] - export[:, 4:]).max() < 1e-4  # class scores

    ours = _rebuilt(onnx, inputs, tmp_path, *calibrate, "--classes", "person,car,truck,debris")
    assert ours.shape == (6, 8, 2100)
    coco = coco_names(onnx)
    np.testing.assert_allclose(ours[:, :4], export[:, :4], atol=0.05)
    for k, cls in enumerate(("person", "car", "truck")):
        np.testing.assert_allclose(ours[:, 4 + k], export[:, 4 + coco.index(cls)], atol=1e-4)
    assert ours[:, 7].max() < 0.05  # a new class starts at its prior (about 0.01)
