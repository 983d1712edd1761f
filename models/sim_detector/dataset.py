"""Render a YOLO dataset from randomised scenarios (no torch needed).

python -m models.sim_detector.dataset --out DIR --train 150 --val 25 --per-scene 8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from engine.sim import Simulation
from engine.sim.randomize import random_scenario
from engine.sim.writer import write_yolo_sample

CLASSES: tuple[str, ...] = ("person", "car", "truck", "debris")
VAL_SEED_BASE = 1_000_000  # validation scenes never share a seed (or layout) with training


def render_split(root: Path, seeds: range, per_scene: int) -> tuple[int, int]:
    """Render `per_scene` random frames of each seed's scenario; returns (images, labels)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    images = labels = 0
    for seed in seeds:
        sim = Simulation(random_scenario(seed))
        rng = np.random.default_rng(seed + 7)
        times = np.sort(rng.uniform(1.0, sim.scenario.duration_s - 1.0, per_scene))
        for k, t in enumerate(times):
            index = int(t * sim.scenario.fps)
            image, truths, _ = sim.frame(index)
            labels += write_yolo_sample(root, f"s{seed}_{k}", image, truths, CLASSES)
            images += 1
    return images, labels


def write_data_yaml(root: Path) -> Path:
    """The dataset description ultralytics reads."""
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASSES))
    path = root / "data.yaml"
    path.write_text(f"path: {root.resolve()}\ntrain: train/images\nval: val/images\n"
                    f"names:\n{names}\n")  # fmt: skip
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train", type=int, default=150, help="training scenes")
    p.add_argument("--val", type=int, default=25, help="validation scenes")
    p.add_argument("--per-scene", type=int, default=8)
    a = p.parse_args()
    t0 = time.monotonic()
    tr = render_split(a.out / "train", range(a.train), a.per_scene)
    va = render_split(a.out / "val", range(VAL_SEED_BASE, VAL_SEED_BASE + a.val), a.per_scene)
    write_data_yaml(a.out)
    print(f"train {tr[0]} images / {tr[1]} boxes, val {va[0]} / {va[1]}, "
          f"{time.monotonic() - t0:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
