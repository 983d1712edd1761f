"""The README's configuration reference is the schema's: regenerated, it must be what the README
holds, and it must say what the models hold (defaults, bounds, descriptions, every variant)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

from engine.config import Config, ConfigModel, OutputConfig, RuleConfig, SourceConfig
from engine.config.reference import END, START, render, replace_between, sections
from engine.yamlconf import union_tags

REPO = Path(__file__).resolve().parents[2]
FIX = "python -m engine.config.reference --write README.md"


def test_the_readme_holds_the_reference_the_models_generate() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert replace_between(readme, render()) == readme, (
        f"README.md's configuration reference differs from the config models: run `{FIX}` "
        "and commit README.md"
    )


def test_every_key_of_every_section_has_a_description() -> None:
    missing = [
        f"{path or 'top level'}.{name} ({model.__name__})"
        for path, model in sections()
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert missing == [], "keys the reference would leave unexplained: " + ", ".join(missing)


def test_every_variant_of_every_union_has_its_own_section() -> None:
    text = render()
    for path, union in (("sources[]", SourceConfig), ("rules[]", RuleConfig)):
        for tag in union_tags(union):
            assert f"### `{path}`, `type: {tag}`" in text
    for tag in union_tags(OutputConfig):
        assert f"### `outputs[]`, `type: {tag}`" in text


class _Probe(ConfigModel):
    """A section made up for this test."""

    kind: Literal["a", "b"] = Field("b", description="Which one.")
    count: int = Field(3, ge=1, le=8, description="How many | at most.")
    ratio: float = Field(0.5, gt=0, lt=1, description="Of <what> it is.")
    names: list[str] = Field(default_factory=lambda: ["x", "y"], min_length=1, description="N.")
    limit: float | None = Field(None, ge=0, le=1e9, description="Or none.")


class _Outer(ConfigModel):
    """The probe's parent."""

    probe: _Probe = Field(default_factory=_Probe, description="Nested.")
    probes: list[_Probe] = Field(min_length=2, description="Listed.")


def test_a_row_shows_the_models_type_default_bounds_and_description() -> None:
    text = render(_Outer)
    assert "| `count` | `int` | `3` | 1 to 8 | How many \\| at most. |" in text
    assert "| `ratio` | `number` | `0.5` | > 0, < 1 | Of &lt;what> it is. |" in text
    assert "| `kind` | `a \\| b` | `b` |  | Which one. |" in text
    assert "| `names` | `list[string]` | `[x, y]` | at least 1 item | N. |" in text
    assert "| `limit` | `number \\| none` | `none` | 0 to 1e+09 | Or none. |" in text
    assert "| `probe` | `section` | `its defaults` |  | Nested. See `probe`. |" in text
    assert "| `probes` | `list[section]` | `required` | at least 2 items | Listed. See" in text
    # a section used twice is described once, where it is first met
    assert [p for p, _ in sections(_Outer)] == ["", "probe"]


def test_the_command_prints_the_same_reference_whatever_the_hash_seed() -> None:
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-m", "engine.config.reference"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout == render()
    assert "### `tracking`" in out.stdout and "### The top level" in out.stdout


def test_the_command_writes_between_the_markers_and_keeps_the_rest(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text(f"# Title\n\nbefore\n\n{START}\nstale\n{END}\n\nafter\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-m", "engine.config.reference", "--write", str(doc)],
        cwd=REPO,
        env=env,
        check=True,
        timeout=120,
    )
    written = doc.read_text(encoding="utf-8")
    assert written.startswith("# Title\n\nbefore\n\n" + START)
    assert written.endswith(END + "\n\nafter\n")
    assert "stale" not in written and render() in written


def test_a_file_without_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="config-reference:start"):
        replace_between("# no markers here\n", render(Config))
    with pytest.raises(ValueError, match="config-reference:start"):
        replace_between(f"{END}\n{START}\n", "x")
