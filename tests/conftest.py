"""Shared builders for the tests: assets, synthetic videos, detections, frames, free ports."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import av
import numpy as np
import pytest

from engine.types import Detections, Frame, Tracks
from tests.support.assets import assets_dir, missing_reason
from tests.support.rtsp_process import free_port
from tests.support.wheel import Installed, build_wheel, copy_sources, install_wheel

REPO = Path(__file__).resolve().parents[1]
LOOKOUT = [sys.executable, "-m", "engine.cli.main"]


@pytest.fixture
def assets() -> Callable[..., Path]:
    """`assets("models/x.onnx")` -> path, or skip the test naming what is missing."""

    def get(*relative: str) -> Path:
        reason = missing_reason(*relative)
        if reason:
            pytest.skip(reason)
        return assets_dir() / relative[0]

    return get


@pytest.fixture(scope="session")
def installed_lookout(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """This checkout as a wheel, installed (not editable) in a fresh virtualenv; once a session."""
    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(copy_sources(REPO, root / "src"), root / "dist")
    return install_wheel(wheel, root / "venv")


__all__ = ["LOOKOUT", "REPO", "free_port"]


def make_video(
    path: Path,
    frames: Sequence[np.ndarray],
    fps: int = 10,
    codec: str = "libx264",
) -> Path:
    """Encode BGR uint8 frames into a video file with PyAV."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p" if codec != "gif" else "rgb8"
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def moving_square_frames(n: int, h: int = 96, w: int = 128) -> list[np.ndarray]:
    """n frames of a white square moving right over grey."""
    frames = []
    for i in range(n):
        img = np.full((h, w, 3), 60, np.uint8)
        x = 4 + (i * 3) % (w - 24)
        img[30:50, x : x + 20] = 255
        frames.append(img)
    return frames


def make_frame(
    pts_s: float = 0.0, seq: int = 0, source_id: str = "cam1", h: int = 480, w: int = 640
) -> Frame:
    """A black frame with the given timestamp."""
    return Frame(source_id, seq, pts_s, int(pts_s * 1e9), np.zeros((h, w, 3), np.uint8))


def make_detections(
    boxes: Sequence[Sequence[float]],
    scores: Sequence[float] | None = None,
    classes: Sequence[int] | None = None,
    names: tuple[str, ...] = ("person", "car", "truck"),
) -> Detections:
    """Detections from plain lists (score 0.9 and class 0 by default)."""
    n = len(boxes)
    return Detections(
        np.asarray(boxes, np.float32).reshape(n, 4),
        np.asarray(scores if scores is not None else [0.9] * n, np.float32),
        np.asarray(classes if classes is not None else [0] * n, np.int32),
        names,
    )


def make_tracks(*args: object, **kwargs: object) -> Tracks:
    """Untracked Tracks from the same arguments as `make_detections`."""
    return Tracks.untracked(make_detections(*args, **kwargs))  # type: ignore[arg-type]


def make_yolox_model(
    path: Path, size: int = 64, classes: int = 2, seed: int = 0, dynamic_batch: bool = False
) -> Path:
    """A small, valid ONNX detector with a YOLOX raw-grid output and random weights.

    Output [B, N, 5 + classes] with N the cells at strides 8/16/32; no metadata (like YOLOX).
    B is 1, or a dynamic axis.
    """
    batch: int | str = "batch" if dynamic_batch else 1
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    c = 5 + classes
    nodes, inits, parts = [], [], []
    for s in (8, 16, 32):
        w = numpy_helper.from_array(rng.normal(0, 0.02, (c, 3, s, s)).astype(np.float32), f"w{s}")
        shape = numpy_helper.from_array(np.array([0, c, -1], np.int64), f"shape{s}")
        inits += [w, shape]
        nodes.append(helper.make_node("Conv", ["images", f"w{s}"], [f"conv{s}"], strides=[s, s]))
        nodes.append(helper.make_node("Reshape", [f"conv{s}", f"shape{s}"], [f"flat{s}"]))
        parts.append(f"flat{s}")
    nodes.append(helper.make_node("Concat", parts, ["cat"], axis=2))
    nodes.append(helper.make_node("Transpose", ["cat"], ["grid"], perm=[0, 2, 1]))
    nodes.append(helper.make_node("Sigmoid", ["grid"], ["output"]))
    n = sum((size // s) ** 2 for s in (8, 16, 32))
    graph = helper.make_graph(
        nodes,
        "tiny_yolox",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, n, c])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(autouse=True, scope="session")
def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Alert journals (and other state) of the engines the tests start go to a temp folder."""
    import os

    os.environ["LOOKOUT_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
