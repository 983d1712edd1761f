"""The detector's section: the ONNX model and how it runs, its input layout, and what each
source adds in front of it (motion gating, tiling)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from engine.config.base import ConfigModel

__all__ = [
    "PROVIDER_ALIASES",
    "DetectorConfig",
    "MotionConfig",
    "PreprocessOverride",
    "TilingConfig",
]


class MotionConfig(ConfigModel):
    """Motion gating: skip the detector while nothing moves (the last detections stand)."""

    pixel_delta: float = Field(
        15.0, gt=0, le=255, description="Grey-level change from the background that is motion."
    )
    min_fraction: float = Field(
        0.001, ge=0, le=1, description="Fraction of sampled pixels that must move."
    )
    step_px: int = Field(8, ge=1, le=64, description="Sample one pixel in this many, each way.")
    adapt: float = Field(0.05, gt=0, le=1, description="Background update rate per frame.")
    hold_s: float = Field(1.0, ge=0, le=60, description="Keep detecting this long after motion.")
    force_every_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Detect at least this often (parked vehicles, debris piles stay observed).",
    )
    zones_only: bool = Field(False, description="Only motion inside this source's zones counts.")


class TilingConfig(ConfigModel):
    """Tiled inference for small objects in large frames: overlapping tiles, merged results."""

    cols: int = Field(2, ge=1, le=8, description="Tiles across.")
    rows: int = Field(2, ge=1, le=8, description="Tiles down.")
    overlap: float = Field(0.2, ge=0, lt=0.9, description="Overlap between neighbouring tiles.")
    full_frame: bool = Field(True, description="Also detect on the whole frame (large objects).")


class PreprocessOverride(ConfigModel):
    """How the model wants its input, where its metadata does not say (None: family default)."""

    channel_order: Literal["rgb", "bgr"] | None = Field(None, description="Input channel order.")
    scale_to_unit: bool | None = Field(
        None, description="Divide pixel values by 255 (True) or feed 0..255 (False)."
    )
    pad: Literal["center", "top_left"] | None = Field(
        None, description="Where the letterboxed image sits inside the padded input."
    )


# Short names of onnxruntime's execution providers, as users write them in configs.
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


class DetectorConfig(ConfigModel):
    """An ONNX object detector run with onnxruntime."""

    type: Literal["onnx"] = Field("onnx", description="The only kind: onnxruntime.")
    model: Path = Field(description="ONNX model file.")
    family: Literal["auto", "ultralytics", "yolox"] = Field(
        "auto",
        description="Output layout. 'auto' reads Ultralytics metadata, or recognises a YOLOX raw "
        "grid from the output shape; anything else is refused.",
    )
    imgsz: int | None = Field(
        None,
        ge=32,
        le=4096,
        description="Input size for models with dynamic spatial axes (default: from metadata).",
    )
    conf: float = Field(0.25, ge=0.0, le=1.0, description="Minimum score to keep a detection.")
    iou: float = Field(
        0.45, gt=0.0, le=1.0, description="IoU threshold of non-maximum suppression."
    )
    max_det: int = Field(300, ge=1, le=10000, description="At most this many boxes per frame.")
    agnostic_nms: bool = Field(False, description="Suppress overlaps across classes too.")
    class_names: list[str] | None = Field(
        None, description="Class names when the model carries none (YOLOX); index = class id."
    )
    threads: int = Field(
        0, ge=0, le=256, description="onnxruntime intra-op threads (0: onnxruntime decides)."
    )
    spin: bool = Field(
        False,
        description="Let onnxruntime's threads spin between runs: slightly lower latency on an "
        "idle box, but they burn CPU that decoding and the other streams need (measured: one "
        "stream 52 % CPU spinning, 16 % not).",
    )
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        min_length=1,
        description="onnxruntime execution providers in order of preference: tensorrt, cuda, "
        "openvino, cpu (or onnxruntime's own names). Those not available on this machine are "
        "skipped, and the CPU is the last resort; the log says which one runs.",
    )
    fp16: bool = Field(
        True, description="TensorRT builds fp16 engines (CUDA/CPU run the model's own precision)."
    )
    engine_cache_dir: Path | None = Field(
        None,
        description="TensorRT engine and timing cache (default: $LOOKOUT_STATE_DIR/trt-cache); "
        "engines are built once per model, precision and shape profile, then reused.",
    )
    device_id: int = Field(0, ge=0, le=64, description="GPU index for CUDA and TensorRT.")
    openvino_device: str = Field(
        "CPU", pattern=r"^[A-Z]+(\.[0-9]+)?$", description="OpenVINO device: CPU, GPU, NPU, GPU.1."
    )
    io_binding: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Keep input and output tensors on the device with onnxruntime IO binding "
        "(auto: on for CUDA and TensorRT).",
    )
    warmup_runs: int = Field(
        1, ge=0, le=100, description="Dummy inferences at start, so the first frame is not slow."
    )

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, v: list[str]) -> list[str]:
        out = []
        for name in v:
            full = PROVIDER_ALIASES.get(name.lower(), name)
            if not full.endswith("ExecutionProvider"):
                known = ", ".join(PROVIDER_ALIASES)
                raise ValueError(
                    f"unknown execution provider {name!r}: use one of {known}, or "
                    "onnxruntime's own name (…ExecutionProvider)"
                )
            if full not in out:
                out.append(full)
        return out

    batch_max: int = Field(
        1,
        ge=1,
        le=64,
        description="Frames per inference call (dynamic-batch models): of different sources, "
        "and of one source when several of its frames are already waiting.",
    )
    batch_wait_ms: float = Field(
        5.0, ge=0, le=1000, description="How long a frame waits for others to batch with."
    )
    input: PreprocessOverride = Field(
        default_factory=PreprocessOverride, description="Input layout overrides."
    )
