"""Bad input ends with one clear line naming the culprit, a non-zero exit and no traceback."""

import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from tests.conftest import make_video, make_yolox_model, moving_square_frames

LOOKOUT = [sys.executable, "-m", "engine.cli.main"]


def lookout(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LOOKOUT, *map(str, args)], capture_output=True, text=True, timeout=120)


def assert_user_error(proc: subprocess.CompletedProcess[str], *culprits: str) -> str:
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("lookout: error: ")]
    assert errors, proc.stderr
    text = "\n".join(errors)
    for c in culprits:
        assert c in text, text
    return text


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("clips")
    return make_video(d / "clip.mp4", moving_square_frames(10))


def flatten_model(path: Path) -> Path:
    """A valid ONNX model whose output [1, 12288] is no detector layout."""
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["images"], ["output0"])],
        "flat",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 12288])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_missing_model(clip: Path, tmp_path: Path) -> None:
    proc = lookout("run", "--source", clip, "--model", tmp_path / "none.onnx", "--fast")
    assert_user_error(proc, "none.onnx", "model file not found")


def test_corrupt_model(clip: Path, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 500)
    proc = lookout("run", "--source", clip, "--model", bad, "--fast")
    assert_user_error(proc, "corrupt.onnx", "not a loadable ONNX model")


def test_unsupported_layout(clip: Path, tmp_path: Path) -> None:
    proc = lookout("run", "--source", clip, "--model", flatten_model(tmp_path / "flat.onnx"))
    text = assert_user_error(proc, "flat.onnx", "output layout not supported", "[1, 12288]")
    assert "YOLOX" in text  # it says what is supported


def test_unreadable_video(tmp_path: Path) -> None:
    video = tmp_path / "notvideo.mp4"
    video.write_text("hello")
    cfg = tmp_path / "c.yaml"
    model = make_yolox_model(tmp_path / "tiny.onnx")
    cfg.write_text(
        f"sources: [{{id: a, type: file, path: {video}}}]\n"
        f"detector: {{model: {model}, class_names: [a, b]}}\n"
    )
    assert_user_error(lookout("run", cfg), "notvideo.mp4", "cannot read video")


def test_invalid_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("sources: [\n  id: x\n")
    for cmd in ("check", "run"):
        assert_user_error(lookout(cmd, cfg), "broken.yaml:", "invalid YAML")


def test_invalid_values_are_all_listed(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "sources:\n  - id: cam1\n    type: file\n    path: a.mp4\n    rate: fast\n"
        "detector:\n  model: m.onnx\n  conf: 2\n"
    )
    proc = lookout("check", cfg)
    text = assert_user_error(proc, "bad.yaml:5: sources[0].rate", "bad.yaml:8: detector.conf")
    assert "got 'fast'" in text and "got 2" in text
    assert proc.returncode == 2


def test_check_reports_missing_files(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sources: [{id: a, type: file, path: nope.mp4}]\ndetector: {model: nope.onnx}\n")
    assert_user_error(lookout("check", cfg), "detector.model: file not found", "sources[0].path")


def test_bad_flags(clip: Path, tmp_path: Path) -> None:
    assert_user_error(lookout("run", "--source", clip), "--model")
    proc = lookout("run", "--source", clip, "--model", "m.onnx", "--zone", "1,2,3")
    assert_user_error(proc, "--zone")
    proc = lookout("run", "--source", clip, "--model", "m.onnx", "--publish", "nonsense")
    assert_user_error(proc, "--publish")


def test_missing_source_type_is_explained(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sources: [{id: a, path: x.mp4}]\ndetector: {model: m.onnx}\n")
    assert_user_error(lookout("check", cfg), "sources[0].type: required field is missing")


def test_port_in_use(clip: Path, tmp_path: Path) -> None:
    import socket

    model = make_yolox_model(tmp_path / "tiny.onnx")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cfg = tmp_path / "c.yaml"
        cfg.write_text(
            f"sources: [{{id: a, type: file, path: {clip}}}]\n"
            f"detector: {{model: {model}, class_names: [a, b]}}\n"
            f"outputs: [{{type: zmq, endpoint: 'tcp://127.0.0.1:{port}'}}]\n"
        )
        assert_user_error(lookout("run", cfg), f"cannot publish on tcp://127.0.0.1:{port}")


def test_closed_stdout_is_not_a_crash() -> None:
    """`lookout subscribe ... | head -n 1` closes the pipe while alerts still come: no traceback."""
    import numpy as np
    import zmq

    from engine.alerts import AlertStamper, ZmqPublisher
    from engine.config import ZmqOutputConfig
    from engine.types import Event
    from tests.conftest import free_port

    ep = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    pub = ZmqPublisher(ZmqOutputConfig(endpoint=ep, wait_subscribers=1, wait_timeout_s=30), ctx)
    pub.start()
    proc = subprocess.Popen(
        f"{' '.join(LOOKOUT)} subscribe {ep} --json | head -n 1",
        shell=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert pub.wait_for_subscribers()
        st = AlertStamper("s")
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), (), np.zeros(0, np.int64))
        for i in range(5000):
            pub.send(st.stamp(Event(f"e{i}", "k", "start", "cam", "r", 0.0, 0, *empty)))
            if proc.poll() is not None:
                break
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        pub.close()
        ctx.destroy(linger=0)
    assert out.count("\n") == 1
    assert "Traceback" not in err and "BrokenPipe" not in err, err
