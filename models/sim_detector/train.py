"""Train YOLO11 on a rendered dataset, on the CPU, and export ONNX: from scratch, or (`--init`)
fine-tuned from COCO YOLO11n's weights taken from its ONNX export (coco_init.py).

Runs in an environment with the `export` extra (ultralytics, torch); the engine never needs it.

    python -m models.sim_detector.train --data DIR/data.yaml --imgsz 480 --epochs 40 --out models/
    python -m models.sim_detector.train --data DIR/data.yaml --init yolo11n_coco_320.onnx \
        --calibrate coco128/images --out models/
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from models.sim_detector.compact import compact


def _architecture(width: float, runs: Path) -> Path:
    """YOLO11 with a narrower width multiple, written from the installed ultralytics config."""
    import yaml
    from ultralytics.nn.tasks import yaml_model_load

    cfg = yaml_model_load("yolo11n.yaml")
    cfg["scales"] = {"n": [0.50, width, 1024]}
    cfg.pop("scale", None)
    cfg.pop("yaml_file", None)
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / "yolo11n-lookout.yaml"  # the 'yolo11n' stem selects scale 'n'
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _offline_font(config_dir: Path) -> None:
    """Ultralytics fetches Arial.ttf for its plots unless one is there: use matplotlib's font."""
    import matplotlib

    target = config_dir / "Ultralytics" / "Arial.ttf"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        shutil.copy(font, target)


def coco_start(onnx: Path, data: Path, calibrate: Path | None, imgsz: int, runs: Path) -> Path:
    """A checkpoint of COCO YOLO11n rebuilt for the dataset's classes, batch norms calibrated
    on real images (`calibrate`, COCO128 say); the path of the checkpoint."""
    import yaml

    from models.sim_detector.coco_init import (
        calibrate_batchnorm,
        letterbox,
        rebuild,
        save_checkpoint,
    )

    names = yaml.safe_load(data.read_text())["names"]
    classes = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    model = rebuild(onnx, classes)
    if calibrate is not None:
        files = sorted(f for f in calibrate.iterdir() if f.suffix.lower() in (".jpg", ".png"))
        calibrate_batchnorm(model, [letterbox(f, imgsz) for f in files[:64]])
    path = runs / "coco_start.pt"
    save_checkpoint(model, path)
    return path


def prebuilt_trainer(model: Any) -> type:
    """A detection trainer that trains `model` as it is. Ultralytics' own `get_model` builds a
    new model from the architecture for the dataset's class count and copies the weights whose
    shapes match, which would drop COCO's class branch (its width follows the class count)."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    class PrebuiltTrainer(DetectionTrainer):
        def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> Any:
            if model.nc != self.data["nc"]:
                raise ValueError(f"the start has {model.nc} classes, the data {self.data['nc']}")
            return model

    return PrebuiltTrainer


def portable_checkpoint(src: Path, dst: Path) -> None:
    """Copy the trained weights without this machine's paths or the training history.

    The .pt file ships beside the ONNX file: users fine-tune it or export other layouts
    (`lookout models export`, end-to-end with NMS inside, fp16).
    """
    import torch

    def relative(args: dict[str, object]) -> dict[str, object]:
        return {
            k: Path(v).name if isinstance(v, str) and Path(v).is_absolute() else v
            for k, v in args.items()
        }

    ckpt = torch.load(src, map_location="cpu", weights_only=False)
    ckpt["train_args"] = relative(dict(ckpt.get("train_args") or {}))
    model = ckpt["model"]
    if isinstance(getattr(model, "args", None), dict):
        model.args = relative(model.args)
    for key in ("git", "train_results", "optimizer", "scaler", "updates", "stopper"):
        ckpt.pop(key, None)
    torch.save(ckpt, dst)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--imgsz", type=int, default=480)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--time-h", type=float, default=None, help="stop training after this long")
    p.add_argument("--runs", type=Path, default=Path("runs/sim_detector"))
    p.add_argument("--out", type=Path, required=True, help="where the ONNX file goes")
    p.add_argument("--name", default="lookout_sim_yolo11n")
    p.add_argument(
        "--width",
        type=float,
        default=0.125,
        help="channel width multiple of YOLO11 (n is 0.25); 0.125 keeps it ~3 MB",
    )
    p.add_argument(
        "--init", type=Path, help="start from this Ultralytics YOLO11n ONNX export (COCO weights)"
    )
    p.add_argument("--calibrate", type=Path, help="with --init: real images for the batch norms")
    p.add_argument(
        "--resume-weights",
        type=Path,
        help="go on fine-tuning this checkpoint of ours (a second stage after --init)",
    )
    p.add_argument("--warmup-epochs", type=float, default=3.0, help="learning-rate warm-up")
    p.add_argument("--close-mosaic", type=int, default=10, help="last epochs without mosaic")
    p.add_argument(
        "--fp32", action="store_true", help="store weights as float32 (default: float16, half size)"
    )
    a = p.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    _offline_font(Path(os.environ.setdefault("YOLO_CONFIG_DIR", str(a.runs / "yolo_config"))))
    import torch
    from ultralytics import YOLO

    def threads(_trainer: object) -> None:
        # ultralytics sets one torch thread on the CPU; two are ~1.7x faster on 2 cores
        torch.set_num_threads(a.threads)

    trainer: type | None = None
    if a.resume_weights is not None:  # as it is: its class head is wider than a new one's
        model = YOLO(str(a.resume_weights))
        trainer = prebuilt_trainer(model.model)
    elif a.init is not None:
        model = YOLO(str(coco_start(a.init, a.data, a.calibrate, a.imgsz, a.runs)))
        trainer = prebuilt_trainer(model.model)
    else:
        model = YOLO(str(_architecture(a.width, a.runs)))
    model.add_callback("on_train_start", threads)
    t0 = time.monotonic()
    model.train(
        data=str(a.data),
        imgsz=a.imgsz,
        epochs=a.epochs,
        batch=a.batch,
        device="cpu",
        workers=0,
        project=str(a.runs.resolve()),
        name=a.name,
        exist_ok=True,
        plots=False,
        seed=0,
        deterministic=True,
        amp=False,
        patience=100,
        time=a.time_h,
        close_mosaic=a.close_mosaic,
        warmup_epochs=a.warmup_epochs,
        pretrained=False,
        verbose=False,
        trainer=trainer,
    )
    train_s = time.monotonic() - t0
    epochs = int(getattr(model.trainer, "epoch", -1)) + 1
    best = a.runs.resolve() / a.name / "weights" / "best.pt"
    exported = YOLO(str(best)).export(
        format="onnx", imgsz=a.imgsz, dynamic=True, simplify=True, opset=17
    )
    a.out.mkdir(parents=True, exist_ok=True)
    target = a.out / f"{a.name}.onnx"
    if a.fp32:
        shutil.copy(exported, target)
    else:
        compact(Path(exported), target)
    portable_checkpoint(best, a.out / f"{a.name}.pt")
    summary = {
        "epochs": epochs,
        "train_minutes": round(train_s / 60, 1),
        "imgsz": a.imgsz,
        "width": a.width,
        "threads": a.threads,
        "init": a.init.name if a.init is not None else None,
        "resumed_from": a.resume_weights.name if a.resume_weights is not None else None,
        "weights": "float32" if a.fp32 else "float16 storage, float32 compute",
    }
    (a.runs / "train_summary.json").write_text(json.dumps(summary, indent=1))
    print(
        f"trained {epochs} epochs in {train_s / 60:.1f} min; wrote {target} "
        f"({target.stat().st_size / 1e6:.1f} MB)"
    )


if __name__ == "__main__":
    main()
