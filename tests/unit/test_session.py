"""Execution providers: plan, fallback to what this machine has, IO binding equal to plain runs.

No GPU here: the CUDA/TensorRT options are checked as the plan onnxruntime would receive, the
fallback with real sessions (this build has only the CPU), and IO binding on the CPU device.
"""

import logging
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from engine.config import DetectorConfig
from engine.detect import OnnxDetector
from engine.detect.session import (
    IoBoundCall,
    PlainCall,
    make_call,
    open_session,
    provider_plan,
    trt_profile,
)
from engine.errors import ModelError

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "models" / "lookout_sim_yolo11n.onnx"
ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def cfg(**kw: object) -> DetectorConfig:
    return DetectorConfig.model_validate({"model": BUNDLED, **kw})


def test_short_provider_names_are_normalised_and_unknown_ones_refused() -> None:
    assert cfg(providers=["tensorrt", "cuda", "CPU"]).providers == ALL
    assert cfg(providers=["cuda", "CUDAExecutionProvider"]).providers == ALL[1:2]
    with pytest.raises(ValidationError, match="unknown execution provider 'cudaa'"):
        cfg(providers=["cudaa"])


def test_plan_keeps_order_gives_options_and_always_ends_on_the_cpu(tmp_path: Path) -> None:
    c = cfg(providers=["tensorrt", "cuda"], engine_cache_dir=tmp_path, device_id=1, fp16=False)
    profile = trt_profile("images", ["batch", 3, 320, 320], 4, 640)
    plan, missing = provider_plan(c, ALL, profile)
    assert [n for n, _ in plan] == ALL and missing == []
    trt = plan[0][1]
    assert trt["trt_fp16_enable"] == "False" and trt["device_id"] == "1"
    assert (
        trt["trt_engine_cache_path"] == str(tmp_path) and trt["trt_engine_cache_enable"] == "True"
    )
    assert trt["trt_profile_min_shapes"] == "images:1x3x320x320"
    assert trt["trt_profile_max_shapes"] == "images:4x3x320x320"
    assert plan[1][1]["device_id"] == "1"
    # a build without the GPU providers: they are reported missing, the CPU runs
    plan, missing = provider_plan(c, ["CPUExecutionProvider"], profile)
    assert [n for n, _ in plan] == ["CPUExecutionProvider"]
    assert missing == ALL[:2]
    ov, _ = provider_plan(
        cfg(providers=["openvino"], openvino_device="GPU"), ["OpenVINOExecutionProvider"]
    )
    assert ov[0] == ("OpenVINOExecutionProvider", {"device_type": "GPU"})


def test_trt_profile_covers_dynamic_axes_only() -> None:
    assert trt_profile("x", [1, 3, 320, 320], 8, 640) == {}
    p = trt_profile("x", ["b", 3, "h", "w"], 8, 640)
    assert p["trt_profile_min_shapes"] == "x:1x3x32x32"
    assert p["trt_profile_opt_shapes"] == "x:8x3x640x640"


def test_fallback_to_the_cpu_is_logged_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="engine.detect.session"):
        session, running = open_session(cfg(providers=["tensorrt", "cuda", "cpu"]))
    assert running == "CPUExecutionProvider" == session.get_providers()[0]
    lines = [r.getMessage() for r in caplog.records if r.name == "engine.detect.session"]
    assert len(lines) == 1
    assert "running on CPUExecutionProvider" in lines[0]
    assert (
        "not in this onnxruntime build: TensorrtExecutionProvider, CUDAExecutionProvider"
        in lines[0]
    )


def test_unloadable_model_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"bad\.onnx: not a loadable ONNX model"):
        open_session(cfg(model=bad, providers=["cuda", "cpu"]))


def test_io_binding_equals_plain_runs_and_updates_its_device_buffer_in_place() -> None:
    session, running = open_session(cfg())
    plain, bound = PlainCall(session), IoBoundCall(session, "cpu")
    rng = np.random.default_rng(0)
    for shape in [(2, 3, 320, 320), (2, 3, 320, 320), (1, 3, 192, 320)]:  # reuse, then a new shape
        batch = rng.random(shape, dtype=np.float32)
        np.testing.assert_array_equal(bound.run(batch), plain.run(batch))
    assert isinstance(make_call(session, running, cfg()), PlainCall)
    assert isinstance(make_call(session, running, cfg(io_binding="on")), IoBoundCall)


def test_detector_with_io_binding_and_warm_up_finds_the_same_boxes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    image = np.full((360, 640, 3), 90, np.uint8)
    image[150:260, 300:340] = (40, 60, 200)
    with caplog.at_level(logging.INFO, logger="engine.detect.onnx_detector"):
        bound = OnnxDetector(cfg(io_binding="on", warmup_runs=2, conf=0.01, batch_max=2))
    assert any("warmed up: 2 run(s) of batch 2" in r.getMessage() for r in caplog.records)
    plain = OnnxDetector(cfg(io_binding="off", warmup_runs=0, conf=0.01))
    a, b = bound.detect_images([image])[0], plain.detect_images([image])[0]
    np.testing.assert_array_equal(a.xyxy, b.xyxy)
    np.testing.assert_array_equal(a.score, b.score)
