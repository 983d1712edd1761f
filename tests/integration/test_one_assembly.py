"""One way to build a source's pipeline: the runner, the cluster worker and the event and
fusion benches all get theirs from `engine.pipeline.build_pipeline` and drive it with the one
source loop, so the benches measure the engine itself, not a copy of it."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.config import Config
from engine.pipeline import SourcePipeline
from engine.pipeline import build as build_module
from tests.conftest import REPO, make_video, make_yolox_model, moving_square_frames

BUNDLED = REPO / "models" / "lookout_sim_yolo11n.onnx"


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The source ids of every pipeline built from now on (through the one builder)."""
    ids: list[str] = []

    class Recorded(SourcePipeline):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            ids.append(self.id)

    monkeypatch.setattr(build_module, "SourcePipeline", Recorded)
    return ids


def _config(tmp_path: Path) -> Config:
    """Two files of 12 frames; a detector with a dynamic batch axis, so that frames already
    decoded go to it several at a time."""
    video = make_video(tmp_path / "a.mp4", moving_square_frames(12))
    model = make_yolox_model(tmp_path / "m.onnx", dynamic_batch=True)
    src = {"type": "file", "path": str(video), "rate": "max", "buffer_frames": 8}
    return Config.model_validate(
        {
            "site": "s",
            "sources": [{"id": "one", **src}, {"id": "two", **src}],
            "detector": {"model": str(model), "class_names": ["a", "b"], "batch_max": 8},
        }
    )


def test_nothing_but_the_builder_makes_a_pipeline_and_nothing_but_the_loop_drives_one() -> None:
    """Read from the code: `SourcePipeline(` is called in the builder alone, and `SourceLoop(`
    only by the runner, the cluster worker and the benches' simulation driver."""
    calls: dict[str, list[str]] = {"SourcePipeline": [], "SourceLoop": []}
    for path in [*(REPO / "engine").rglob("*.py"), *(REPO / "bench").rglob("*.py")]:
        text = path.read_text()
        for name, where in calls.items():
            if re.search(rf"\b{name}\(", text):
                where.append(path.relative_to(REPO).as_posix())
    assert calls["SourcePipeline"] == ["engine/pipeline/build.py"]
    assert sorted(calls["SourceLoop"]) == [
        "bench/sim_run.py",
        "engine/cluster/worker.py",
        "engine/runtime/runner.py",
    ]


def test_the_runner_builds_every_source_pipeline_with_the_builder(
    tmp_path: Path, built: list[str]
) -> None:
    from engine.runtime import Runner

    report = Runner(_config(tmp_path)).run(threading.Event())
    assert report.frames == {"one": 12, "two": 12}
    assert sorted(built) == ["one", "two"]


def test_the_cluster_worker_builds_its_pipeline_with_the_builder(
    tmp_path: Path, built: list[str]
) -> None:
    from engine.cluster.hub import Hub
    from engine.cluster.worker import SourceWorker

    cfg = _config(tmp_path)
    hub = Hub(cfg)
    try:
        worker = SourceWorker(cfg, "one", hub, "node-a")
        assert built == [], "a constructor must not build (or start) anything"
        worker.start()
        deadline = time.monotonic() + 120
        while not worker.status().done:
            assert time.monotonic() < deadline, "the worker never delivered its records"
            time.sleep(0.05)
    finally:
        hub.close()
    assert worker.status().frames == 12
    assert built == ["one"]
    # each frame of a batch is its own record, numbered by its position in the file: the hub
    # takes all 12 and the end record, none as a duplicate
    st = hub.status()["sources"]["one"]
    assert (st["frames"], st["duplicates"], st["next_seq"]) == (13, 0, 13)


@pytest.mark.skipif(not BUNDLED.is_file(), reason="the bundled model is not in this checkout")
def test_the_event_and_fusion_benches_build_theirs_with_the_builder(built: list[str]) -> None:
    from bench import events, fusion
    from engine.config import DetectorConfig
    from engine.detect import OnnxDetector

    detector = OnnxDetector(DetectorConfig(model=BUNDLED, conf=0.2, iou=0.5))
    result = events.run_case(events.SUITE[1], 1, detector, max_s=1.0)
    assert result["frames"] > 0 and built == ["cam"]
    fusion.run_once(1, None, detector.class_names, max_s=1.0)
    assert built == ["cam", "pole3", "drone9"]
