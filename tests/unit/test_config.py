"""Config validation: every problem reported with file, line, field path, expected and given."""

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- bounded loading (issue 20, finding 12) -----------------------------------------------------


def test_alias_bomb_is_refused_at_the_line_where_it_explodes() -> None:
    levels = ['  - &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    levels += [f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    (line,) = errors_of(GOOD.replace("zones:\n", "zones:\n" + "\n".join(levels) + "\n"))
    # l5 (line 15) holds 9**6 strings: the first to cross the 200000 limit
    assert line.startswith("cfg.yaml:15:5: this value holds more than 200000 values"), line


def test_aliases_within_the_limit_still_work() -> None:
    text = GOOD.replace(
        "    polygon: [[0, 0], [10, 0], [10, 10]]\n",
        "    polygon: &p [[0, 0], [10, 0], [10, 10]]\n  - {id: z2, source: cam1, polygon: *p}\n",
    )
    cfg = parse_config(text)
    assert cfg.zones[1].polygon == cfg.zones[0].polygon


def test_integer_literal_too_long_is_a_config_error_not_a_traceback() -> None:
    (line,) = errors_of(
        GOOD.replace("  model: m.onnx", "  model: m.onnx\n  max_det: " + "9" * 5000)
    )
    assert line.startswith("cfg.yaml:9:12: an integer of 5000 characters"), line


def test_non_utf8_and_oversized_files(tmp_path: Path) -> None:
    bad = tmp_path / "latin.yaml"
    bad.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin\.yaml: not UTF-8 text \(byte \d+"):
        load_config(bad)
    big = tmp_path / "big.yaml"
    big.write_text(GOOD + "#" * (1 << 20))
    with pytest.raises(ConfigError, match=r"big\.yaml: the file is 1\.0 MiB; a config file may"):
        load_config(big)


def test_error_formatting_looks_at_a_bounded_part_of_the_value() -> None:
    """A wrong value that is huge through shared references (how PyYAML builds aliases) is
    named by a bounded repr: the message costs the same whatever the value's size."""
    import tracemalloc

    from pydantic import ValidationError

    from engine.config import Config
    from engine.yamlconf import format_validation_error

    value: object = ["lol"] * 9
    for _ in range(7):  # 9**8 strings once expanded, 43 M
        value = [value] * 9
    source = {"type": "file", "id": "a", "path": "x"}
    data = {"site": value, "sources": [source], "detector": {"model": "m.onnx"}}
    with pytest.raises(ValidationError) as info:
        Config.model_validate(data)
    tracemalloc.start()
    text = format_validation_error(info.value, "cfg.yaml", data=data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert text.startswith("cfg.yaml: site: expected a valid string, got [[[["), text
    assert len(text) < 200 and "..." in text, text
    assert peak < 1 << 20, peak  # repr() of the whole value would take gigabytes


def test_many_problems_are_capped() -> None:
    poly = "[" + ", ".join(["[.nan, 0]"] * 500) + "]"
    lines = errors_of(GOOD.replace("[[0, 0], [10, 0], [10, 10]]", poly))
    assert len(lines) == 51, len(lines)
    assert lines[-1] == "cfg.yaml: ... and more problems (500 in all); fix these first"


# --- values checked for what they mean (issue 20, finding 13) -----------------------------------

BAD_VALUES = [
    (
        ("[[0, 0], [10, 0], [10, 10]]", "[[0, 0], [.nan, 0], [10, 10]]"),
        "cfg.yaml:12: zones[0].polygon[1][0]: expected a finite number, got nan",
    ),
    (
        ("tcp://127.0.0.1:5556", "tcp://127.0.0.1:65536"),
        "cfg.yaml:20: outputs[0].endpoint: expected a port from 0 to 65535, got 65536 "
        "(in tcp://127.0.0.1:65536)",
    ),
    (
        ("tcp://127.0.0.1:5556", "tcp://127.0.0.1:5556\n    sndhwm: 100000000000000000000"),
        "cfg.yaml:21: outputs[0].sndhwm: expected less than or equal to 2147483647, "
        "got 100000000000000000000",
    ),
    (
        ("    type: file\n    path: clip.mp4", "    type: drone\n    url: udp://0.0.0.0:99999"),
        "cfg.yaml:6: sources[0].url: expected a port from 0 to 65535, got 99999 "
        "(in udp://0.0.0.0:99999)",
    ),
    (
        ("site: s1", "site: s1\ngeo: {lat: -91, lon: 0}"),
        "cfg.yaml:3: geo.lat: expected greater than or equal to -90, got -91",
    ),
    (
        ("site: s1", "site: s1\nmetrics: {listen: 'localhost:70000'}"),
        "cfg.yaml:3: metrics.listen: expected a port from 0 to 65535, got 70000 "
        "(in localhost:70000)",
    ),
    (
        (
            "    path: clip.mp4",
            "    path: clip.mp4\n    calibration: {homography: [[0, 0, 0], [0, 0, 0], [0, 0, 0]]}",
        ),
        "cfg.yaml:7: sources[0].calibration: homography: expected an invertible 3x3 matrix",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), BAD_VALUES)
def test_values_are_checked_for_what_they_mean(edit: tuple[str, str], expected: str) -> None:
    assert edit[0] in GOOD
    lines = errors_of(GOOD.replace(*edit))
    assert any(x.startswith(expected) for x in lines), lines


@given(x=st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=200, deadline=None)
def test_a_vertex_is_accepted_exactly_when_finite_and_in_range(x: float) -> None:
    from engine.config.values import PIXEL_LIMIT

    text = GOOD.replace("[[0, 0], [10, 0], [10, 10]]", f"[[0, 0], [10, 0], [{x!r}, 10]]")
    text = text.replace("nan", ".nan").replace("inf", ".inf")
    if math.isfinite(x) and abs(x) <= PIXEL_LIMIT:
        assert parse_config(text).zones[0].polygon[2] == (x, 10.0)
    else:
        (line,) = errors_of(text)
        assert line.startswith("cfg.yaml:12: zones[0].polygon[2][0]: expected "), line


@given(lat=st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=100, deadline=None)
def test_a_latitude_is_accepted_exactly_when_finite_and_in_range(lat: float) -> None:
    text = GOOD.replace("site: s1", f"site: s1\ngeo: {{lat: {lat!r}, lon: 7}}")
    text = text.replace("nan", ".nan").replace("inf", ".inf")
    if math.isfinite(lat) and -90 <= lat <= 90:
        assert parse_config(text).geo.lat == lat  # type: ignore[union-attr]
    else:
        (line,) = errors_of(text)
        assert line.startswith("cfg.yaml:3: geo.lat: expected "), line


def test_a_homography_far_from_the_site_origin_is_accepted() -> None:
    """Metres per pixel beside a translation of kilometres (a camera 3 km from the origin) is
    invertible; before, the determinant was compared with the largest entry cubed and such a
    calibration was refused as singular."""
    far = "[[0.01, 0, 3000], [0, 0.02, -2000], [0, 0.00001, 1]]"
    text = GOOD.replace(
        "    path: clip.mp4", f"    path: clip.mp4\n    calibration: {{homography: {far}}}"
    )
    cfg = parse_config(text, name="cfg.yaml")
    assert cfg.sources[0].calibration is not None
