"""Where the files shipped with Lookout are: the one place the engine looks them up.

The data is the demo pipeline (`pipelines/demo.yaml`), the model cards and the bundled model
(`models/*.yaml`, `models/lookout_sim_yolo11n.onnx`) and the simulator's scenarios
(`configs/scenarios/*.yaml`). In a source checkout (also the editable install `make setup` makes)
they are the repository's own folders. A wheel carries copies of the same folders, in the same
layout, inside the package under `engine/bundled/` (setup.py's build step puts them there); they
are found with `importlib.resources`, wherever the wheel was installed. Relative paths inside the
demo pipeline (`../models/...`) therefore hold in both.

    >>> demo_pipeline().name
    'demo.yaml'
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from engine.errors import EngineError

__all__ = [
    "data_root",
    "demo_pipeline",
    "model_cards_dir",
    "scenarios_dir",
    "source_checkout",
]

_PACKAGE_DIR = "bundled"  # engine/bundled/ in a wheel; absent from a checkout


def source_checkout() -> Path | None:
    """The source checkout this `engine` package was imported from, or None when installed.

    A checkout is the folder holding `engine/` whose `pyproject.toml` is Lookout's; a wheel's
    `engine/` sits in site-packages, beside no such file.
    """
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "lookout"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def data_root() -> Path:
    """The folder holding `models/`, `pipelines/` and `configs/scenarios/`.

    Raises EngineError when this is neither a checkout nor a wheel carrying its data (an
    install from a zip, or a wheel built without setup.py's step).
    """
    checkout = source_checkout()
    if checkout is not None:
        return checkout
    bundled = importlib.resources.files("engine").joinpath(_PACKAGE_DIR)
    if not isinstance(bundled, Path) or not bundled.is_dir():
        raise EngineError(
            f"Lookout's data files (demo pipeline, models, scenarios) are not installed: "
            f"expected {bundled}; reinstall the package from a wheel built by its setup.py"
        )
    return bundled


def model_cards_dir() -> Path:
    """The folder of model cards (*.yaml), which also holds the bundled model's ONNX file."""
    return data_root() / "models"


def demo_pipeline() -> Path:
    """The pipeline `lookout demo` runs."""
    return data_root() / "pipelines" / "demo.yaml"


def scenarios_dir() -> Path:
    """The simulator's ready-made scenarios (*.yaml)."""
    return data_root() / "configs" / "scenarios"
