"""Outputs and sources that fail alone (issue 20, findings 7, 8 and 14), on real faults.

7: a read-only clips folder and a full disk: the rule alerts still go out, one `sink.failing`
   (and `sink.recovered` once the folder is writable again) instead of a crash loop, and no alert
   names a clip that is missing or empty.
8: one unreadable file among two sources: the good one is processed to its end, the bad one ends
   alone with its error (`source.failed`), and `lookout run` exits non-zero after.
14: a truncated MP4 ends with `source.truncated` (frames read vs expected) and a non-zero exit;
   a damaged one logs a bounded number of lines, not one per corrupt packet.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from engine.config import ClipsConfig, FileSourceConfig, parse_config
from engine.record.clips import ClipRecorder, with_clip
from engine.rules.base import make_event
from engine.runtime import Runner
from engine.sources import FileSource
from engine.types import Alert, ClipRef, Event, HealthEvent
from tests.conftest import LOOKOUT, REPO, make_frame, make_yolox_model, moving_square_frames
from tests.integration.test_runner import config

PERSON_CLIP = "footage/intel_one-by-one-person-detection.mp4"
MODEL = "models/yolo11n_coco_320.onnx"
INCIDENTS = 10  # a person comes and goes every second in blinking_video


def blinking_video(path: Path, assets: Callable[..., Path]) -> Path:
    """10 s at 10 fps of real footage: 0.5 s empty, 0.5 s with a person, ten times over, so
    that a real detector starts and ends an incident every second."""
    with av.open(str(assets(PERSON_CLIP))) as c:
        frames = [
            f.to_ndarray(format="bgr24")
            for _, f in zip(range(135), c.decode(video=0), strict=False)
        ]
    empty, person = frames[0:5], frames[130:135]
    seq = [(person if (k // 5) % 2 else empty)[k % 5][::2, ::2].copy() for k in range(100)]
    return write_mp4(path, seq)


def write_mp4(path: Path, frames: list[np.ndarray], faststart: bool = False) -> Path:
    """An H.264 MP4 (faststart: its index before the frames, as cameras and web tools write)."""
    h, w = frames[0].shape[:2]
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def clips_run(
    assets: Callable[..., Path],
    tmp_path: Path,
    clips_dir: Path,
    on_alert: Callable[[Alert], None] | None = None,
) -> tuple[list[Alert], Runner]:
    video = blinking_video(tmp_path / "blink.mp4", assets)
    text = config([("cam", video)], assets(MODEL), tmp_path / "a.jsonl", tracking=False)
    text = text.replace("classes: [person]}", "classes: [person], clear_after_s: 0.15}")
    text += f"clips: {{dir: '{clips_dir}', pre_s: 0.2, post_s: 0.2, fps: 10}}\n"
    alerts: list[Alert] = []

    def got(alert: Alert) -> None:
        alerts.append(alert)
        if on_alert is not None:
            on_alert(alert)

    runner = Runner(parse_config(text))
    report = runner.run(threading.Event(), on_alert=got)
    assert report.errors == {} and report.frames == {"cam": 100}
    return alerts, runner


def rule_alerts(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if not a.topic.startswith("health.")]


def clip_of(alert: Alert) -> ClipRef:
    """What a rule alert says became of its incident's clip (every one says, clips being on)."""
    assert isinstance(alert.event, Event) and alert.event.clip is not None
    return alert.event.clip


def health(alerts: list[Alert], kind: str) -> list[HealthEvent]:
    return [a.event for a in alerts if isinstance(a.event, HealthEvent) and a.event.kind == kind]


def assert_named_clips_are_whole(alerts: list[Alert], clips_dir: Path) -> int:
    """Every clip an alert names (and does not say failed) is a non-empty, decodable file;
    no partial file is left. Returns how many clips were named."""
    named = {clip_of(a).file for a in rule_alerts(alerts)} - {None}
    for name in named:
        path = clips_dir / name
        assert path.is_file() and path.stat().st_size > 0, f"alert names {name}: missing/empty"
        with av.open(str(path)) as c:
            assert sum(1 for _ in c.decode(video=0)) >= 1
    assert not list(clips_dir.rglob("*.part"))
    return len(named)


@pytest.mark.assets
def test_a_read_only_clips_folder_fails_alone_and_recovers_when_writable(
    assets: Callable[..., Path], tmp_path: Path, read_only_dir: Callable[[], Path]
) -> None:
    clips_dir = read_only_dir()

    def on_alert(alert: Alert) -> None:  # the operator fixes the mount while the run goes on
        if isinstance(alert.event, HealthEvent) and alert.event.kind == "sink.failing":
            subprocess.run(["mount", "-o", "remount,rw,bind", str(clips_dir)], check=True)

    alerts, _ = clips_run(assets, tmp_path, clips_dir, on_alert)
    rules = rule_alerts(alerts)
    phases = [a.event.phase for a in rules]
    assert phases.count("start") == phases.count("end") == INCIDENTS  # every rule alert went out
    assert health(alerts, "stage.failed") == []  # no crash loop
    failing = health(alerts, "sink.failing")
    assert len(failing) == 1 and failing[0].attributes["sink"] == "clips"
    assert "Read-only file system" in failing[0].reason
    first = clip_of(rules[0])
    assert first.file is None and first.status == "failed"
    recovered = health(alerts, "sink.recovered")
    assert len(recovered) == 1 and recovered[0].attributes["failures"] >= 1
    assert assert_named_clips_are_whole(alerts, clips_dir) >= INCIDENTS - 3


