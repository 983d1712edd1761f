"""What an ONNX detector is: its output family, input size and layout, class names.

Read from the model's metadata (Ultralytics exports carry `names`, `imgsz`, `stride`, `task`,
`end2end`) and output shapes (a YOLOX raw grid has as many rows as cells at strides 8/16/32),
overridden by the config. A model that fits no supported layout is refused with what was found.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engine.config import DetectorConfig
from engine.detect.coco_names import COCO80
from engine.detect.decoders import yolox_num_anchors
from engine.errors import ModelError
from engine.preprocess import InputLayout

__all__ = ["Family", "ModelInfo", "inspect_model"]

Family = Literal["ultralytics", "ultralytics_end2end", "yolox"]

SUPPORTED = (
    "Lookout decodes: Ultralytics detect exports (output [B, 4+nc, N], metadata 'names'), "
    "Ultralytics end-to-end exports (output [B, K, 6]), and YOLOX raw grids (output [B, N, 5+nc] "
    "with N = grid cells at strides 8/16/32); set detector.family to force one"
)

_DEFAULT_LAYOUT: dict[Family, InputLayout] = {
    "ultralytics": InputLayout("rgb", True, "center"),
    "ultralytics_end2end": InputLayout("rgb", True, "center"),
    "yolox": InputLayout("bgr", False, "top_left"),
}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A detector model as Lookout will run it.

    Attributes:
        family: output layout.
        input_name: name of the image input.
        input_hw: (h, w) the frame is letterboxed to.
        batch_dynamic: the batch axis is dynamic (several frames per run).
        input_dtype: float32 or float16.
        class_names: index = class id.
        layout: channel order, scaling and padding of the input.
        stride: the model's largest stride (for rectangular inputs).
        spatial_dynamic: height and width are dynamic axes: frames are letterboxed to the
            smallest stride-aligned rectangle (16:9 at 640 runs at 384x640, ~40% cheaper).
    """

    family: Family
    input_name: str
    input_hw: tuple[int, int]
    batch_dynamic: bool
    input_dtype: type[np.floating[Any]]
    class_names: tuple[str, ...]
    layout: InputLayout
    stride: int
    spatial_dynamic: bool = False


