"""Lookout as a user gets it: a wheel, installed into a fresh virtualenv, run from any folder.

The wheel is built from a copy of the sources (a build inside the repository would leave
`build/` behind, and setuptools puts whatever an older build left there into the next wheel).
The virtualenv is made without pip and borrows this environment's dependencies through a `.pth`
file, so nothing is downloaded to install the package; the `.pth` files of this environment are
not read there, so an editable install of this checkout is invisible to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Installed", "build_wheel", "copy_sources", "install_wheel"]

_PIP = [sys.executable, "-m", "pip"]
_NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "out",
    "runs",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".*_cache",
    ".hypothesis",
)


@dataclass(frozen=True, slots=True)
class Installed:
    """A wheel and the virtualenv it is installed in."""

    wheel: Path
    venv: Path

    @property
    def lookout(self) -> Path:
        """The `lookout` console script of the virtualenv."""
        return self.venv / "bin" / "lookout"

    @property
    def python(self) -> Path:
        """The virtualenv's interpreter."""
        return self.venv / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        """Where the package went."""
        return next((self.venv / "lib").glob("python3*/site-packages"))

    def run(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """`lookout ARGS` of the virtualenv in `cwd`, with no PYTHONPATH pointing at a checkout."""
        return self._run([str(self.lookout), *args], cwd, env, timeout)

    def engine_file(self, cwd: Path) -> Path:
        """`engine.__file__` as the virtualenv's interpreter imports it from `cwd`."""
        probe = [str(self.python), "-c", "import engine; print(engine.__file__)"]
        done = self._run(probe, cwd, None, 60)
        assert done.returncode == 0, done.stderr[-2000:]
        return Path(done.stdout.strip())

    @staticmethod
    def _run(
        cmd: list[str], cwd: Path, extra: dict[str, str] | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": "", **(extra or {})}
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=timeout,
        )


def copy_sources(repo: Path, dest: Path) -> Path:
    """The checkout without its environments, build leftovers and outputs, at `dest`."""
    shutil.copytree(repo, dest, ignore=_NOT_SOURCES)
    return dest


def build_wheel(source: Path, out: Path) -> Path:
    """`pip wheel --no-deps` of the project at `source`; the wheel's path."""
    build = subprocess.run(
        [*_PIP, "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    return next(out.glob("lookout-*.whl"))


def install_wheel(wheel: Path, venv: Path) -> Installed:
    """A new virtualenv at `venv` with `wheel` installed (not editable) and this environment's
    site-packages for the dependencies."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    installed = Installed(wheel, venv)
    deps = [p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir()]
    (installed.site_packages / "deps.pth").write_text("\n".join(map(str, deps)) + "\n")
    install = subprocess.run(
        [*_PIP, "--python", str(installed.python), "install", "--quiet", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    return installed
