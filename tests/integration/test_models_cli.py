"""`lookout models list | verify | export` on the bundled model and the shared COCO models."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.detect.cards import load_card, load_cards
from engine.errors import ConfigError
from tests.support.assets import assets_dir

REPO = Path(__file__).resolve().parents[2]
LOOKOUT = [sys.executable, "-m", "engine.cli.main"]
SHARED = [
    "yolo11n_coco_320",
    "yolo11n_coco_320_dynbatch",
    "yolo11n_coco_640_dynbatch",
    "yolov8n_coco_640",
    "yolox_nano_416",
]


def lookout(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LOOKOUT, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def test_every_supported_model_has_a_valid_card() -> None:
    cards = {c.name: c for c in load_cards(REPO / "models")}
    assert set(cards) == {"lookout_sim_yolo11n", *SHARED}
    assert cards["lookout_sim_yolo11n"].class_names == ("person", "car", "truck", "debris")
    assert cards["yolox_nano_416"].input.channel_order == "bgr"
    assert all(c.license and c.source for c in cards.values())


def test_a_broken_card_names_its_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (REPO / "models" / "coco-yolov8n-640.yaml").read_text()
    bad.write_text(text.replace("channel_order: rgb", "channel_order: rgbx"))
    with pytest.raises(ConfigError, match=r"bad\.yaml: not a model card: input\.channel_order"):
        load_card(bad)


def test_list_shows_each_card_and_where_its_weights_are() -> None:
    r = lookout("models", "list", env={"LOOKOUT_MODEL_PATH": str(assets_dir() / "models")})
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert set(lines) == {"lookout_sim_yolo11n", *SHARED}
    assert str(REPO / "models" / "lookout_sim_yolo11n.onnx") in lines["lookout_sim_yolo11n"]
    for name in SHARED:
        there = (assets_dir() / "models" / f"{name}.onnx").is_file()
        assert ("not here" in lines[name]) != there


def test_verify_bundled_model_passes() -> None:
    r = lookout("models", "verify", "models/lookout_sim_yolo11n.onnx")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sha256 matches card lookout_sim_yolo11n" in r.stdout
    assert "dry run: batch 1:" in r.stdout and "batch 2:" in r.stdout
    assert r.stdout.strip().endswith("verified")


@pytest.mark.assets
@pytest.mark.parametrize("name", SHARED)
def test_verify_shared_model_against_its_card(name: str, assets: object) -> None:
    path = assets(f"models/{name}.onnx")  # type: ignore[operator]
    r = lookout("models", "verify", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"sha256 matches card {name}" in r.stdout


def test_verify_against_the_wrong_card_lists_every_difference() -> None:
    r = lookout("models", "verify", "models/lookout_sim_yolo11n.onnx", "--card", "yolox_nano_416")
    assert r.returncode == 1
    fails = [line for line in r.stdout.splitlines() if "FAIL" in line]
    joined = "\n".join(fails)
    for field in ("family", "input.size", "input.channel_order", "input.scale", "input.pad"):
        assert f"{field}: card says" in joined
    assert "classes: card lists 80, the model has 4" in joined


def test_verify_refuses_what_is_not_a_model(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00" * 100)
    r = lookout("models", "verify", str(junk))
    assert r.returncode != 0
    assert "junk.onnx: not a loadable ONNX model" in r.stderr
    assert "Traceback" not in r.stderr


def test_export_without_ultralytics_says_exactly_what_to_do() -> None:
    r = lookout("models", "export", "yolo11n_coco_320")
    assert r.returncode != 0
    assert "exporting needs Ultralytics, which is not installed here" in r.stderr
    assert "yolo export model=yolo11n.pt format=onnx imgsz=320" in r.stderr
    r = lookout("models", "export", "lookout_sim_yolo11n")
    assert "it is rebuilt with `make model`" in r.stderr
    r = lookout("models", "export", "nope")
    assert "no model card named 'nope'" in r.stderr
