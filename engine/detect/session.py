"""onnxruntime sessions: execution providers in order, with fallback, and how inputs are bound.

`open_session(cfg)` keeps the configured providers this onnxruntime build offers, gives each its
options (TensorRT: fp16, engine and timing cache, a batch profile; CUDA and TensorRT: the GPU
index; OpenVINO: the device), falls back to the next provider when one fails to initialise, and
logs one line saying what runs. `make_call` picks how a batch reaches the model: a plain
`session.run`, or IO binding with a device-side input tensor that is updated in place.

Example:
    >>> session, chosen = open_session(DetectorConfig(model=Path("m.onnx")))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from engine.config import DetectorConfig
from engine.errors import ModelError
from engine.state import state_dir

__all__ = [
    "IoBoundCall",
    "ModelCall",
    "PlainCall",
    "make_call",
    "open_session",
    "provider_plan",
]

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
# providers whose tensors live on an NVIDIA GPU: IO binding keeps inputs there
_GPU = (CUDA, TENSORRT)

ProviderSpec = tuple[str, dict[str, str]]


def _shape(dims: Sequence[int]) -> str:
    return "x".join(str(d) for d in dims)


def trt_profile(input_name: str, shape: Sequence[Any], batch_max: int, size: int) -> dict[str, str]:
    """TensorRT optimisation profile for the dynamic axes of an image input [B, 3, H, W].

    Batch 1..batch_max; dynamic H and W from 32 up to `size` (rectangular letterboxes), tuned
    for a full square batch. Empty when every axis is fixed.
    """
    if all(isinstance(d, int) for d in shape):
        return {}
    fixed_batch = shape[0] if isinstance(shape[0], int) else None
    b_min = fixed_batch or 1
    b_opt = b_max = fixed_batch or batch_max
    hw_fixed = isinstance(shape[2], int) and isinstance(shape[3], int)
    h_min, w_min = (shape[2], shape[3]) if hw_fixed else (32, 32)
    h_max, w_max = (shape[2], shape[3]) if hw_fixed else (size, size)
    return {
        "trt_profile_min_shapes": f"{input_name}:{_shape([b_min, 3, h_min, w_min])}",
        "trt_profile_opt_shapes": f"{input_name}:{_shape([b_opt, 3, h_max, w_max])}",
        "trt_profile_max_shapes": f"{input_name}:{_shape([b_max, 3, h_max, w_max])}",
    }


def provider_plan(
    cfg: DetectorConfig, available: Sequence[str], profile: dict[str, str] | None = None
) -> tuple[list[ProviderSpec], list[str]]:
    """(providers with their options in order, the requested ones this build lacks).

    The CPU provider is always last: a model that runs nowhere else still runs.
    """
    cache = cfg.engine_cache_dir or state_dir() / "trt-cache"
    device = str(cfg.device_id)
    plan: list[ProviderSpec] = []
    missing: list[str] = []
    for name in cfg.providers:
        if name not in available:
            missing.append(name)
            continue
        options: dict[str, str] = {}
        if name == TENSORRT:
            options = {
                "device_id": device,
                "trt_fp16_enable": str(cfg.fp16),
                "trt_engine_cache_enable": "True",
                "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": "True",
                "trt_timing_cache_path": str(cache),
                **(profile or {}),
            }
        elif name == CUDA:
            options = {"device_id": device, "cudnn_conv_algo_search": "HEURISTIC"}
        elif name == OPENVINO:
            options = {"device_type": cfg.openvino_device}
        plan.append((name, options))
    if all(name != CPU for name, _ in plan):
        plan.append((CPU, {}))
    return plan, missing


def _session_options(threads: int, spin: bool = False) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    opts.log_severity_level = 3  # onnxruntime's own warnings would repeat what we report
    return opts


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _input_of(model: Path) -> tuple[str, list[Any]]:
    """Name and shape of the model's first input, from a cheap unoptimised CPU session."""
    opts = _session_options(1)
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    inp = ort.InferenceSession(str(model), sess_options=opts, providers=[CPU]).get_inputs()[0]
    return inp.name, list(inp.shape)


def _describe(name: str, options: dict[str, str]) -> str:
    if name == TENSORRT:
        fp = "fp16" if options.get("trt_fp16_enable") == "True" else "fp32"
        return f"{name} ({fp}, engine cache {options.get('trt_engine_cache_path')})"
    if name == CUDA:
        return f"{name} (GPU {options.get('device_id', 0)})"
    if name == OPENVINO:
        return f"{name} ({options.get('device_type', 'CPU')})"
    return name


