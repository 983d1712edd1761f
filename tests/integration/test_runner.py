"""The runner on real footage and real models: alerts from every source, one failure isolated."""

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.config import parse_config
from engine.runtime import Runner
from engine.types import Alert
from tests.conftest import make_video, make_yolox_model, moving_square_frames


def config(
    sources: list[tuple[str, Path]],
    model: Path,
    out: Path,
    extra_det: str = "",
    tracking: bool = True,
) -> str:
    src = "".join(f"  - {{id: {i}, type: file, path: '{p}', rate: max}}\n" for i, p in sources)
    zones = "".join(
        f"  - {{id: z{i}, source: {i}, polygon: [[0, 0], [5000, 0], [5000, 5000], [0, 5000]]}}\n"
        for i, _ in sources
    )
    rules = "".join(
        f"  - {{id: r{i}, type: zone_presence, zone: z{i}, classes: [person]}}\n"
        for i, _ in sources
    )
    return (
        f"site: test\nsources:\n{src}detector: {{model: '{model}', threads: 1{extra_det}}}\n"
        f"zones:\n{zones}rules:\n{rules}outputs:\n  - {{type: jsonl, path: '{out}'}}\n"
        f"tracking: {{enabled: {'true' if tracking else 'false'}}}\n"
    )


@pytest.mark.assets
def test_two_sources_alert_independently(assets: Callable[..., Path], tmp_path: Path) -> None:
    people = assets("footage/intel_one-by-one-person-detection.mp4")
    gif = assets("footage/intel_people-detection.gif")
    model = assets("models/yolo11n_coco_320.onnx")
    out = tmp_path / "alerts.jsonl"
    # untracked: the GIF's few people score too low (< 0.6) for tracks to be born in 23 frames
    cfg = parse_config(config([("clip", people), ("gif", gif)], model, out, tracking=False))
    alerts: list[Alert] = []
    report = Runner(cfg).run(threading.Event(), on_alert=alerts.append)
    assert report.errors == {} and report.frames == {"clip": 1394, "gif": 23}
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["seq"] for x in lines] == list(range(1, len(lines) + 1)) == [a.seq for a in alerts]
    by_source: dict[str, list[str]] = {}
    for x in lines:
        by_source.setdefault(x["data"]["sensors"][0], []).append(x["data"]["phase"])
    # every incident that starts also ends, in both streams
    for phases in by_source.values():
        assert phases.count("start") == phases.count("end") >= 1
    assert set(by_source) == {"clip", "gif"}
    assert all(o["label"] == "person" for x in lines for o in x["data"]["objects"])


@pytest.mark.assets
def test_the_runner_tracks(assets: Callable[..., Path], tmp_path: Path) -> None:
    """Objects carry identities from the first frames on (a tracker holding no tracks yet is
    still the tracker: it once counted as 'no tracker' and tracking silently never ran)."""
    people = assets("footage/intel_one-by-one-person-detection.mp4")
    model = assets("models/yolo11n_coco_320.onnx")
    cfg = parse_config(config([("clip", people)], model, tmp_path / "a.jsonl"))
    ids: list[int] = []
    Runner(cfg).run(threading.Event(), on_frame=lambda f, t, e: ids.extend(t.track_id.tolist()))
    assert len(ids) > 500 and -1 not in ids
    assert 3 <= len(set(ids)) <= 60  # people walk through one by one: a few dozen identities


def test_a_failing_source_does_not_stop_the_others(tmp_path: Path) -> None:
    good = make_video(tmp_path / "good.mp4", moving_square_frames(30))
    doomed = make_video(tmp_path / "doomed.mp4", moving_square_frames(30))
    model = make_yolox_model(tmp_path / "tiny.onnx")
    cfg = parse_config(
        config(
            [("good", good), ("doomed", doomed)],
            model,
            tmp_path / "a.jsonl",
            ", class_names: [person, car]",
        )
    )
    doomed_cfg = cfg.sources[1].model_copy(update={"loop": True})
    cfg = cfg.model_copy(update={"sources": [cfg.sources[0], doomed_cfg]})
    runner = Runner(cfg)
    doomed.unlink()  # opened fine; gone when its ingest thread opens it again (the next loop)
    report = runner.run(threading.Event())
    assert report.frames.get("good") == 30
    assert "doomed" in report.errors and "doomed.mp4" in report.errors["doomed"]


def test_stop_ends_a_looping_run_promptly(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", moving_square_frames(10))
    model = make_yolox_model(tmp_path / "tiny.onnx")
    text = config([("c", clip)], model, tmp_path / "a.jsonl", ", class_names: [person, car]")
    cfg = parse_config(text.replace("rate: max}", "rate: native, loop: true}"))
    stop = threading.Event()
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    report = Runner(cfg).run(stop)
    assert stop.is_set() and report.errors == {}
    assert 5 <= report.frames["c"] <= 15  # native rate: about 10 frames in 1 s, then stopped
