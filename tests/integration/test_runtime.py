"""The runtime under faults, reloads and scrapes: a killed worker is restarted and the others
lose nothing; zones and rules change while the streams run; metrics are served and summarised;
every thread is gone when the run ends."""

import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.config import parse_config
from engine.runtime import Runner
from engine.runtime.reload import ConfigWatcher
from engine.types import Alert, Event, Frame, Tracks
from tests.conftest import make_video, make_yolox_model, moving_square_frames
from tests.integration.test_runner import config

FRAMES = 60


def lookout_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("lookout-")]


def three_sources(tmp_path: Path, extra: str = "") -> str:
    clips = [(i, make_video(tmp_path / f"{i}.mp4", moving_square_frames(FRAMES))) for i in "abc"]
    model = make_yolox_model(tmp_path / "tiny.onnx", dynamic_batch=True)
    text = config(
        clips, model, tmp_path / "alerts.jsonl", ", class_names: [person, car], batch_max: 4"
    )
    return text + "supervisor: {backoff_initial_s: 0.1, backoff_max_s: 0.5}\n" + extra


def test_a_killed_worker_is_restarted_and_the_others_lose_no_frames(tmp_path: Path) -> None:
    before = set(lookout_threads())
    runner = Runner(parse_config(three_sources(tmp_path)))
    seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    faults = {"b": 10}  # source b's worker dies on its 11th frame

    def on_frame(frame: Frame, _tracks: Tracks, _events: list[Event]) -> None:
        seen[frame.source_id].append(frame.seq)
        if faults.get(frame.source_id) == frame.seq:
            del faults[frame.source_id]
            raise RuntimeError("injected fault")

    alerts: list[Alert] = []
    report = runner.run(threading.Event(), on_alert=alerts.append, on_frame=on_frame)
    assert report.errors == {} and report.restarts == {"b": 1}
    # the other sources: every frame, in order, none twice
    assert seen["a"] == seen["c"] == list(range(FRAMES))
    # source b goes on where it was (its ingest never stopped)
    assert seen["b"] == list(range(FRAMES)) and report.frames["b"] == FRAMES
    health = [(a.event.kind, a.event.source_id) for a in alerts if a.topic.startswith("health.")]
    assert ("stage.failed", "b") in health and ("stage.restarted", "b") in health
    failed = next(h for h in runner.health if h.kind == "stage.failed")
    assert failed.attributes["stage"] == "frame hook" and "injected fault" in failed.reason
    assert failed.severity == "warning"
    assert set(lookout_threads()) <= before, "every thread of the run is joined"


def test_a_worker_that_keeps_failing_is_given_up_alone(tmp_path: Path) -> None:
    runner = Runner(
        parse_config(
            three_sources(tmp_path, "").replace(
                "backoff_max_s: 0.5}", "backoff_max_s: 0.5, max_restarts: 2}"
            )
        )
    )
    seen: dict[str, int] = {"a": 0, "b": 0, "c": 0}

    def on_frame(frame: Frame, _tracks: Tracks, _events: list[Event]) -> None:
        seen[frame.source_id] += 1
        if frame.source_id == "b":
            raise RuntimeError("broken for good")

    report = runner.run(threading.Event(), on_frame=on_frame)
    assert seen["a"] == seen["c"] == FRAMES and seen["b"] == 3  # first try + 2 restarts
    assert "giving up" in report.errors["b"] and set(report.errors) == {"b"}
    final = [h for h in runner.health if h.attributes.get("final")]
    assert len(final) == 1 and final[0].severity == "critical"


def test_metrics_are_served_and_summarised(tmp_path: Path) -> None:
    text = three_sources(tmp_path, "metrics: {listen: '127.0.0.1:0'}\n")
    runner = Runner(parse_config(text))
    assert runner.metrics_url is None  # nothing serves before the run
    scraped: list[str] = []
    served: list[str] = []

    def on_frame(frame: Frame, _tracks: Tracks, _events: list[Event]) -> None:
        if frame.source_id == "a" and frame.seq == 40:
            url = runner.metrics_url
            assert url is not None and url.startswith("http://127.0.0.1:")
            served.append(url)
            with urllib.request.urlopen(url, timeout=5) as resp:
                scraped.append(resp.read().decode())

    report = runner.run(threading.Event(), on_frame=on_frame)
    assert report.errors == {}
    body = scraped[0]
    for source in "abc":
        assert f'lookout_frames_processed_total{{source="{source}"}}' in body
        bucket = f'lookout_latency_seconds_bucket{{le="0.1",source="{source}",stage="detect"}}'
        assert bucket in body
        assert f'lookout_frames_dropped_total{{source="{source}",stage="ingest"}} 0.0' in body
    processed = [
        line
        for line in body.splitlines()
        if line.startswith('lookout_frames_processed_total{source="a"}')
    ]
    assert float(processed[0].split()[-1]) >= 40
    for name in (
        "lookout_process_resident_memory_bytes",
        "lookout_process_threads",
        'lookout_queue_depth{queue="events"}',
        'lookout_queue_depth{queue="inference"}',
        "lookout_process_cpu_seconds_total",
    ):
        assert name in body
    summary = runner.metrics.summary(min_interval_s=0)
    a = summary["sources"]["a"]
    assert a["frames"] == FRAMES and a["dropped"] == 0
    assert a["latency_ms_p99"] >= a["latency_ms_p50"] > 0
    assert summary["process"]["rss_mb"] > 50 and summary["process"]["threads"] >= 1
    assert runner.metrics_url is None
    with pytest.raises(OSError):  # closed with the run
        urllib.request.urlopen(served[0], timeout=2)