def _dims(shape: list[Any]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _parse_literal(meta: dict[str, str], key: str) -> Any:
    raw = meta.get(key)
    if raw is None:
        return None
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def inspect_model(session: Any, cfg: DetectorConfig) -> ModelInfo:
    """Decide how to run and decode the model behind an onnxruntime `session`.

    Raises:
        ModelError: the model has no single image input, is not a detector, or its outputs fit
            no supported layout; the message says what was found.
    """
    name = cfg.model.name
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        found = ", ".join(f"{i.name} {_dims(i.shape)}" for i in inputs)
        raise ModelError(f"{name}: expected one image input [B, 3, H, W], found {found}")
    inp = inputs[0]
    if inp.type not in ("tensor(float)", "tensor(float16)"):
        raise ModelError(f"{name}: expected a float32/float16 input, found {inp.type}")
    meta: dict[str, str] = session.get_modelmeta().custom_metadata_map or {}
    task = meta.get("task")
    if task not in (None, "detect"):
        raise ModelError(f"{name}: this is an Ultralytics '{task}' model; Lookout needs 'detect'")

    out_shape = list(outputs[0].shape)
    family = _family(cfg, meta, inp.shape, out_shape, name, outputs)
    input_hw = _input_hw(cfg, meta, inp.shape, name)
    names = _class_names(cfg, meta, family, out_shape, name)
    if family == "yolox":
        n = out_shape[1]
        if isinstance(n, int) and n != yolox_num_anchors(*input_hw):
            raise ModelError(
                f"{name}: YOLOX output has {n} rows but a {input_hw[1]}x{input_hw[0]} input "
                f"gives {yolox_num_anchors(*input_hw)} grid cells; check detector.imgsz"
            )
    default = _DEFAULT_LAYOUT[family]
    over = cfg.input
    layout = InputLayout(
        over.channel_order or default.channel_order,
        default.scale_to_unit if over.scale_to_unit is None else over.scale_to_unit,
        over.pad or default.pad,
    )
    stride = _parse_literal(meta, "stride")
    return ModelInfo(
        family=family,
        input_name=inp.name,
        input_hw=input_hw,
        batch_dynamic=not isinstance(inp.shape[0], int),
        input_dtype=np.float16 if inp.type == "tensor(float16)" else np.float32,
        class_names=names,
        layout=layout,
        stride=int(stride) if isinstance(stride, int) else 32,
        # YOLOX decodes a grid fixed by the input size: it keeps its square input
        spatial_dynamic=family != "yolox"
        and not (isinstance(inp.shape[2], int) and isinstance(inp.shape[3], int)),
    )


def _family(
    cfg: DetectorConfig,
    meta: dict[str, str],
    in_shape: list[Any],
    out_shape: list[Any],
    name: str,
    outputs: list[Any],
) -> Family:
    found = ", ".join(f"{o.name} {_dims(o.shape)}" for o in outputs)
    if len(out_shape) != 3:
        raise ModelError(f"{name}: output layout not supported: found {found}. {SUPPORTED}")
    end2end = str(meta.get("end2end", "False")).lower() == "true"
    if cfg.family == "ultralytics" or (cfg.family == "auto" and "names" in meta):
        if end2end or out_shape[2] == 6:
            return "ultralytics_end2end"
        if isinstance(out_shape[1], int) and out_shape[1] < 5:
            raise ModelError(f"{name}: output layout not supported: found {found}. {SUPPORTED}")
        return "ultralytics"
    if cfg.family == "yolox":
        return "yolox"
    # auto, no Ultralytics metadata: a YOLOX grid is recognisable from its row count
    h, w = in_shape[2], in_shape[3]
    n, c = out_shape[1], out_shape[2]
    if all(isinstance(d, int) for d in (h, w, n, c)) and n == yolox_num_anchors(h, w) and c > 5:
        return "yolox"
    raise ModelError(f"{name}: output layout not supported: found {found}. {SUPPORTED}")


def _input_hw(
    cfg: DetectorConfig, meta: dict[str, str], in_shape: list[Any], name: str
) -> tuple[int, int]:
    h, w = in_shape[2], in_shape[3]
    if isinstance(h, int) and isinstance(w, int):
        if cfg.imgsz is not None and (h, w) != (cfg.imgsz, cfg.imgsz):
            raise ModelError(
                f"{name}: input is fixed at {w}x{h}; detector.imgsz {cfg.imgsz} cannot apply"
            )
        return (h, w)
    if cfg.imgsz is not None:
        return (cfg.imgsz, cfg.imgsz)
    imgsz = _parse_literal(meta, "imgsz")
    if isinstance(imgsz, list | tuple) and len(imgsz) == 2:
        return (int(imgsz[0]), int(imgsz[1]))
    if isinstance(imgsz, int):
        return (imgsz, imgsz)
    raise ModelError(f"{name}: input size is dynamic and not in the metadata: set detector.imgsz")


def _class_names(
    cfg: DetectorConfig, meta: dict[str, str], family: Family, out_shape: list[Any], name: str
) -> tuple[str, ...]:
    nc: int | None = None
    if family == "ultralytics" and isinstance(out_shape[1], int):
        nc = out_shape[1] - 4
    elif family == "yolox" and isinstance(out_shape[2], int):
        nc = out_shape[2] - 5
    if cfg.class_names is not None:
        if nc is not None and len(cfg.class_names) != nc:
            raise ModelError(
                f"{name}: model has {nc} classes but detector.class_names lists "
                f"{len(cfg.class_names)}"
            )
        return tuple(cfg.class_names)
    names = _parse_literal(meta, "names")
    if isinstance(names, dict):
        return tuple(str(names[k]) for k in sorted(names))
    if isinstance(names, list):
        return tuple(str(n) for n in names)
    if nc == len(COCO80):
        return COCO80
    if nc is None:
        raise ModelError(f"{name}: class count unknown; list them in detector.class_names")
    raise ModelError(f"{name}: model has {nc} classes and no names; set detector.class_names")
