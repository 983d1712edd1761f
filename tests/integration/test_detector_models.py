"""Real onnxruntime sessions on the shared COCO models: layouts recognised, boxes where people are,
batching equal to one-by-one, and COCO128 accuracy within 0.01 of the published figures."""

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.coco import REFERENCE, evaluate
from engine.config import DetectorConfig
from engine.detect import OnnxDetector

pytestmark = pytest.mark.assets

MODELS = {
    "yolo11n_coco_320.onnx": ("ultralytics", (320, 320), False),
    "yolo11n_coco_320_dynbatch.onnx": ("ultralytics", (320, 320), True),
    "yolo11n_coco_640_dynbatch.onnx": ("ultralytics", (640, 640), True),
    "yolov8n_coco_640.onnx": ("ultralytics", (640, 640), False),
    "yolox_nano_416.onnx": ("yolox", (416, 416), False),
}
# 000000000036.jpg: a person with an umbrella filling most of the frame
PERSON_IMAGE = "eval/coco128/images/000000000036.jpg"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_is_recognised_and_finds_the_person(name: str, assets: Callable[..., Path]) -> None:
    family, hw, dyn = MODELS[name]
    det = OnnxDetector(DetectorConfig(model=assets(f"models/{name}")))
    assert (det.info.family, det.info.input_hw, det.info.batch_dynamic) == (family, hw, dyn)
    assert det.class_names[0] == "person" and len(det.class_names) == 80
    image = cv2.imread(str(assets(PERSON_IMAGE)))
    d = det.detect_images([image])[0]
    people = d.select(d.class_id == 0)
    assert len(people) >= 1
    x1, y1, x2, y2 = people.xyxy[0]
    h, w = image.shape[:2]
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    assert (y2 - y1) > 0.5 * h  # the person is most of the picture's height


def test_batch_equals_one_by_one(assets: Callable[..., Path]) -> None:
    det = OnnxDetector(DetectorConfig(model=assets("models/yolo11n_coco_320_dynbatch.onnx")))
    images = [cv2.imread(str(p)) for p in sorted(assets("eval/coco128/images").glob("*.jpg"))[:4]]
    batched = det.detect_images(images)
    for img, b in zip(images, batched, strict=True):
        single = det.detect_images([img])[0]
        np.testing.assert_allclose(b.xyxy, single.xyxy, atol=1e-2)
        assert b.class_id.tolist() == single.class_id.tolist()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "imgsz"),
    [
        ("yolo11n_coco_320.onnx", None),
        ("yolo11n_coco_320_dynbatch.onnx", None),
        ("yolo11n_coco_640_dynbatch.onnx", 640),
        ("yolov8n_coco_640.onnx", None),
        ("yolox_nano_416.onnx", None),
    ],
)
def test_coco128_map_matches_reference(
    name: str, imgsz: int | None, assets: Callable[..., Path]
) -> None:
    model = assets(f"models/{name}")
    result = evaluate(model, assets("eval/coco128"), imgsz=imgsz)
    assert result["map50_95"] == pytest.approx(REFERENCE[name]["map50_95"], abs=0.01)
    assert result["person_map50_95"] == pytest.approx(REFERENCE[name]["person"], abs=0.01)