def open_session(cfg: DetectorConfig) -> tuple[ort.InferenceSession, str]:
    """Load the model on the first provider that works; returns (session, provider name).

    Raises:
        ModelError: the file is missing or no provider (the CPU included) can load it.
    """
    model = cfg.model
    if not model.is_file():
        raise ModelError(f"{model}: model file not found")
    profile: dict[str, str] = {}
    if TENSORRT in cfg.providers and TENSORRT in ort.get_available_providers():
        try:
            name, shape = _input_of(model)
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelError(f"{model}: not a loadable ONNX model: {_first_line(exc)}") from None
        profile = trt_profile(name, shape, cfg.batch_max, cfg.imgsz or 640)
    plan, missing = provider_plan(cfg, ort.get_available_providers(), profile)
    failures: list[str] = []
    for k in range(len(plan)):
        specs = plan[k:]
        if specs[0][0] == TENSORRT:
            Path(specs[0][1]["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
        try:
            session = ort.InferenceSession(
                str(model),
                sess_options=_session_options(cfg.threads, cfg.spin),
                providers=[name for name, _ in specs],
                provider_options=[options for _, options in specs],
            )
        except Exception as exc:  # onnxruntime's errors are untyped
            reason = _first_line(exc)
            failures.append(f"{specs[0][0]}: {reason}")
            if specs[0][0] == CPU:
                raise ModelError(f"{model}: not a loadable ONNX model: {reason}") from None
            continue
        running = session.get_providers()[0]  # onnxruntime drops providers that fail to start
        options = next((dict(o) for n, o in specs if n == running), {})
        if running != specs[0][0]:
            failures.append(f"{specs[0][0]}: did not start (onnxruntime fell back)")
        notes = []
        if missing:
            notes.append(f"not in this onnxruntime build: {', '.join(missing)}")
        if failures:
            notes.append(f"failed: {'; '.join(failures)}")
        line = f"detector {model.name}: running on {_describe(running, options)}"
        (log.warning if notes else log.info)(line + (" — " + "; ".join(notes) if notes else ""))
        return session, running
    raise ModelError(f"{model}: no execution provider could load it: {'; '.join(failures)}")


class ModelCall(Protocol):
    """Runs the model on one input batch and returns its first output on the host."""

    def run(self, batch: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
        """The model's first output for `batch` [B, 3, H, W], as a NumPy array."""
        ...


class PlainCall:
    """`session.run`: onnxruntime copies the host input in and the output out on every call."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._output = session.get_outputs()[0].name

    def run(self, batch: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
        """The model's first output for `batch`."""
        return self._session.run([self._output], {self._input: batch})[0]


class IoBoundCall:
    """IO binding: the input lives in a device tensor per shape, updated in place each call;
    the output is allocated on the device and copied to the host once.

    Args:
        session: the session.
        device: onnxruntime device name ("cuda", or "cpu" where no GPU is present).
        device_id: the device index.
    """

    def __init__(self, session: ort.InferenceSession, device: str, device_id: int = 0) -> None:
        self._session = session
        self._device = device
        self._device_id = device_id
        self._input = session.get_inputs()[0].name
        self._output = session.get_outputs()[0].name
        self._inputs: dict[tuple[tuple[int, ...], str], ort.OrtValue] = {}

    def _device_input(self, batch: npt.NDArray[np.floating[Any]]) -> ort.OrtValue:
        key = (batch.shape, str(batch.dtype))
        value = self._inputs.get(key)
        if value is None:
            if len(self._inputs) > 16:  # frame sizes changed a lot: keep device memory bounded
                self._inputs.clear()
            value = ort.OrtValue.ortvalue_from_numpy(batch, self._device, self._device_id)
            self._inputs[key] = value
        else:
            value.update_inplace(batch)
        return value

    def run(self, batch: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.floating[Any]]:
        """The model's first output for `batch`."""
        binding = self._session.io_binding()
        binding.bind_ortvalue_input(self._input, self._device_input(np.ascontiguousarray(batch)))
        binding.bind_output(self._output, self._device, self._device_id)
        self._session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]


def make_call(session: ort.InferenceSession, provider: str, cfg: DetectorConfig) -> ModelCall:
    """IO binding on the GPU providers (or where the config forces it), else plain runs."""
    on_gpu = provider in _GPU
    if cfg.io_binding == "on" or (cfg.io_binding == "auto" and on_gpu):
        return IoBoundCall(session, "cuda" if on_gpu else "cpu", cfg.device_id)
    return PlainCall(session)
