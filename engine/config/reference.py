"""The configuration reference, generated from the schema: each key of each section with its
type, default, bounds and description, as Markdown.

The README's reference is this output, between two marker comments; a test regenerates it and
fails when the two differ, so the documented defaults are the ones the models hold.

Usage:
    python -m engine.config.reference                    # print the reference
    python -m engine.config.reference --write README.md  # replace it between the markers

Example:
    >>> "| `site` |" in render()
    True
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from engine.config.base import ID_PATTERN, Id
from engine.config.root import PATTERN_MEANING, Config
from engine.config.values import GroundPoint, LatLonPoint, Point

__all__ = ["END", "START", "render", "replace_between", "sections"]

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"

# Value types whose structure says less than their name.
_NAMED: list[tuple[Any, str]] = [
    (Point, "[x, y] px"),
    (GroundPoint, "[east, north] m"),
    (LatLonPoint, "[lat, lon] deg"),
    (Id, "id"),
]
_SCALARS: dict[Any, str] = {
    bool: "bool",
    int: "int",
    float: "number",
    str: "string",
    Path: "path",
    type(None): "none",
}
# annotated-types' constraints: (kind, its attribute, the comparison it makes)
_VALUE_ENDS = ((Ge, "ge", ">="), (Gt, "gt", ">"), (Le, "le", "<="), (Lt, "lt", "<"))
_SIZE_ENDS = ((MinLen, "min_length", ">="), (MaxLen, "max_length", "<="))
# What Markdown would take for the start of an HTML tag (`<=` and `< 0.9` it leaves alone).
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
# Fields listed first in their section (how a reader tells the variants apart); then the rest
# in the order the model declares them, which groups related keys.
_FIRST = ("type", "id")


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config models an annotation holds (a section, a list of them, a union), in order."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _tag(model: type[BaseModel]) -> str | None:
    """The `type` value a variant of a discriminated union is chosen by, if it has one."""
    field = model.model_fields.get("type")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return str(get_args(field.annotation)[0])


def sections(root: type[BaseModel] = Config) -> list[tuple[str, type[BaseModel]]]:
    """Every model reachable from `root`, once each, with the key path it is first met at.

    Depth-first in field order, so a section is followed by the sections it holds. Paths use
    `[]` for list items (`sources[]`, `sources[].motion`); variants share their list's path.
    """
    out: list[tuple[str, type[BaseModel]]] = []
    seen: set[type[BaseModel]] = set()

    def visit(path: str, model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        out.append((path, model))
        for name, field in _ordered(model):
            for sub in _models_in(field.annotation):
                visit(_key(path, name, field.annotation), sub)

    visit("", root)
    return out


def _key(path: str, name: str, annotation: Any) -> str:
    """The path of a field's value: `sources[].motion`, `zones[]` for a list's items."""
    key = f"{path}.{name}" if path else name
    lists = [a for a in (annotation, *get_args(annotation)) if get_origin(a) is list]
    return key + "[]" if lists else key


def _ordered(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    fields = list(model.model_fields.items())
    first = [(n, f) for key in _FIRST for n, f in fields if n == key]
    return first + [(n, f) for n, f in fields if n not in _FIRST]


def _type_name(annotation: Any) -> str:
    for alias, name in _NAMED:
        if annotation == alias:
            return name
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        models = _models_in(annotation)
        if models and all(_tag(m) for m in models):
            return "one of type: " + ", ".join(str(_tag(m)) for m in models)
        return " | ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list[{_type_name(args[0])}]"
    if origin is tuple:
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    raise TypeError(f"the reference has no name for the type {annotation!r}")


def _field_type(field: FieldInfo) -> str:
    # an `Id` field has its constraints moved into the field: its pattern says what it is
    if any(getattr(m, "pattern", None) == ID_PATTERN for m in field.metadata):
        return "id"
    return _type_name(field.annotation)


def _num(value: object) -> str:
    if isinstance(value, float) and abs(value) >= 1e6:
        return f"{value:g}"
    return str(value)


def _range(low: str | None, high: str | None, unit: str = "") -> str:
    """`1 to 8` when both ends are inclusive, else the ends as comparisons."""
    if low and high and low.startswith(">= ") and high.startswith("<= "):
        return f"{low[3:]} to {high[3:]}{unit}"
    return ", ".join(p + unit for p in (low, high) if p)


def _ends(
    field: FieldInfo, kinds: tuple[tuple[type, str, str], ...]
) -> tuple[str | None, str | None]:
    """The lower and upper end of a field's range as comparisons (`>= 0`), or None."""
    ends: dict[bool, str] = {}
    for m in field.metadata:
        for kind, attribute, op in kinds:
            if isinstance(m, kind):
                ends[op.startswith(">")] = f"{op} {_num(getattr(m, attribute))}"
    return ends.get(True), ends.get(False)


