"""Config validation: every problem reported with file, line, field path, expected and given."""

from pathlib import Path

import pytest

from engine.config import load_config, parse_config
from engine.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
version: 1
site: s1
sources:
  - id: cam1
    type: file
    path: clip.mp4
detector:
  model: m.onnx
zones:
  - id: z1
    source: cam1
    polygon: [[0, 0], [10, 0], [10, 10]]
rules:
  - id: r1
    type: zone_presence
    zone: z1
    classes: [person]
outputs:
  - type: zmq
    endpoint: tcp://127.0.0.1:5556
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, name="cfg.yaml")
    return str(info.value).splitlines()


def test_example_config_is_valid() -> None:
    cfg = load_config(REPO / "configs" / "example.yaml")
    assert cfg.sources[0].id == "gate-cam"
    assert cfg.rules[0].classes == ["person"]


def test_good_config_and_relative_paths(tmp_path: Path) -> None:
    f = tmp_path / "sub" / "c.yaml"
    f.parent.mkdir()
    f.write_text(GOOD)
    cfg = load_config(f)
    assert cfg.sources[0].path == f.parent / "clip.mp4"
    assert cfg.detector.model == f.parent / "m.onnx"
    assert cfg.detector.conf == 0.25


def test_invalid_yaml_names_line_and_column() -> None:
    (line,) = errors_of("sources: [\n  - id: a\n")
    assert line.startswith("cfg.yaml:") and "invalid YAML" in line


def test_wrong_enum_value_names_field_line_expected_and_given() -> None:
    (line,) = errors_of(GOOD.replace("    type: file\n", "    type: file\n    rate: fast\n"))
    assert line == "cfg.yaml:6: sources[0].rate: expected 'native' or 'max', got 'fast'"


def test_out_of_bounds_value() -> None:
    (line,) = errors_of(GOOD.replace("  model: m.onnx", "  model: m.onnx\n  conf: 1.5"))
    assert line == "cfg.yaml:9: detector.conf: expected less than or equal to 1, got 1.5"


def test_unknown_and_missing_fields_all_reported() -> None:
    text = GOOD.replace("    path: clip.mp4\n", "    pth: clip.mp4\n")
    lines = errors_of(text)
    assert "cfg.yaml:4: sources[0].path: required field is missing" in lines
    assert any(line.startswith("cfg.yaml:6: sources[0].pth: unknown field") for line in lines), (
        lines
    )


def test_duplicate_ids_and_dangling_references() -> None:
    text = GOOD.replace("    zone: z1", "    zone: nowhere") + (
        "  - type: jsonl\n    path: a.jsonl\n"
    )
    text = text.replace("rules:\n", "rules:\n  - id: r1\n    type: zone_presence\n    zone: z1\n")
    lines = errors_of(text)
    assert any("rules[1].id: expected a unique id, got 'r1' again" in x for x in lines), lines
    assert any(
        "rules[1].zone: expected one of the zone ids ['z1'], got 'nowhere'" in x for x in lines
    ), lines


def test_degenerate_polygon_and_bad_ids() -> None:
    lines = errors_of(GOOD.replace("[[0, 0], [10, 0], [10, 10]]", "[[0, 0], [5, 5], [10, 10]]"))
    assert len(lines) == 1 and "zones[0].polygon" in lines[0] and "non-zero area" in lines[0]
    lines = errors_of(GOOD.replace("id: cam1", "id: cam.1").replace("source: cam1", "source: x"))
    assert (
        "cfg.yaml:4: sources[0].id: expected letters, digits, '-' and '_' only, got 'cam.1'"
        in lines
    )


def test_empty_file_and_non_mapping() -> None:
    assert errors_of("") == [
        "cfg.yaml: expected a mapping of settings at the top, got an empty file"
    ]
    assert errors_of("- a\n- b\n") == [
        "cfg.yaml: expected a mapping of settings at the top, got list"
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_demo_pipeline_is_valid_and_uses_the_bundled_model() -> None:
    cfg = load_config(REPO / "pipelines" / "demo.yaml")
    assert cfg.detector.model == REPO / "pipelines" / ".." / "models" / "lookout_sim_yolo11n.onnx"
    assert {s.id for s in cfg.sources} == {"drone7", "gatecam2", "pole3"}
    assert {r.type for r in cfg.rules} == {"dumping", "crowd"}
    assert cfg.geo is not None and cfg.clips is not None


LIVE = GOOD.replace(
    """  - id: cam1
    type: file
    path: clip.mp4
""",
    """  - id: cam1
    type: rtsp
    url: rtsp://admin:pa55word@10.0.0.7:554/Streaming/Channels/101
    read_timeout_s: 2
  - id: uav1
    type: drone
    url: feeds/patrol.ts
    srt: feeds/patrol.SRT
""",
)


def test_live_sources_parse_and_drone_files_resolve(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(LIVE)
    cfg = load_config(tmp_path / "c.yaml")
    cam, uav = cfg.sources
    assert cam.type == "rtsp" and cam.transport == "tcp" and cam.read_timeout_s == 2.0
    assert uav.type == "drone" and uav.is_file
    assert uav.url == str(tmp_path / "feeds" / "patrol.ts")
    assert uav.srt == tmp_path / "feeds" / "patrol.SRT"
    assert "pa55word" not in repr(cam) and "rtsp://***@10.0.0.7" in repr(cam)
    assert cam.url.startswith("rtsp://admin:pa55word@")  # the engine still has it


def test_live_source_errors_never_echo_credentials() -> None:
    bad = LIVE.replace("rtsp://admin", "http://admin")
    bad = bad.replace("read_timeout_s: 2", "read_timeout_s: 0")
    lines = errors_of(bad)
    assert any("sources[0].url: expected an rtsp:// or rtsp" in line for line in lines), lines
    assert any("sources[0].read_timeout_s" in line for line in lines), lines
    assert not [line for line in lines if "pa55word" in line]
