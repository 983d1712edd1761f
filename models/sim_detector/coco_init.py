"""Start from COCO: YOLO11n's trained weights, taken from its ONNX export, as a PyTorch model.

An Ultralytics ONNX export is the fused model: every Conv+BatchNorm pair became one convolution
with a bias, and its initializers keep the PyTorch names (`model.0.conv.weight`,
`model.0.conv.bias`, ..., `model.23.dfl.conv.weight`). They map onto `yolo11n.yaml` with the
batch norms put back. A batch norm put back as the identity reproduces the export exactly in
eval mode, but in train mode it normalises by the batch's own statistics, which would wreck the
features at the first step; so each one is calibrated on real images: with the channel mean `m`
and variance `v` its input has on them, `running_mean = m`, `running_var = v`,
`weight = sqrt(v + eps)`, `bias = b + m`. In eval mode that is still exactly `x + b`; in train
mode, on images like those, about the same.

The last class convolution of each head level is made for our classes: a class that COCO has
(person, car, truck) starts from COCO's row for it, the others from the Ultralytics default
prior; the rest of the head (80 classes wide) carries over whole.

Runs in the Ultralytics environment (`make ultralytics-env`); the engine never needs it.

    python -m models.sim_detector.coco_init --onnx ../shared/assets/models/yolo11n_coco_320.onnx \\
        --classes person,car,truck,debris --calibrate ../shared/assets/eval/coco128/images \\
        -o runs/coco_init.pt
    python -m models.sim_detector.coco_init --onnx ... --run INPUTS.npy OUTPUTS.npy  # the check
"""

from __future__ import annotations

import argparse
import ast
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["calibrate_batchnorm", "coco_names", "onnx_weights", "rebuild", "save_checkpoint"]

# our class -> the COCO class whose trained row it starts from
COCO_SAME = {"person": "person", "car": "car", "truck": "truck"}
HEAD = 23  # the Detect module's index in yolo11n.yaml


def onnx_weights(path: Path) -> dict[str, npt.NDArray[np.float32]]:
    """The export's initializers that are model parameters, by name."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return {
        i.name: numpy_helper.to_array(i).astype(np.float32)
        for i in model.graph.initializer
        if i.name.startswith("model.")
    }


def coco_names(path: Path) -> list[str]:
    """The class names the export carries in its metadata (Ultralytics writes a dict repr)."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    if "names" not in meta:
        raise ValueError(f"{path}: no class names in its metadata (not an Ultralytics export?)")
    names = ast.literal_eval(meta["names"])
    return [names[k] for k in sorted(names)]


def rebuild(
    onnx_path: Path, classes: Sequence[str] | None = None, arch: str = "yolo11n.yaml"
) -> Any:
    """The export's weights in a trainable `DetectionModel` (batch norms as the identity; see
    `calibrate_batchnorm`), with the class layers for `classes` (None: the export's own).

    The head keeps the export's width: its class branch is as wide as 80 classes make it
    (`Detect` sizes it by the class count), so all of COCO's trained head carries over and only
    the last convolution of each level is made for our classes. Fine-tuning must train this
    model object as it is (Ultralytics' own `get_model` would build the class branch again at
    the width our class count gives, dropping those weights).

    Raises:
        ValueError: a weight the architecture does not have, or one of it the export lacks.
    """
    import torch
    from ultralytics.nn.tasks import DetectionModel

    weights = onnx_weights(onnx_path)
    source_names = coco_names(onnx_path)
    model = DetectionModel(arch, nc=len(source_names), verbose=False)
    state = model.state_dict()
    new: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        src, fill = _source_of(key)
        if src not in weights:
            raise ValueError(f"{onnx_path}: no weight {src} for {key}")
        used.add(src)
        w = torch.from_numpy(weights[src])
        if fill == "ones":
            w = torch.ones_like(value)
        elif fill == "zeros":
            w = torch.zeros_like(value)
        elif fill == "unit_var":  # var + eps = 1: the identity
            w = torch.full_like(value, 1.0 - _eps(model, key))
        if w.shape != value.shape:
            raise ValueError(
                f"{key}: the export has {tuple(w.shape)}, the model {tuple(value.shape)}"
            )
        new[key] = w
    left = sorted(set(weights) - used)
    if left:
        raise ValueError(f"{onnx_path}: weights the architecture has no place for: {left[:5]}")
    model.load_state_dict(new, strict=False)
    names = list(classes) if classes is not None else source_names
    if names != source_names:
        _retarget(model, names, source_names)
    model.names = dict(enumerate(names))
    return model.eval()


def _source_of(key: str) -> tuple[str, str | None]:
    """The export's weight for a model state key, and how a batch-norm entry is filled."""
    if ".bn." in key:
        conv = key.split(".bn.")[0] + ".conv"
        kind = key.rsplit(".", 1)[1]
        if kind == "weight":
            return conv + ".weight", "ones"
        if kind == "bias":
            return conv + ".bias", None
        if kind == "running_mean":
            return conv + ".weight", "zeros"
        return conv + ".weight", "unit_var"
    return key, None


