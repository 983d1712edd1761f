"""Real images mixed into the detector's training set: COCO128 with its person, car and truck
boxes as YOLO labels (models/sim_detector/dataset.py `add_real`), checked against the COCO
annotations themselves."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.sim_detector.dataset import CLASSES, MIN_REAL_PX, add_real


def test_real_images_carry_their_person_car_and_truck_boxes(
    assets: Callable[..., Path], tmp_path: Path
) -> None:
    coco = assets("eval/coco128")
    images, boxes = add_real(tmp_path, coco)
    data = json.loads((coco / "instances.json").read_text())
    assert images == len(data["images"]) == len(list((tmp_path / "images").glob("*.jpg")))
    names = {c["id"]: c["name"] for c in data["categories"]}
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    files = {im["id"]: im["file_name"] for im in data["images"]}
    expected: dict[int, list[tuple[int, list[float]]]] = {}
    for a in data["annotations"]:
        name = names[a["category_id"]]
        w, h = a["bbox"][2:]
        if name in CLASSES and not a["iscrowd"] and min(w, h) >= MIN_REAL_PX:
            expected.setdefault(a["image_id"], []).append((CLASSES.index(name), a["bbox"]))
    assert sum(boxes.values()) == sum(len(v) for v in expected.values())
    assert boxes["person"] > 200 and boxes["car"] > 0 and boxes["truck"] > 0
    for image_id, want in expected.items():
        stem = Path(files[image_id]).stem
        lines = (tmp_path / "labels" / f"real_{stem}.txt").read_text().split("\n")
        got = np.array([[float(v) for v in line.split()] for line in lines])
        iw, ih = sizes[image_id]
        back = np.column_stack(  # YOLO (cx, cy, w, h) / size -> COCO (x, y, w, h) pixels
            [
                (got[:, 1] - got[:, 3] / 2) * iw,
                (got[:, 2] - got[:, 4] / 2) * ih,
                got[:, 3] * iw,
                got[:, 4] * ih,
            ]
        )
        assert got[:, 0].astype(int).tolist() == [c for c, _ in want]
        np.testing.assert_allclose(back, np.array([b for _, b in want]), atol=0.01)
