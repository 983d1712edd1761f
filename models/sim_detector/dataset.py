"""Render a YOLO dataset from randomised scenarios (no torch needed), with real images mixed in.

python -m models.sim_detector.dataset --out DIR --train 150 --val 25 --per-scene 8 \
    [--real ../shared/assets/eval/coco128]

`--real` adds a COCO-format folder's images (`images/`, `instances.json`) to the training split
with their person, car and truck boxes, so that a model fine-tuned on renders keeps seeing real
people and vehicles. Their other objects stay unlabelled, as in any subset of COCO's classes;
crowd regions (`iscrowd`) and boxes smaller than MIN_REAL_PX are left out.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from engine.sim import Simulation
from engine.sim.randomize import random_scenario
from engine.sim.writer import write_yolo_sample

CLASSES: tuple[str, ...] = ("person", "car", "truck", "debris")
VAL_SEED_BASE = 1_000_000  # validation scenes never share a seed (or layout) with training
MIN_REAL_PX = 4.0  # real boxes narrower or lower than this are not labelled


def add_real(root: Path, coco_dir: Path) -> tuple[int, Counter[str]]:
    """Copy a COCO-format folder's images into the split at `root` with YOLO labels of our
    classes that COCO has; (images, boxes per class)."""
    import shutil

    data = json.loads((coco_dir / "instances.json").read_text())
    ours = {c["id"]: CLASSES.index(c["name"]) for c in data["categories"] if c["name"] in CLASSES}
    by_image: dict[int, list[str]] = {}
    boxes: Counter[str] = Counter()
    sizes = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
    for a in data["annotations"]:
        cls = ours.get(a["category_id"])
        x, y, w, h = a["bbox"]
        if cls is None or a.get("iscrowd") or w < MIN_REAL_PX or h < MIN_REAL_PX:
            continue
        iw, ih = sizes[a["image_id"]]
        line = f"{cls} {(x + w / 2) / iw:.6f} {(y + h / 2) / ih:.6f} {w / iw:.6f} {h / ih:.6f}"
        by_image.setdefault(a["image_id"], []).append(line)
        boxes[CLASSES[cls]] += 1
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for im in data["images"]:  # images without our classes too: real negatives
        stem = f"real_{Path(im['file_name']).stem}"
        shutil.copy(coco_dir / "images" / im["file_name"], root / "images" / f"{stem}.jpg")
        (root / "labels" / f"{stem}.txt").write_text("\n".join(by_image.get(im["id"], [])))
    return len(data["images"]), boxes


def render_split(root: Path, seeds: range, per_scene: int) -> tuple[int, Counter[str]]:
    """Render `per_scene` random frames of each seed's scenario; (images, boxes per class)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    images = 0
    boxes: Counter[str] = Counter()
    for seed in seeds:
        sim = Simulation(random_scenario(seed))
        rng = np.random.default_rng(seed + 7)
        times = np.sort(rng.uniform(1.0, sim.scenario.duration_s - 1.0, per_scene))
        for k, t in enumerate(times):
            index = int(t * sim.scenario.fps)
            image, truths, _ = sim.frame(index)
            write_yolo_sample(root, f"s{seed}_{k}", image, truths, CLASSES)
            boxes.update(_labelled(root / "labels" / f"s{seed}_{k}.txt"))
            images += 1
    return images, boxes


def _labelled(label_file: Path) -> Counter[str]:
    lines = label_file.read_text().split("\n") if label_file.exists() else []
    return Counter(CLASSES[int(line.split()[0])] for line in lines if line.strip())


def write_data_yaml(root: Path) -> Path:
    """The dataset description ultralytics reads."""
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASSES))
    path = root / "data.yaml"
    path.write_text(
        f"path: {root.resolve()}\ntrain: train/images\nval: val/images\nnames:\n{names}\n"
    )
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train", type=int, default=150, help="training scenes")
    p.add_argument("--val", type=int, default=25, help="validation scenes")
    p.add_argument("--per-scene", type=int, default=8)
    p.add_argument("--real", type=Path, help="COCO-format folder of real images to mix in")
    a = p.parse_args()
    t0 = time.monotonic()
    tr = render_split(a.out / "train", range(a.train), a.per_scene)
    real = add_real(a.out / "train", a.real) if a.real is not None else (0, Counter())
    va = render_split(a.out / "val", range(VAL_SEED_BASE, VAL_SEED_BASE + a.val), a.per_scene)
    write_data_yaml(a.out)
    summary = {
        "train": {
            "scenes": f"{a.train} random scenes (seeds 0-{a.train - 1})",
            "frames_per_scene": a.per_scene,
            "images": tr[0],
            "boxes": dict(tr[1]),
        },
        "real": {
            "source": a.real.name if a.real is not None else None,
            "images": real[0],
            "boxes": dict(real[1]),
        },
        "val": {
            "scenes": f"{a.val} random scenes (seeds {VAL_SEED_BASE}+)",
            "frames_per_scene": a.per_scene,
            "images": va[0],
            "boxes": dict(va[1]),
        },
        "render_minutes": round((time.monotonic() - t0) / 60, 1),
    }
    (a.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