@pytest.mark.assets
def test_a_disk_that_fills_never_leaves_an_alert_naming_a_missing_clip(
    assets: Callable[..., Path], tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    disk = small_disk(1024 * 1024)
    st = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 120 * 1024))
    alerts, _ = clips_run(assets, tmp_path, disk)
    rules = rule_alerts(alerts)
    phases = [a.event.phase for a in rules]
    assert phases.count("start") == phases.count("end") == INCIDENTS
    assert health(alerts, "stage.failed") == []
    written = assert_named_clips_are_whole(alerts, disk)
    states = [clip_of(a) for a in rules if a.event.phase == "end"]
    failed = [s for s in states if s.status == "failed"]
    assert written >= 1 and failed, "some clips fit, then the disk was full"
    assert all(s.file is None and "disk full" in (s.reason or "") for s in failed)
    failing = health(alerts, "sink.failing")
    assert len(failing) == 1 and failing[0].attributes["sink"] == "clips"


def test_a_clip_cut_short_by_a_full_disk_is_not_left_nor_named(
    small_disk: Callable[[int], Path],
) -> None:
    disk = small_disk(64 * 1024)
    st = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 4096))
    events: list[HealthEvent] = []
    rng = np.random.default_rng(0)
    cfg = ClipsConfig(dir=disk, pre_s=1, post_s=2, fps=5)
    rec = ClipRecorder(cfg, "cam1", events.append, min_free_bytes=0)  # room is not checked
    for k in range(60):
        frame = make_frame(k / 15, seq=k, h=360, w=640)
        frame.image[:] = rng.integers(0, 256, frame.image.shape, dtype=np.uint8)  # big frames
        rec.add(frame)
        if k == 20:
            start = make_event(
                rule_id="r",
                kind="intrusion",
                phase="start",
                event_id="e1",
                frame=frame,
                severity="warning",
            )
            clip = with_clip(start, rec).clip
            assert clip is not None and clip.status == "recording"
    rec.close()
    end = make_event(
        rule_id="r",
        kind="intrusion",
        phase="end",
        event_id="e1",
        frame=make_frame(5.0),
        severity="warning",
    )
    clip = with_clip(end, rec).clip
    assert clip is not None and clip.file is None and clip.status == "failed"
    assert "No space left on device" in (clip.reason or "")
    assert list((disk / "cam1").iterdir()) == []  # neither a 0-byte nor a partial file
    assert [e.kind for e in events] == ["sink.failing"]


# --- sources ------------------------------------------------------------------------------------


def two_sources(tmp_path: Path, bad: Path) -> str:
    good = write_mp4(tmp_path / "good.mp4", moving_square_frames(30))
    model = make_yolox_model(tmp_path / "tiny.onnx")
    return config(
        [("good", good), ("bad", bad)],
        model,
        tmp_path / "alerts.jsonl",
        ", class_names: [person, car]",
    ).replace("classes: [person]", "classes: []")


