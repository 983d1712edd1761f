"""YAML files validated by pydantic models, with error reports people can act on.

Every problem becomes one line: `file:line: field.path: expected ..., got ...`. Used for the
engine's config and the simulator's scenarios alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError

from engine.errors import ConfigError
from engine.redact import redact

__all__ = [
    "CrossFieldError",
    "dotted",
    "format_validation_error",
    "parse_yaml_model",
    "read_text",
    "union_tags",
]

M = TypeVar("M", bound=BaseModel)
Loc = tuple[int | str, ...]


class CrossFieldError(ValueError):
    """Problems that involve several fields, each with its own location in the file."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{dotted(loc)}: {msg}" for loc, msg in problems))
        self.problems = problems


def union_tags(annotated: Any, key: str = "type") -> list[str]:
    """The discriminator values (`key`) an Annotated discriminated union accepts."""
    members = get_args(get_args(annotated)[0]) or (get_args(annotated)[0],)
    return [get_args(m.model_fields[key].annotation)[0] for m in members]


def read_text(path: Path) -> str:
    """A file's text, or ConfigError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def parse_yaml_model(
    text: str,
    cls: type[M],
    name: str,
    tags: dict[str, list[str]] | None = None,
    patterns: dict[str, str] | None = None,
) -> M:
    """Validate YAML text against `cls`.

    Args:
        text: the YAML.
        cls: the pydantic model of the whole file.
        name: what to call the file in messages.
        tags: for each section holding a discriminated union, the values its tag accepts.
        patterns: regex -> what it means, for pattern mismatches.

    Raises:
        ConfigError: one line per problem.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise ConfigError(f"{name}: expected a mapping of settings at the top, got {got}")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, name, node, data, tags, patterns)) from None


def format_validation_error(
    exc: ValidationError,
    name: str,
    node: yaml.Node | None = None,
    data: Any = None,
    tags: dict[str, list[str]] | None = None,
    patterns: dict[str, str] | None = None,
) -> str:
    """One line per pydantic error: `file:line: field.path: expected ..., got ...`.

    Args:
        exc: the validation error.
        name: the file's name.
        node: the composed YAML (for line numbers), if any.
        data: the validated data (to tell discriminator tags from field names).
        tags: union sections and their accepted tags (for "missing type" messages).
        patterns: regex -> what it means, for pattern mismatches.
    """
    meaning = patterns or {}
    lines = []
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx", {})
        cross = ctx.get("error")
        if isinstance(cross, CrossFieldError):
            for loc, msg in cross.problems:
                lines.append(f"{_where(name, node, loc)}: {dotted(loc)}: {msg}")
            continue
        loc = _clean_loc(err["loc"], data)
        where = _where(name, node, loc)
        msg = err["msg"]
        if err["type"] == "union_tag_not_found":
            section = next((p for p in loc if isinstance(p, str)), "")
            accepted = ", ".join(repr(t) for t in (tags or {}).get(section, []))
            key = str(ctx.get("discriminator", "'type'")).strip("'")
            lines.append(f"{where}: {dotted((*loc, key))}: required field is missing "
                         f"(expected one of {accepted})")  # fmt: skip
            continue
        if err["type"] == "union_tag_invalid":
            key = str(ctx.get("discriminator", "'type'")).strip("'")
            lines.append(f"{where}: {dotted((*loc, key))}: expected one of "
                         f"{ctx.get('expected_tags')}, got {ctx.get('tag')!r}")  # fmt: skip
            continue
        if err["type"] == "string_pattern_mismatch" and ctx.get("pattern") in meaning:
            msg = f"expected {meaning[ctx['pattern']]}"
        msg = msg.replace("Value error, ", "")
        msg = msg.replace("Input should be ", "expected ").replace("String should ", "expected to ")
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field (not one of the settings this section accepts)"
        elif "input" in err and err["type"] not in ("value_error", "assertion_error"):
            msg += f", got {_short(err['input'])}"
        lines.append(f"{where}: {dotted(loc) or '(top level)'}: {msg}")
    return "\n".join(lines)


def _where(name: str, node: yaml.Node | None, loc: Loc) -> str:
    line = _line_of(node, loc)
    return f"{name}:{line}" if line else name


def _clean_loc(loc: Loc, data: Any) -> Loc:
    """Drop the discriminator tags pydantic inserts into locations (`sources.0.file.path`):
    a part naming no key of the mapping there, but equal to that mapping's tag value."""
    out: list[int | str] = []
    cur = data
    for part in loc:
        tag_values = (cur.get("type"), cur.get("kind")) if isinstance(cur, dict) else ()
        if isinstance(part, str) and part not in cur and part in tag_values:
            continue
        out.append(part)
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            cur = cur[part]
        else:
            cur = None
    return tuple(out)


def _child(node: yaml.Node | None, part: int | str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == part:
                return v
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None


def _line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    """Line number (1-based) of the deepest node on `loc` that exists in the YAML."""
    best = node
    cur = node
    for part in loc:
        cur = _child(cur, part)
        if cur is None:
            break
        best = cur
    return best.start_mark.line + 1 if best is not None else None


def dotted(loc: Loc) -> str:
    """('sources', 0, 'path') -> 'sources[0].path'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _short(value: Any) -> str:
    text = redact(repr(value))
    return text if len(text) <= 80 else text[:77] + "..."
