"""float16 weight storage (models/sim_detector/compact.py): half the file, the same detections.
The real COCO YOLO11n export is compacted and both files run in onnxruntime on real images."""

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnx

from engine.config import DetectorConfig
from engine.detect import OnnxDetector
from models.sim_detector.compact import compact


def test_float16_storage_halves_the_file_and_keeps_the_detections(
    assets: Callable[..., Path], tmp_path: Path
) -> None:
    src = assets("models/yolo11n_coco_320.onnx")
    images = sorted(assets("eval/coco128").glob("images/*.jpg"))[:12]
    dst = tmp_path / "fp16.onnx"
    before, after = compact(src, dst)
    assert after < 0.6 * before
    casts = [n for n in onnx.load(str(dst)).graph.node if n.op_type == "Cast"]
    assert len(casts) > 50  # every weight tensor
    full = OnnxDetector(DetectorConfig(model=src, conf=0.25))
    half = OnnxDetector(DetectorConfig(model=dst, conf=0.25))
    assert half.class_names == full.class_names  # metadata kept
    matched = 0
    for path in images:
        image = cv2.imread(str(path))
        a, b = full.detect_images([image])[0], half.detect_images([image])[0]
        for box, score, cls in zip(a.xyxy, a.score, a.class_id, strict=True):
            if score < 0.35:  # near the threshold a box may fall on either side
                continue
            same = np.flatnonzero(b.class_id == cls)
            assert len(same), (path.name, cls)
            err = np.abs(b.xyxy[same] - box).max(axis=1)
            k = int(np.argmin(err))
            size = float(max(box[2] - box[0], box[3] - box[1]))
            assert err[k] < 0.5 + 0.01 * size, (path.name, err[k], size)  # a sub-pixel share
            assert abs(float(b.score[same[k]]) - float(score)) < 0.01
            matched += 1
    assert matched >= 15
