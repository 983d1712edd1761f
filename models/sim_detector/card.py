"""Write the model card of the bundled detector from the ONNX file and the held-out bench.

    python -m models.sim_detector.card --model models/lookout_sim_yolo11n.onnx \\
        --bench runs/sim_model_bench.json --train-summary runs/sim_detector/train_summary.json \\
        --dataset-summary runs/sim_dataset/summary.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import yaml

from engine.config import DetectorConfig
from engine.detect import OnnxDetector


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--bench", type=Path, required=True, help="lookout bench sim-model --json")
    p.add_argument("--train-summary", type=Path, help="train_summary.json written by train.py")
    p.add_argument(
        "--dataset-summary",
        type=Path,
        required=True,
        help="summary.json written by models.sim_detector.dataset",
    )
    p.add_argument("--epochs", type=int, help="epochs completed (if no summary)")
    p.add_argument("--train-minutes", type=float, help="training time (if no summary)")
    p.add_argument("--status", help="a line on top of the card (an interim model says so)")
    a = p.parse_args()
    imgsz = 480
    init = None
    if a.train_summary:
        summary = json.loads(a.train_summary.read_text())
        a.epochs, a.train_minutes = summary["epochs"], summary["train_minutes"]
        imgsz = summary["imgsz"]
        init = summary.get("init")
    data = json.loads(a.dataset_summary.read_text())
    if a.epochs is None or a.train_minutes is None:
        p.error("give --train-summary, or --epochs and --train-minutes")
    info = OnnxDetector(DetectorConfig(model=a.model)).info
    bench = json.loads(a.bench.read_text())["summary"]
    card = {
        "name": a.model.stem,
        "file": a.model.name,
        "sha256": hashlib.sha256(a.model.read_bytes()).hexdigest(),
        "size_bytes": a.model.stat().st_size,
        "family": info.family,
        "architecture": (
            f"YOLO11n detect, fine-tuned from COCO YOLO11n ({init}: its weights taken from the "
            "ONNX export, models/sim_detector/coco_init.py)"
            if init
            else "YOLO11 detect, width multiple 0.125 (narrower than YOLO11n), from scratch"
        ),
        "input": {
            "size": list(info.input_hw),
            "batch": "dynamic" if info.batch_dynamic else 1,
            "spatial": "dynamic" if info.spatial_dynamic else "fixed",
            "channel_order": info.layout.channel_order,
            "scale": 255 if info.layout.scale_to_unit else 1,
            "pad": info.layout.pad,
            "pad_value": 114,
        },
        "classes": list(info.class_names),
        "reproduce": "make model",
        "data": {
            "source": "engine/sim/randomize.py scenes rendered by the simulator, plus real images",
            **{
                split: f"{d['scenes']} x {d['frames_per_scene']} frames, 960x540 (drone frames "
                f"also as a 480x480 full-resolution crop): {d['images']} images, boxes {d['boxes']}"
                for split, d in ((k, data[k]) for k in ("train", "val"))
            },
            **(
                {
                    "real": f"{data['real']['source']}: {data['real']['images']} images with "
                    f"their COCO boxes of person, car, truck {data['real']['boxes']}"
                }
                if data.get("real", {}).get("images")
                else {}
            ),
            "randomised": [
                "layouts",
                "surfaces",
                "time of day: day, dusk, night",
                "rain (streaks, washed-out contrast)",
                "fixed cameras: street 4-12 m, pole 10-22 m, station hall 2.5-5 m",
                "drones 22-90 m, nadir or oblique (gimbal -80 to -35 deg), moving",
                "noise",
                "blur",
                "JPEG",
                "incidents: dumping (a frame while the truck stands and tips), crowds, loitering",
                "trucks: box, tipper or flatbed bodies, cab and body colours apart",
                "debris piles of varied soil and waste",
                "bushes, trees and bins beside piles (look-alikes)",
            ],
            "labels": "objects >= 25% visible and >= 3 px",
        },
        "training": {
            "epochs": a.epochs,
            "minutes": round(a.train_minutes, 1),
            "imgsz": imgsz,
            "hardware": "2-core CPU, torch 2 threads",
        },
        "heldout_metrics": {
            k: (round(v, 4) if isinstance(v, float) else v) for k, v in bench.items()
        },
        "source": "trained by Lookout's own recipe (models/sim_detector) on simulator renders"
        + (" and COCO128, starting from Ultralytics' COCO YOLO11n weights" if init else " only"),
        "heldout_set": "lookout bench sim-model: 24 random scenes (seeds 2000000+) and the six "
        "scenario files under new seeds, 5 frames each; drone views detected on 2x2 tiles plus "
        "the whole frame (a drone source's `tiling`); real_recall_vs_coco on the shared clips",
        "license": (
            "AGPL-3.0, inherited from the initial weights (Ultralytics YOLO11n, AGPL-3.0) and the "
            "training code (Ultralytics)"
            if init
            else "AGPL-3.0 (trained with Ultralytics YOLO11; the weights are Lookout's own)"
        ),
    }
    out = a.model.with_suffix(".yaml")
    out.write_text(
        "# Model card (written by models/sim_detector/card.py)\n"
        + (f"# STATUS: {a.status}\n" if a.status else "")
        + yaml.safe_dump(card, sort_keys=False, width=100)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
