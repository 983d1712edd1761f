"""Faults made for real: a small tmpfs that fills up, a read-only mount.

Both need mount(2) (root, as on CI and the developers' machines); where it is refused the test
is skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _mount(args: list[str]) -> str | None:
    """Run mount; None on success, else why it failed."""
    if os.geteuid() != 0:
        return "mounting needs root"
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else done.stderr.strip() or f"mount {args} failed"


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """`small_disk(bytes)` -> a folder on a tmpfs of that size (a disk that fills up)."""
    mounted: list[Path] = []

    def make(size_bytes: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        why = _mount(["-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(where)])
        if why:
            pytest.skip(f"cannot mount a tmpfs for a full disk: {why}")
        mounted.append(where)
        return where

    yield make
    for where in reversed(mounted):
        _umount(where)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Callable[[], Path]]:
    """`read_only_dir()` -> an existing, empty folder on a read-only bind mount (root cannot
    write there either, unlike a chmod'ed one)."""
    mounted: list[Path] = []

    def make() -> Path:
        where = tmp_path / f"ro{len(mounted)}"
        where.mkdir()
        why = _mount(["--bind", str(where), str(where)]) or _mount(
            ["-o", "remount,ro,bind", str(where)]
        )
        if why:
            _umount(where)
            pytest.skip(f"cannot make a read-only mount: {why}")
        mounted.append(where)
        return where

    yield make
    for where in reversed(mounted):
        _umount(where)