def _bounds(field: FieldInfo) -> str:
    unit = " characters" if _field_type(field) in ("string", "id") else " items"
    shortest, longest = _ends(field, _SIZE_ENDS)
    size = _range(shortest, longest, unit)
    if shortest and not longest:
        size = f"at least {shortest[3:]}{unit.rstrip('s') if shortest == '>= 1' else unit}"
    patterns = [getattr(m, "pattern", None) for m in field.metadata]
    meanings = [PATTERN_MEANING.get(p, f"matches `{p}`") for p in patterns if p is not None]
    low, high = _ends(field, _VALUE_ENDS)
    parts = [_range(low, high), size, *meanings]
    return ", ".join(p for p in parts if p)


def _value(value: Any) -> str:
    """A default as it would be written in YAML (flow style)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, BaseModel):
        return "its defaults"
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    return _value(field.get_default(call_default_factory=True))


def _cell(text: str) -> str:
    """One table cell: one line, `|` escaped, and a tag-like `<` outside code spans escaped
    (`<site>` would be read as an HTML tag and vanish)."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else _TAG_START.sub("&lt;", p) for i, p in enumerate(parts))


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _rows(path: str, model: type[BaseModel]) -> Iterator[str]:
    yield "| key | type | default | bounds | description |"
    yield "|---|---|---|---|---|"
    for name, field in _ordered(model):
        description = field.description or ""
        if _models_in(field.annotation):
            description += f" See `{_key(path, name, field.annotation)}`."
        cells = (
            _code(name),
            _code(_field_type(field)),
            _code(_default(field)),
            _bounds(field),
            description,
        )
        yield "| " + " | ".join(_cell(c) for c in cells) + " |"


def _title(path: str, model: type[BaseModel]) -> str:
    if not path:
        return "The top level"
    tag = _tag(model)
    return f"`{path}`" + (f", `type: {tag}`" if tag is not None and path.endswith("[]") else "")


def render(root: type[BaseModel] = Config) -> str:
    """The reference of `root` and every section it holds, as Markdown (ends with a newline)."""
    blocks: list[str] = []
    for path, model in sections(root):
        intro = " ".join(inspect.cleandoc(model.__doc__ or "").split())
        blocks.append(f"### {_title(path, model)}\n\n{intro}\n\n" + "\n".join(_rows(path, model)))
    return "\n\n".join(blocks) + "\n"


def replace_between(text: str, reference: str) -> str:
    """`text` with what stands between the START and END markers replaced by `reference`.

    Raises:
        ValueError: the markers are missing, repeated, or out of order.
    """
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"expected one {START} line and one {END} line after it")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    return f"{head}{START}\n\n{reference}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reference, or write it into a Markdown file between the markers."""
    parser = argparse.ArgumentParser(prog="python -m engine.config.reference")
    parser.add_argument("--write", type=Path, metavar="FILE", help="e.g. README.md")
    args = parser.parse_args(argv)
    reference = render()
    if args.write is None:
        sys.stdout.write(reference)
        return 0
    before = args.write.read_text(encoding="utf-8")
    after = replace_between(before, reference)
    if after != before:
        args.write.write_text(after, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