def _eps(model: Any, key: str) -> float:
    module = model.get_submodule(key.rsplit(".", 1)[0])
    return float(module.eps)


def _retarget(model: Any, names: list[str], source_names: list[str]) -> None:
    """The last class convolution of each level made for `names`: COCO's row where a class
    maps to one (COCO_SAME), else Ultralytics' prior (about 0.01 objects per class and cell)
    with zero weights, so that a new class starts at its prior everywhere."""
    import torch

    detect = model.model[HEAD]
    for level, branch in enumerate(detect.cv3):
        old = branch[2]
        conv = torch.nn.Conv2d(old.in_channels, len(names), 1)
        with torch.no_grad():
            stride = float(detect.stride[level])
            conv.weight.zero_()  # a new class starts at the prior, whatever the features
            conv.bias.fill_(math.log(5 / len(names) / (640 / stride) ** 2))
            for k, name in enumerate(names):
                coco_name = COCO_SAME.get(name)
                if coco_name is not None and coco_name in source_names:
                    j = source_names.index(coco_name)
                    conv.weight[k] = old.weight[j]
                    conv.bias[k] = old.bias[j]
        branch[2] = conv
    detect.nc = len(names)
    detect.no = detect.nc + detect.reg_max * 4
    model.nc = len(names)
    model.yaml["nc"] = len(names)


def calibrate_batchnorm(model: Any, images: Sequence[npt.NDArray[np.float32]]) -> None:
    """Give every batch norm (still the identity) the statistics its input has on `images`
    (preprocessed [3, H, W] arrays), keeping eval-mode outputs exactly as they are."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    sums: dict[int, list[Any]] = {}

    def hook(module: Any, inputs: tuple[Any, ...]) -> None:
        x = inputs[0].detach().double()
        acc = sums.setdefault(id(module), [0.0, 0.0, 0])
        acc[0] = acc[0] + x.sum(dim=(0, 2, 3))
        acc[1] = acc[1] + (x * x).sum(dim=(0, 2, 3))
        acc[2] += x.shape[0] * x.shape[2] * x.shape[3]

    handles = [bn.register_forward_pre_hook(hook) for bn in bns]
    model.eval()
    with torch.no_grad():
        for image in images:
            model(torch.from_numpy(image)[None])
    for h in handles:
        h.remove()
    with torch.no_grad():
        for bn in bns:
            s, s2, n = sums[id(bn)]
            mean = s / n
            var = (s2 / n - mean * mean).clamp(min=0)
            bias = bn.bias.double()  # the fused convolution's bias
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.copy_((bias + mean).float())


def letterbox(path: Path, size: int) -> npt.NDArray[np.float32]:
    """An image file as the export takes it: RGB / 255, letterboxed to `size`, padded 114."""
    import cv2

    bgr = cv2.imread(str(path))
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    h, w = bgr.shape[:2]
    r = min(size / h, size / w)
    nh, nw = round(h * r), round(w * r)
    canvas = np.full((size, size, 3), 114, np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = cv2.resize(bgr, (nw, nh))
    chw = np.ascontiguousarray(canvas[:, :, ::-1].transpose(2, 0, 1), np.float32)
    return (chw / np.float32(255)).astype(np.float32)


def save_checkpoint(model: Any, dst: Path) -> None:
    """A checkpoint `YOLO(dst)` loads and trains from (no optimizer state, no history)."""
    import torch

    dst.parent.mkdir(parents=True, exist_ok=True)
    model.args = {}
    torch.save({"model": model, "epoch": -1, "train_args": {}, "date": None}, dst)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--onnx", type=Path, required=True, help="Ultralytics YOLO11n ONNX export")
    p.add_argument("--classes", help="our classes, comma-separated (default: the export's)")
    p.add_argument("--calibrate", type=Path, help="folder of real images for the batch norms")
    p.add_argument("--calibrate-n", type=int, default=64, help="images used to calibrate")
    p.add_argument("--imgsz", type=int, default=320, help="input size for calibration")
    p.add_argument("-o", "--out", type=Path, help="checkpoint to write")
    p.add_argument(
        "--run",
        nargs=2,
        type=Path,
        metavar=("INPUTS", "OUTPUTS"),
        help="run the rebuilt model on INPUTS.npy [N,3,H,W] and save its outputs to OUTPUTS.npy",
    )
    a = p.parse_args()
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    classes = a.classes.split(",") if a.classes else None
    model = rebuild(a.onnx, classes)
    if a.calibrate is not None:
        files = sorted(f for f in a.calibrate.iterdir() if f.suffix.lower() in (".jpg", ".png"))
        calibrate_batchnorm(model, [letterbox(f, a.imgsz) for f in files[: a.calibrate_n]])
    if a.run is not None:
        inputs = np.load(a.run[0])
        with torch.no_grad():
            out = model(torch.from_numpy(inputs))
        y = out[0] if isinstance(out, tuple | list) else out
        np.save(a.run[1], y.numpy())
    if a.out is not None:
        save_checkpoint(model, a.out)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
