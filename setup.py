"""Build step: a wheel carries the repository's data folders inside the package.

Everything else about the package is declared in pyproject.toml. The demo pipeline, the model
cards with the bundled model, and the simulator's scenarios stay where they are in the repository
(`pipelines/`, `models/`, `configs/scenarios/`); a (non-editable) build copies them, in the same
layout, to `engine/bundled/`, where `engine.resources` finds them with `importlib.resources`.
An editable install and a plain checkout read the folders in place instead.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = {
    "models": ("*.yaml", "*.onnx", "README.md"),
    "pipelines": ("*.yaml", "README.md"),
    "configs/scenarios": ("*.yaml",),
}
"""Folder of the repository -> the patterns of its files that the wheel carries."""

HERE = Path(__file__).resolve().parent


def bundled_files() -> list[Path]:
    """The data files, relative to the repository root."""
    return sorted(
        path.relative_to(HERE)
        for folder, patterns in BUNDLED.items()
        for pattern in patterns
        for path in (HERE / folder).glob(pattern)
        if path.is_file()
    )


class BuildPyWithData(build_py):
    """`build_py`, then the data files into `engine/bundled/` of the build (not when editable)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for rel in bundled_files():
            target = Path(self.build_lib, "engine", "bundled", rel)
            self.mkpath(str(target.parent))
            self.copy_file(str(HERE / rel), str(target))

    def get_source_files(self) -> list[str]:
        """The sources, and the data files too, so that an sdist carries them."""
        return [*super().get_source_files(), *(str(rel) for rel in bundled_files())]


setup(cmdclass={"build_py": BuildPyWithData})