def test_an_unreadable_source_ends_alone_and_the_other_runs_to_its_end(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    alerts: list[Alert] = []
    runner = Runner(parse_config(two_sources(tmp_path, bad)))  # does not open the sources
    report = runner.run(threading.Event(), on_alert=alerts.append)
    assert report.frames.get("good") == 30 and "bad" not in report.frames
    assert set(report.errors) == {"bad"} and "bad.mp4" in report.errors["bad"]
    failed = health(alerts, "source.failed")
    assert [e.source_id for e in failed] == ["bad"] and failed[0].severity == "critical"
    assert any(a.event.source_id == "good" for a in rule_alerts(alerts))


def test_lookout_run_exits_non_zero_after_processing_the_good_source(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video\n" * 500)
    cfg = tmp_path / "two.yaml"
    cfg.write_text(two_sources(tmp_path, bad))
    done = subprocess.run(
        [*LOOKOUT, "run", str(cfg), "--quiet", "--no-reload"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "source bad" in done.stderr and "bad.mp4" in done.stderr
    assert "Traceback" not in done.stderr
    lines = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert any(x["data"].get("sensors") == ["good"] for x in lines)  # processed first


def truncated(tmp_path: Path, frames: int = 60) -> Path:
    rng = np.random.default_rng(3)  # noise: every frame about as big, so half is half
    images = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(frames)]
    whole = write_mp4(tmp_path / "whole.mp4", images, faststart=True)
    cut = tmp_path / "cut.mp4"
    with cut.open("wb") as out:  # the second half lost, as by a copy cut short
        subprocess.run(
            ["head", "-c", str(whole.stat().st_size // 2), str(whole)], stdout=out, check=True
        )
    return cut


def test_a_truncated_file_ends_with_frames_read_and_expected(tmp_path: Path) -> None:
    cut = truncated(tmp_path)
    model = make_yolox_model(tmp_path / "tiny.onnx")
    text = config([("cut", cut)], model, tmp_path / "a.jsonl", ", class_names: [person, car]")
    alerts: list[Alert] = []
    report = Runner(parse_config(text)).run(threading.Event(), on_alert=alerts.append)
    assert 10 <= report.frames["cut"] < 60  # what there was, processed
    assert "ends early" in report.errors["cut"] and "of 60 frames" in report.errors["cut"]
    [event] = health(alerts, "source.truncated")
    assert event.attributes["frames_expected"] == 60
    assert report.frames["cut"] <= event.attributes["frames_read"] < 60


def test_lookout_run_exits_non_zero_on_a_truncated_file(tmp_path: Path) -> None:
    cut = truncated(tmp_path)
    model = make_yolox_model(tmp_path / "tiny.onnx")
    done = subprocess.run(
        [
            *LOOKOUT,
            "run",
            "--source",
            str(cut),
            "--model",
            str(model),
            "--class-names",
            "person,car",
            "--fast",
            "--quiet",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "ends early" in done.stderr and "of 60 frames" in done.stderr


def test_a_damaged_file_logs_a_few_lines_not_one_per_corrupt_packet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (96, 128, 3), dtype=np.uint8) for _ in range(120)]
    path = write_mp4(tmp_path / "damaged.mp4", frames, faststart=True)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    noise = rng.integers(0, 256, len(data) // 4, dtype=np.uint8).tobytes()
    data[middle : middle + len(noise)] = noise
    path.write_bytes(bytes(data))  # bytes overwritten in the middle; the index still whole
    src = FileSource(FileSourceConfig(id="dmg", path=path, rate="max"))
    with caplog.at_level(logging.WARNING):
        src.open()
        delivered = 0
        while src.read() is not None:
            delivered += 1
        src.close()
    assert src.stats.corrupt_packets >= 10 and delivered >= 60
    lines = [r for r in caplog.records if r.name.startswith("engine.sources")]
    assert 1 <= len(lines) <= 3, [r.getMessage() for r in lines]
    assert f"{src.stats.corrupt_packets} corrupt packets skipped in" in lines[-1].getMessage()


def test_a_truncated_file_on_a_cluster_worker_still_ends_its_incidents(tmp_path: Path) -> None:
    """A cluster worker reads a truncated file to its early end: the incidents its frames
    opened end (as in the single-box runner), and the hub hears `source.truncated`. Before,
    the worker's SourceError path skipped the stream's end, leaving every incident open."""
    import time

    from engine.cluster.hub import Hub
    from engine.cluster.worker import SourceWorker
    from engine.config import Config

    cut = truncated(tmp_path)
    model = make_yolox_model(tmp_path / "m.onnx")
    cfg = Config.model_validate(
        {
            "site": "s",
            "sources": [{"id": "cut", "type": "file", "path": str(cut), "rate": "max"}],
            "detector": {"model": str(model), "class_names": ["a", "b"], "conf": 0.05},
            "zones": [
                {"id": "z", "source": "cut", "polygon": [[0, 0], [128, 0], [128, 96], [0, 96]]}
            ],
            "rules": [{"type": "zone_presence", "id": "p", "zone": "z"}],
            "outputs": [{"type": "jsonl", "path": str(tmp_path / "alerts.jsonl")}],
        }
    )
    hub = Hub(cfg)
    hub.start()
    worker = SourceWorker(cfg, "cut", hub, "node-a")
    worker.start()
    deadline = time.monotonic() + 120
    while not worker.status().done:
        assert time.monotonic() < deadline, "the worker never delivered its records"
        time.sleep(0.05)
    open_after = hub.status()["sources"]["cut"]["open"]
    hub.close()  # (ends what is still open, as `engine_stopped`: days later on a cluster)
    assert "ends early" in (worker.status().error or "")
    assert open_after == 0, "the worker left its incidents open"
    lines = [json.loads(x) for x in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    phases = [x["data"]["phase"] for x in lines if "phase" in x["data"]]
    kinds = [x["data"].get("kind") for x in lines]
    assert "start" in phases, "the random detector saw nothing: no incident to end"
    assert phases.count("start") == phases.count("end"), phases
    assert all(x["data"].get("attributes", {}).get("reason") != "engine_stopped" for x in lines)
    assert "source.truncated" in kinds


def test_a_source_whose_path_cannot_even_be_checked_ends_alone(tmp_path: Path) -> None:
    """A path the system refuses to look up (a name too long here; a folder without search
    permission for a non-root user): before, the OSError escaped the source's worker thread,
    so the run ended with no error for it (exit 0) and no `source.failed`."""
    bad = tmp_path / ("x" * 300 + ".mp4")
    alerts: list[Alert] = []
    report = Runner(parse_config(two_sources(tmp_path, bad))).run(
        threading.Event(), on_alert=alerts.append
    )
    assert report.frames.get("good") == 30
    assert set(report.errors) == {"bad"} and "cannot read video" in report.errors["bad"]
    assert [e.source_id for e in health(alerts, "source.failed")] == ["bad"]
