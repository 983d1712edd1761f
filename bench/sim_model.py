"""Accuracy of the bundled simulator model on renders it never saw in training.

Held-out set: random scenes from seeds the recipe never uses (training uses 0..N, validation
1,000,000+; this bench 2,000,000+), plus the scenario files' own layouts under new seeds, at
their native resolutions. Scored with pycocotools through the live pre-processing and decoding
(score >= 0.001, class-aware NMS at IoU 0.6). Objects less than 25 % visible, or under 3 px, are
'ignore' regions: neither required nor false positives. Beside it, in the same run, a COCO
yolo11n (when the shared assets are present) on the classes both know, as the reference.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.real_recall import real_recall
from engine.config import DetectorConfig
from engine.config.detector import TilingConfig
from engine.detect import OnnxDetector
from engine.detect.inference import SourceInference
from engine.sim import Simulation, load_scenario
from engine.sim.randomize import random_scenario
from engine.sim.render import FrameTruth
from engine.sim.scenario import DroneSensor
from engine.types import Frame
from tests.support.assets import assets_dir

__all__ = ["Heldout", "add_arguments", "heldout_images", "parse_tiles", "run", "score"]

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "models" / "lookout_sim_yolo11n.onnx"
HELDOUT_SEED = 2_000_000
CLASSES = ("person", "car", "truck", "debris")
DRONE_TILES = "2x2"  # tiles plus the whole frame: people from high drones need them


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `lookout bench sim-model`."""
    p.add_argument("--model", type=Path, default=BUNDLED, help="ONNX model (default: bundled)")
    p.add_argument("--scenes", type=int, default=24, help="random held-out scenes")
    p.add_argument("--per-scene", type=int, default=5, help="frames per scene")
    p.add_argument("--reference", type=Path, help="COCO model to compare (default: shared yolo11n)")
    p.add_argument("--imgsz", type=int, help="input size (default: the model's own)")
    p.add_argument(
        "--drone-tiles",
        default=DRONE_TILES,
        help="drone views: COLSxROWS tiles plus the whole frame, as a drone source's `tiling` "
        "detects them ('none': whole frame only)",
    )
    p.add_argument("--real-frames", type=int, default=40, help="frames sampled per shared clip")
    p.add_argument(
        "--baseline", type=Path, help="another model of ours to score beside it (a previous one)"
    )


@dataclass(frozen=True, slots=True)
class Heldout:
    """One held-out frame: BGR pixels, its truths, and the view (drone or fixed)."""

    image: npt.NDArray[np.uint8]
    truths: list[FrameTruth]
    drone: bool


def heldout_images(scenes: int, per_scene: int) -> list[Heldout]:
    """Held-out frames: random scenes plus the scenario files."""
    sims = [Simulation(random_scenario(HELDOUT_SEED + i)) for i in range(scenes)]
    for path in sorted((REPO / "configs" / "scenarios").glob("*.yaml")):
        sims.append(Simulation(load_scenario(path), seed=HELDOUT_SEED + 777))
    out = []
    for k, sim in enumerate(sims):
        rng = np.random.default_rng(HELDOUT_SEED + k)
        drone = isinstance(sim.scenario.sensor, DroneSensor)
        for t in np.sort(rng.uniform(1, sim.scenario.duration_s - 1, per_scene)):
            image, truths, _ = sim.frame(int(t * sim.scenario.fps))
            out.append(Heldout(image, truths, drone))
    return out


def parse_tiles(text: str) -> TilingConfig | None:
    """'3x2' -> 3 columns, 2 rows of tiles plus the whole frame; 'none' -> None."""
    if text == "none":
        return None
    cols, rows = (int(v) for v in text.lower().split("x"))
    return TilingConfig(cols=cols, rows=rows, full_frame=True)


def score(
    model: Path,
    data: list[Heldout],
    classes: tuple[str, ...],
    imgsz: int | None = None,
    drone_tiles: TilingConfig | None = None,
) -> dict[str, Any]:
    """mAP50 (overall, per class, per view), mAP50-95 and speed of `model` on `classes`; drone
    views are detected on `drone_tiles` (and the whole frame) when given."""
    from pycocotools.coco import COCO

    cfg = DetectorConfig(model=model, conf=0.001, iou=0.6, max_det=300, imgsz=imgsz)
    det = OnnxDetector(cfg)
    whole = SourceInference(det.detect_images, None, None, [], cfg.max_det)
    tiled = SourceInference(det.detect_images, None, drone_tiles, [], cfg.max_det)
    names = [n for n in classes if n in det.class_names]
    cat = {n: i + 1 for i, n in enumerate(names)}
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    elapsed = {"drone": 0.0, "fixed": 0.0}
    for img_id, sample in enumerate(data, start=1):
        image, truths = sample.image, sample.truths
        h, w = image.shape[:2]
        images.append({"id": img_id, "width": w, "height": h})
        for t in truths:
            if t.cls not in cat:
                continue
            x1, y1, x2, y2 = t.box_xyxy
            small = (x2 - x1) < 3 or (y2 - y1) < 3
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img_id,
                    "category_id": cat[t.cls],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(t.visibility < 0.25 or small),
                }
            )
        view = "drone" if sample.drone else "fixed"
        t0 = time.perf_counter()
        d = (tiled if sample.drone else whole).detections(Frame("bench", img_id, 0.0, 0, image))
        elapsed[view] += time.perf_counter() - t0
        for (x1, y1, x2, y2), s, c in zip(
            d.xyxy.tolist(), d.score.tolist(), d.class_id.tolist(), strict=True
        ):
            name = det.class_names[c]
            if name in cat:
                results.append(
                    {
                        "image_id": img_id,
                        "category_id": cat[name],
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": s,
                    }
                )
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": i, "name": n} for n, i in cat.items()],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(results) if results else COCO()
    overall = _evaluate(gt, dt, names, None)
    views = {}
    for view in ("drone", "fixed"):
        ids = [i for i, d in enumerate(data, start=1) if d.drone == (view == "drone")]
        if ids:
            views[view] = {
                "images": len(ids),
                **_evaluate(gt, dt, names, ids),
                "ms_per_image": 1000 * elapsed[view] / len(ids),
            }
    return {
        "model": model.name,
        "classes": names,
        "images": len(data),
        **overall,
        "views": views,
        "ms_per_image": 1000 * sum(elapsed.values()) / max(1, len(data)),
    }