def test_a_native_rate_file_behind_the_engine_drops_and_says_so(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "fast.mp4", moving_square_frames(90), fps=60)
    model = make_yolox_model(tmp_path / "tiny.onnx")
    text = config([("a", clip)], model, tmp_path / "a.jsonl", ", class_names: [person, car]")
    runner = Runner(parse_config(text.replace("rate: max}", "rate: native, buffer_frames: 2}")))
    slow = lambda *_: time.sleep(0.05)  # noqa: E731 - an engine at 20 fps, a 60 fps file
    report = runner.run(threading.Event(), on_frame=slow)
    dropped = runner.metrics.summary(min_interval_s=0)["sources"]["a"]["dropped"]
    assert dropped > 20 and report.frames["a"] + dropped == 90
    assert report.frames["a"] < 60  # latency stayed bounded: frames were dropped, not queued
    lagging = [h for h in runner.health if h.kind == "source.lagging"]
    assert lagging and "dropped" in lagging[0].reason
    figures = lagging[0].attributes  # the same meaning as a live camera's (engine/sources/lag.py)
    assert figures["dropped_total"] >= figures["dropped"] >= 3


def write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # as editors and config tools do: atomically


@pytest.mark.assets
def test_zones_and_rules_reload_while_the_streams_run(
    assets: Callable[..., Path], tmp_path: Path
) -> None:
    cars = assets("footage/intel_car-detection.mp4")
    model = assets("models/yolo11n_coco_320.onnx")
    path = tmp_path / "lookout.yaml"
    base = (
        f"sources: [{{id: road, type: file, path: '{cars}', rate: native, loop: true}}]\n"
        f"detector: {{model: '{model}'}}\n"
        "zones: [{id: all, source: road, polygon: [[0, 0], [768, 0], [768, 432], [0, 432]]}]\n"
    )
    write(
        path,
        base + "rules:\n  - {id: people, type: zone_presence, zone: all, "
        "classes: [person]}\n  - {id: cars, type: zone_presence, zone: all, classes: [car]}\n",
    )
    runner = Runner(ConfigWatcher(path).load(), watch=ConfigWatcher(path))
    people = runner.rules["road"][0]
    alerts: list[Alert] = []
    stop = threading.Event()
    thread = threading.Thread(target=lambda: runner.run(stop, on_alert=alerts.append))
    thread.start()

    def wait_for(pred: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not pred():
            assert time.monotonic() < deadline and thread.is_alive(), f"no {what}"
            time.sleep(0.1)

    def events(rule: str, phase: str) -> list[Event]:
        return [
            a.event
            for a in alerts
            if isinstance(a.event, Event) and a.event.rule_id == rule and a.event.phase == phase
        ]

    try:
        wait_for(lambda: bool(events("cars", "start")), "car incident")
        # `cars` now also counts trucks (replaced: its incident ends), `people` is untouched
        # (kept: same instance), a bad edit is refused, then a new rule arrives
        write(
            path,
            base + "rules:\n  - {id: people, type: zone_presence, zone: all, "
            "classes: [person]}\n  - {id: cars, type: zone_presence, zone: all, "
            "classes: [car, truck]}\n",
        )
        wait_for(lambda: any(h.kind == "config.reloaded" for h in runner.health), "reload")
        reloaded = next(h for h in runner.health if h.kind == "config.reloaded")
        assert reloaded.attributes["replaced"] == ["cars"]
        assert reloaded.attributes["kept"] == ["people"] and reloaded.attributes["added"] == []
        wait_for(lambda: bool(events("cars", "end")), "end of the replaced rule's incident")
        wait_for(lambda: len(events("cars", "start")) >= 2, "the new rule's incident")
        first, second = events("cars", "start")[:2]
        assert first.event_id != second.event_id
        assert runner.rules["road"][0] is people
        write(path, base + "rules:\n  - {id: oops, type: zone_presence, zone: nowhere}\n")
        wait_for(lambda: any(h.kind == "config.rejected" for h in runner.health), "refusal")
        rejected = next(h for h in runner.health if h.kind == "config.rejected")
        assert "nowhere" in rejected.reason and "lookout.yaml" in rejected.reason
        assert runner.rules["road"][0] is people  # the running rules stay
        write(
            path,
            base + "rules:\n  - {id: trucks, type: zone_presence, zone: all, "
            "classes: [truck, bus]}\n",
        )
        wait_for(lambda: sum(h.kind == "config.reloaded" for h in runner.health) >= 2, "reload 2")
        last = [h for h in runner.health if h.kind == "config.reloaded"][-1]
        assert last.attributes["added"] == ["trucks"]
        assert last.attributes["removed"] == ["cars", "people"]
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
