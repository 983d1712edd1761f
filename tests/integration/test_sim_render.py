"""`lookout sim render`: real files that decode back to the simulated poses and truth."""

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import av
import pytest

from engine.config import FileSourceConfig
from engine.sim import load_scenario, render_scenario
from engine.sources import FileSource
from engine.telemetry import dji_srt, misb0601

SCENARIOS = Path(__file__).resolve().parents[2] / "configs" / "scenarios"


@pytest.fixture(scope="module")
def drone_render(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("drone")
    render_scenario(load_scenario(SCENARIOS / "dumping_drone.yaml"), out, max_frames=45)
    return out


def test_klv_decodes_back_to_the_simulated_pose(drone_render: Path) -> None:
    truth = json.loads((drone_render / "truth.json").read_text())
    frames = truth["frames"]
    with av.open(str(drone_render / truth["video"])) as c:
        assert c.format.name == "mpegts"
        video_pts = [f.pts for f in c.decode(video=0)]
    with av.open(str(drone_render / truth["video"])) as c:
        packets = [(p.pts, bytes(p)) for p in c.demux(c.streams.data[0]) if p.size]
    assert len(packets) == len(frames) == len(video_pts) == 45
    # each KLV packet carries its frame's timestamp
    assert [p[0] for p in packets] == sorted(video_pts)
    for (_, raw), fr in zip(packets, frames, strict=True):
        klv = misb0601.decode(raw)
        tel = fr["telemetry"]
        utc = datetime.fromisoformat(fr["utc"].replace("Z", "+00:00"))
        assert klv["time_us"] == int(utc.timestamp() * 1_000_000)
        assert klv["platform"] == "Lookout-Sim M30T"
        assert klv["sensor_lat_deg"] == pytest.approx(tel["sensor_lat_deg"], abs=1e-7)
        assert klv["sensor_lon_deg"] == pytest.approx(tel["sensor_lon_deg"], abs=1e-7)
        assert klv["sensor_alt_m"] == pytest.approx(tel["sensor_alt_m"], abs=0.31)
        assert klv["platform_heading_deg"] == pytest.approx(tel["platform_heading_deg"], abs=0.006)
        assert klv["platform_pitch_deg"] == pytest.approx(tel["platform_pitch_deg"], abs=0.001)
        assert klv["platform_roll_deg"] == pytest.approx(tel["platform_roll_deg"], abs=0.002)
        assert klv["sensor_rel_elevation_deg"] == pytest.approx(-90.0, abs=1e-6)
        assert klv["hfov_deg"] == pytest.approx(tel["hfov_deg"], abs=0.003)
        assert klv["frame_center_lat_deg"] == pytest.approx(tel["frame_center_lat_deg"], abs=1e-7)


def test_srt_decodes_back_to_the_simulated_pose(drone_render: Path) -> None:
    truth = json.loads((drone_render / "truth.json").read_text())
    records, problems = dji_srt.parse_srt((drone_render / truth["srt"]).read_text())
    assert problems == [] and len(records) == 45
    for rec, fr in zip(records, truth["frames"], strict=True):
        tel = fr["telemetry"]
        assert rec.start_s == pytest.approx(fr["pts_s"], abs=1e-3)
        assert rec.values["latitude"] == pytest.approx(tel["sensor_lat_deg"], abs=1e-7)
        assert rec.values["longitude"] == pytest.approx(tel["sensor_lon_deg"], abs=1e-7)
        assert rec.values["rel_alt"] == pytest.approx(tel["height_above_ground_m"], abs=1e-3)
        assert rec.values["abs_alt"] == pytest.approx(tel["sensor_alt_m"], abs=1e-3)
        assert rec.values["gb_pitch"] == pytest.approx(-90.0, abs=0.01)


def test_rendered_videos_are_sources_with_truth_per_frame(
    drone_render: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fixed"
    res = render_scenario(load_scenario(SCENARIOS / "crowd_station_gate.yaml"), out, max_frames=80)
    assert res.video.suffix == ".mp4" and res.srt is None
    for video, n in ((res.video, 80), (drone_render / "drone7.ts", 45)):
        src = FileSource(FileSourceConfig(id="sim", path=video, rate="max"))
        src.open()
        frames = []
        while (f := src.read()) is not None:
            frames.append(f)
        assert len(frames) == n and frames[0].image.shape == (720, 1280, 3)
    truth = json.loads(res.truth.read_text())
    assert truth["scenario"] == "crowd_station_gate" and len(truth["frames"]) == 80
    # 80 frames = 5.33 s: the gathering (from 5 s) has begun, cut at the end; no dispersal yet
    (event,) = truth["events"]
    assert event["kind"] == "crowd_gathering" and event["end_s"] == pytest.approx(80 / 15, abs=1e-3)
    obj = truth["frames"][10]["objects"][0]
    assert set(obj) == {
        "actor_id",
        "class",
        "box_xyxy",
        "visibility",
        "world_m",
        "foot_px",
        "speed_mps",
    }
    assert set(truth["frames"][0]["camera"]) == {"K", "R", "position_m", "width", "height"}


def test_cli_renders_every_scenario_with_training_frames(tmp_path: Path) -> None:
    for scenario in sorted(SCENARIOS.glob("*.yaml")):
        out = tmp_path / scenario.stem
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "engine.cli.main",
                "sim",
                "render",
                str(scenario),
                "-o",
                str(out),
                "--max-frames",
                "4",
                "--frames",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert "truth:" in proc.stdout
        images = sorted((out / "images").glob("*.jpg"))
        labels = sorted((out / "labels").glob("*.txt"))
        assert [p.stem for p in images] == [p.stem for p in labels] == ["000000", "000002"]
        for label in labels:
            for line in label.read_text().splitlines():
                cls, *box = line.split()
                assert 0 <= int(cls) < 5 and all(0.0 <= float(v) <= 1.0 for v in box)