def _evaluate(gt: Any, dt: Any, names: list[str], image_ids: list[int] | None) -> dict[str, Any]:
    """pycocotools' mAP50 per class (their mean: map50) and mAP50-95, over `image_ids` (all)."""
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, dt, "bbox")
        if image_ids is not None:
            ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # [iou, recall, class, area, maxdet]
    per_class = {}
    for k, n in enumerate(names):
        p = prec[0, :, k, 0, 2]
        if (p > -1).any():  # a class with no truth in these images has no AP
            per_class[n] = float(p[p > -1].mean())
    return {
        "map50": float(np.mean(list(per_class.values()))) if per_class else 0.0,
        "map50_95": float(ev.stats[0]),
        "per_class_map50": per_class,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Score the model (and the reference on the shared classes)."""
    data = heldout_images(args.scenes, args.per_scene)
    tiles = parse_tiles(args.drone_tiles)
    ours = score(args.model, data, CLASSES, args.imgsz, tiles)
    reference = args.reference or (assets_dir() / "models" / "yolo11n_coco_640_dynbatch.onnx")
    ref = score(reference, data, CLASSES, None, tiles) if reference.is_file() else None
    clips = sorted((assets_dir() / "footage").glob("*.mp4")) + sorted(
        (assets_dir() / "footage").glob("*.gif")
    )
    real = (
        real_recall(args.model, reference, clips, args.real_frames, args.imgsz)
        if reference.is_file() and clips
        else None
    )
    base = score(args.baseline, data, CLASSES, args.imgsz, tiles) if args.baseline else None
    shared = [c for c in (ref or {}).get("classes", []) if c in ours["per_class_map50"]]
    ours_shared = float(np.mean([ours["per_class_map50"][c] for c in shared])) if shared else None
    ref_shared = ref["map50"] if ref else None
    table = [
        {
            "class": c,
            "map50": ours["per_class_map50"][c],
            "reference_map50": (ref or {}).get("per_class_map50", {}).get(c),
            "baseline_map50": (base or {}).get("per_class_map50", {}).get(c),
        }
        for c in ours["classes"]
    ]
    for view, r in ours["views"].items():
        table.append(
            {
                "class": f"all, {view} views",
                "map50": r["map50"],
                "reference_map50": (ref or {}).get("views", {}).get(view, {}).get("map50"),
                "baseline_map50": (base or {}).get("views", {}).get(view, {}).get("map50"),
            }
        )
    table.append(
        {
            "class": "all",
            "map50": ours["map50"],
            "reference_map50": ref_shared,
            "baseline_map50": base["map50"] if base else None,
        }
    )
    summary = {
        "model": ours["model"],
        "imgsz": args.imgsz,
        "images": ours["images"],
        "map50": ours["map50"],
        "map50_95": ours["map50_95"],
        **{f"map50_{c}": v for c, v in ours["per_class_map50"].items()},
        "reference_model": ref["model"] if ref else None,
        "reference_map50_shared_classes": ref_shared,
        "map50_shared_classes": ours_shared,
        "ratio_map50_shared_classes": (
            ours_shared / ref_shared if ours_shared and ref_shared else None
        ),
        **{f"map50_{v}": r["map50"] for v, r in ours["views"].items()},
        **{
            f"map50_{v}_{c}": m
            for v, r in ours["views"].items()
            for c, m in r["per_class_map50"].items()
        },
        "drone_tiles": args.drone_tiles,
        "ms_per_image": ours["ms_per_image"],
        **{f"ms_per_image_{v}": r["ms_per_image"] for v, r in ours["views"].items()},
        "real_recall_vs_coco": real["recall"] if real else None,
        **(
            {
                "baseline_model": base["model"],
                "baseline_map50": base["map50"],
                **{f"baseline_map50_{v}": r["map50"] for v, r in base["views"].items()},
                "baseline_ms_per_image": base["ms_per_image"],
                "ratio_ms_per_image_vs_baseline": ours["ms_per_image"] / base["ms_per_image"],
            }
            if base
            else {}
        ),
        **{f"real_recall_{g}": r for g, r in (real or {}).get("recall_per_group", {}).items()},
    }
    return {
        "suite": "sim-model",
        "summary": summary,
        "ours": ours,
        "reference": ref,
        "real": real,
        "baseline": base,
        "table": table,
    }
