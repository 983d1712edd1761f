"""`pip install .` (not editable) works from any folder: the wheel carries the engine and the data
its commands read, and nothing of bench/ or tests/; a checkout runs the benchmarks from anywhere.

`lookout demo` from the installed wheel is tests/integration/test_demo.py."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.wheel import Installed

pytestmark = pytest.mark.slow

DEMO_DATA = {
    "engine/bundled/pipelines/demo.yaml",
    "engine/bundled/models/lookout_sim_yolo11n.onnx",
    "engine/bundled/models/lookout_sim_yolo11n.yaml",
    "engine/bundled/configs/scenarios/dumping_drone.yaml",
    "engine/bundled/configs/scenarios/crowd_station_gate.yaml",
    "engine/bundled/configs/scenarios/dumping_fixed.yaml",
}


def test_the_wheel_carries_the_engine_and_its_data_and_nothing_else(
    installed_lookout: Installed,
) -> None:
    names = zipfile.ZipFile(installed_lookout.wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"engine", "lookout-0.1.0.dist-info"}, tops  # no bench, tests, models
    assert set(names) >= DEMO_DATA
    cards = {n for n in names if n.startswith("engine/bundled/models/") and n.endswith(".yaml")}
    assert {f"engine/bundled/models/{p.name}" for p in (REPO / "models").glob("*.yaml")} == cards
    assert not [n for n in names if n.endswith(".pt")]  # training weights stay in the repository


def test_models_list_from_an_empty_folder_shows_the_installed_bundled_model(
    installed_lookout: Installed, tmp_path: Path
) -> None:
    assert installed_lookout.engine_file(tmp_path).is_relative_to(installed_lookout.site_packages)
    r = installed_lookout.run("models", "list", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert len(rows) == len(list((REPO / "models").glob("*.yaml")))
    bundled = installed_lookout.site_packages / "engine/bundled/models/lookout_sim_yolo11n.onnx"
    assert rows["lookout_sim_yolo11n"].split()[-1] == str(bundled)
    assert list(tmp_path.iterdir()) == []  # wrote nothing here


def test_bench_from_an_install_says_in_one_line_that_it_needs_a_checkout(
    installed_lookout: Installed, tmp_path: Path
) -> None:
    r = installed_lookout.run("bench", "events", "--max-s", "1", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "lookout: error: `lookout bench` needs a source checkout of Lookout (git clone, then "
        "`make setup`): the benchmarks in bench/ are not installed with the package"
    ]
    assert installed_lookout.run("--help", cwd=tmp_path).returncode == 0  # the rest still loads


def test_bench_from_a_checkout_imports_bench_from_that_checkout_whatever_the_folder(
    tmp_path: Path,
) -> None:
    """The checkout beside the imported `engine` goes on sys.path for `lookout bench`: not the
    current folder, and not a name an (older) editable install maps."""
    probe = (
        "from engine.cli.main import build_parser; build_parser(); "
        "import bench, engine, tests.support; "
        "print(bench.__file__); print(engine.__file__); print(tests.support.__file__)"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    bench_file, engine_file, support_file = map(Path, r.stdout.split())
    root = engine_file.parent.parent
    assert bench_file == root / "bench" / "__init__.py"
    assert support_file == root / "tests" / "support" / "__init__.py"
