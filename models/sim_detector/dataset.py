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
import dataclasses
import functools
import json
import multiprocessing
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt

from engine.sim import Simulation
from engine.sim.randomize import random_scenario
from engine.sim.render import FrameTruth
from engine.sim.scenario import DroneSensor, DumpingIncident
from engine.sim.writer import write_yolo_sample

CLASSES: tuple[str, ...] = ("person", "car", "truck", "debris")
VAL_SEED_BASE = 1_000_000  # validation scenes never share a seed (or layout) with training
MIN_REAL_PX = 4.0  # real boxes narrower or lower than this are not labelled
DRONE_CROP = 480  # full-resolution window of each drone frame, the training input size


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


def render_split(
    root: Path, seeds: range, per_scene: int, crop: int = DRONE_CROP, jobs: int = 2
) -> tuple[int, Counter[str]]:
    """Render `per_scene` random frames of each seed's scenario; (images, boxes per class).

    A scene with a dumping has one of its frames while the truck stands and tips. Each drone
    frame is also written as a `crop` x `crop` window at full resolution around one of its
    objects: drone sources are detected at their native size, so the model learns high
    drones' small objects at the scale it will see them."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    work = functools.partial(_render_scene, root, per_scene=per_scene, crop=crop)
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        done = pool.map(work, seeds, chunksize=4)
    boxes: Counter[str] = Counter()
    for _, counted in done:
        boxes.update(counted)
    return sum(n for n, _ in done), boxes


def _render_scene(root: Path, seed: int, *, per_scene: int, crop: int) -> tuple[int, Counter[str]]:
    sim = Simulation(random_scenario(seed))
    sc = sim.scenario
    rng = np.random.default_rng(seed + 7)
    times = rng.uniform(1.0, sc.duration_s - 1.0, per_scene)
    for inc in sc.incidents:
        if isinstance(inc, DumpingIncident):
            times[0] = inc.arrive_s + rng.uniform(0, inc.unload_s + inc.wait_s)
    drone = isinstance(sc.sensor, DroneSensor)
    images = 0
    boxes: Counter[str] = Counter()
    for k, t in enumerate(np.sort(times)):
        image, truths, _ = sim.frame(int(t * sc.fps))
        samples = [(f"s{seed}_{k}", image, truths)]
        if drone:
            samples.append((f"s{seed}_{k}c", *_crop(image, truths, crop, rng)))
        for name, img, objs in samples:
            write_yolo_sample(root, name, img, objs, CLASSES)
            boxes.update(_labelled(root / "labels" / f"{name}.txt"))
            images += 1
    return images, boxes


def _crop(
    image: npt.NDArray[np.uint8], truths: list[FrameTruth], size: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.uint8], list[FrameTruth]]:
    """A size x size window around a random labelled object (or anywhere), with the objects
    that lie at least half inside it, clipped to it."""
    h, w = image.shape[:2]
    size = min(size, h, w)
    ours = [t for t in truths if t.cls in CLASSES]
    if ours:
        x1, y1, x2, y2 = ours[int(rng.integers(len(ours)))].box_xyxy
        cx, cy = (x1 + x2) / 2 + rng.uniform(-0.3, 0.3) * size, (y1 + y2) / 2
        cy += rng.uniform(-0.3, 0.3) * size
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    left = int(np.clip(cx - size / 2, 0, w - size))
    top = int(np.clip(cy - size / 2, 0, h - size))
    kept = []
    for t in truths:
        x1, y1, x2, y2 = t.box_xyxy
        cx1, cy1 = max(x1, left), max(y1, top)
        cx2, cy2 = min(x2, left + size), min(y2, top + size)
        area = max(0.0, x2 - x1) * max(0.0, y2 - y1)
        inside = max(0.0, cx2 - cx1) * max(0.0, cy2 - cy1)
        if area > 0 and inside >= 0.5 * area:
            box = (cx1 - left, cy1 - top, cx2 - left, cy2 - top)
            kept.append(dataclasses.replace(t, box_xyxy=box))
    return image[top : top + size, left : left + size].copy(), kept


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
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="rendering processes")
    a = p.parse_args()
    t0 = time.monotonic()
    tr = render_split(a.out / "train", range(a.train), a.per_scene, jobs=a.jobs)
    real = add_real(a.out / "train", a.real) if a.real is not None else (0, Counter())
    va = render_split(
        a.out / "val", range(VAL_SEED_BASE, VAL_SEED_BASE + a.val), a.per_scene, jobs=a.jobs
    )
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
