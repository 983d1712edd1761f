"""COCO128 accuracy of a detector through the live pre-processing and decoding path.

Scores with pycocotools (bbox mAP50-95, mAP50, person mAP50-95) at the reference settings
(score >= 0.001, class-aware NMS at IoU 0.6, at most 300 boxes), next to the figures published
with the shared models (../shared/assets/README.md), as differences.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.config import DetectorConfig
from engine.detect import OnnxDetector
from engine.detect.coco_names import COCO_ALIASES
from engine.errors import ConfigError
from tests.support.assets import assets_dir

__all__ = ["REFERENCE", "add_arguments", "evaluate", "run"]

# Published with the shared models (../shared/assets/README.md), measured by a plain decoder.
REFERENCE: dict[str, dict[str, float]] = {
    "yolo11n_coco_640_dynbatch.onnx": {"map50_95": 0.473, "map50": 0.658, "person": 0.548},
    "yolo11n_coco_320.onnx": {"map50_95": 0.339, "map50": 0.465, "person": 0.393},
    "yolo11n_coco_320_dynbatch.onnx": {"map50_95": 0.339, "map50": 0.465, "person": 0.393},
    "yolov8n_coco_640.onnx": {"map50_95": 0.458, "map50": 0.615, "person": 0.552},
    "yolox_nano_416.onnx": {"map50_95": 0.335, "map50": 0.519, "person": 0.407},
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench coco`."""
    p.add_argument("--model", type=Path, action="append", required=True, help="ONNX model (repeat)")
    p.add_argument("--data", type=Path, help="COCO folder with images/ and instances.json")
    p.add_argument("--imgsz", type=int, help="input size for models with dynamic axes")
    p.add_argument("--family", default="auto", choices=["auto", "ultralytics", "yolox"])
    p.add_argument("--limit", type=int, help="score only the first N images")


def evaluate(
    model: Path,
    data: Path,
    imgsz: int | None = None,
    family: str = "auto",
    limit: int | None = None,
) -> dict[str, Any]:
    """Score one model on a COCO-format folder; returns mAP figures and timing."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ann_file = data / "instances.json"
    if not ann_file.is_file():
        raise ConfigError(f"{ann_file}: COCO annotations not found")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
    detector = OnnxDetector(
        DetectorConfig(model=model, family=family, imgsz=imgsz, conf=0.001, iou=0.6, max_det=300)
    )
    cat_by_name = {c["name"]: c["id"] for c in gt.loadCats(gt.getCatIds())}
    class_to_cat = [cat_by_name.get(COCO_ALIASES.get(n, n), -1) for n in detector.class_names]
    img_ids = sorted(gt.getImgIds())[:limit]
    results: list[dict[str, Any]] = []
    elapsed = 0.0
    for img_id in img_ids:
        info = gt.loadImgs(img_id)[0]
        image = cv2.imread(str(data / "images" / info["file_name"]), cv2.IMREAD_COLOR)
        if image is None:
            raise ConfigError(f"{data / 'images' / info['file_name']}: unreadable image")
        t0 = time.perf_counter()
        det = detector.detect_images([np.asarray(image, np.uint8)])[0]
        elapsed += time.perf_counter() - t0
        for (x1, y1, x2, y2), s, c in zip(
            det.xyxy.tolist(), det.score.tolist(), det.class_id.tolist(), strict=True
        ):
            cat = class_to_cat[c]
            if cat >= 0:
                results.append(
                    {
                        "image_id": img_id,
                        "category_id": cat,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": s,
                    }
                )
    if not results:
        return {"model": model.name, "map50_95": 0.0, "map50": 0.0, "person_map50_95": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = img_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # [iou, recall, class, area, maxdets]
    person_k = ev.params.catIds.index(cat_by_name["person"])
    person = precision[:, :, person_k, 0, 2]
    return {
        "model": model.name,
        "family": detector.info.family,
        "input": f"{detector.info.input_hw[1]}x{detector.info.input_hw[0]}",
        "images": len(img_ids),
        "map50_95": float(ev.stats[0]),
        "map50": float(ev.stats[1]),
        "person_map50_95": float(person[person > -1].mean()),
        "ms_per_image": 1000.0 * elapsed / max(1, len(img_ids)),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Score every --model; the summary holds the first model's figures."""
    data = args.data or (assets_dir() / "eval" / "coco128")
    rows = []
    for model in args.model:
        r = evaluate(model, data, args.imgsz, args.family, args.limit)
        ref = REFERENCE.get(model.name) if args.limit is None else None
        r["reference_map50_95"] = ref["map50_95"] if ref else None
        r["delta_map50_95"] = r["map50_95"] - ref["map50_95"] if ref else None
        r["ratio_map50_95"] = r["map50_95"] / ref["map50_95"] if ref else None
        rows.append(r)
    first = rows[0]
    summary = {
        "model": first["model"],
        "map50_95": first["map50_95"],
        "map50": first["map50"],
        "person_map50_95": first["person_map50_95"],
        "reference_map50_95": first["reference_map50_95"],
        "ratio_map50_95": first["ratio_map50_95"],
        "ms_per_image": first["ms_per_image"],
        "models": len(rows),
        "max_abs_delta_map50_95": max(
            (abs(r["delta_map50_95"]) for r in rows if r["delta_map50_95"] is not None),
            default=None,
        ),
    }
    table = [
        {
            k: r.get(k)
            for k in (
                "model",
                "input",
                "map50_95",
                "reference_map50_95",
                "delta_map50_95",
                "map50",
                "person_map50_95",
                "ms_per_image",
            )
        }
        for r in rows
    ]
    return {"suite": "coco", "data": str(data), "summary": summary, "models": rows, "table": table}


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    print(json.dumps(run(parser.parse_args())["table"], indent=1))
