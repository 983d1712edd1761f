"""YAML files validated by pydantic models, with error reports people can act on.

Every problem becomes one line: `file:line: field.path: expected ..., got ...`. Used for the
engine's config and the simulator's scenarios alike.
"""

from __future__ import annotations

import os
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError

from engine.errors import ConfigError
from engine.redact import redact

__all__ = [
    "LIMITS",
    "CrossFieldError",
    "YamlLimits",
    "bounded_repr",
    "dotted",
    "format_validation_error",
    "load_yaml",
    "parse_yaml_model",
    "read_text",
    "union_tags",
]

M = TypeVar("M", bound=BaseModel)
Loc = tuple[int | str, ...]


@dataclass(frozen=True, slots=True)
class YamlLimits:
    """What a YAML file may hold before it is refused unread.

    PyYAML shares one object for every use of an anchor, so an alias bomb (`b: [*a, *a, ...]`,
    nine levels of nine) is a few hundred bytes and a few dozen objects; what blows up is every
    consumer that walks the structure (pydantic's validation, error messages), to which each
    alias is a full copy. So the composer counts values as the consumers will see them, aliases
    expanded, and stops at `max_values`.

    Attributes:
        max_bytes: largest file read.
        max_values: scalars, lists and mappings, each alias counted as all it stands for.
        max_depth: deepest nesting of lists and mappings.
        max_int_digits: longest integer literal (Python refuses to parse > 4300 digits).
        max_problems: validation problems reported one per line; the rest are counted.
    """

    max_bytes: int = 1 << 20
    max_values: int = 200_000
    max_depth: int = 64
    max_int_digits: int = 64
    max_problems: int = 50


LIMITS = YamlLimits()


class CrossFieldError(ValueError):
    """Problems that involve several fields, each with its own location in the file."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{dotted(loc)}: {msg}" for loc, msg in problems))
        self.problems = problems


def union_tags(annotated: Any, key: str = "type") -> list[str]:
    """The discriminator values (`key`) an Annotated discriminated union accepts."""
    members = get_args(get_args(annotated)[0]) or (get_args(annotated)[0],)
    return [get_args(m.model_fields[key].annotation)[0] for m in members]


def read_text(path: Path, max_bytes: int = LIMITS.max_bytes) -> str:
    """A file's text, or ConfigError naming it (unreadable, too large, not UTF-8).

    Args:
        path: the file.
        max_bytes: refuse larger files without reading them.
    """
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            # read one byte past the limit: a file that grows meanwhile (or a device) is caught
            data = f.read(max_bytes + 1) if size <= max_bytes else b""
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if size > max_bytes or len(data) > max_bytes:
        shown = _size(size) if size > max_bytes else f"more than {_size(max_bytes)}"
        raise ConfigError(
            f"{path}: the file is {shown}; a config file may be at most {_size(max_bytes)}"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)") from None


def _size(n: int) -> str:
    if n < 1 << 10:
        return f"{n} bytes"
    if n < 1 << 20:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n / (1 << 20):.1f} MiB"


class _Refused(yaml.YAMLError):
    """Well-formed YAML beyond a limit."""

    def __init__(self, problem: str, mark: Any) -> None:  # a yaml Mark (pure or C) or None
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses structures beyond `YamlLimits` while composing.

    Every node's expanded size (itself plus its children's, an alias counting as the node it
    names) is computed once, when the node is complete, so the count costs one pass over the
    text however often aliases repeat: the bomb is refused before anything walks it.
    """

    def __init__(self, stream: str, limits: YamlLimits) -> None:
        super().__init__(stream)
        self._limits = limits
        self._sizes: dict[int, int] = {}
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None and id(target) not in self._sizes:
                raise _Refused(
                    f"alias *{event.anchor} is used inside the value it names (a recursive "
                    "structure is no config)",
                    event.start_mark,
                )
        self._depth += 1
        try:
            if self._depth > self._limits.max_depth:
                raise _Refused(
                    f"nested more than {self._limits.max_depth} levels deep", event.start_mark
                )
            composed = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        assert composed is not None  # None only at the end of the stream
        node: yaml.Node = composed
        size = self._sizes.get(id(node))
        if size is None:
            size = 1 + sum(int(self._sizes.get(id(c), 1)) for c in _children(node))
            self._sizes[id(node)] = size
        if size > self._limits.max_values:
            raise _Refused(
                f"this value holds more than {self._limits.max_values} values, aliases counted "
                "each time they are used (an alias bomb?): refused",
                event.start_mark,
            )
        return node

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > self._limits.max_int_digits:
            raise _Refused(
                f"an integer of {len(node.value)} characters (at most "
                f"{self._limits.max_int_digits})",
                node.start_mark,
            )
        return int(super().construct_yaml_int(node))


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml(text: str, name: str, limits: YamlLimits = LIMITS) -> tuple[yaml.Node | None, Any]:
    """Compose and construct YAML text within `limits`.

    Args:
        text: the YAML.
        name: what to call the file in messages.
        limits: what the text may hold.

    Returns:
        The composed node tree (for line numbers) and the Python data.

    Raises:
        ConfigError: `file:line:column: problem` for invalid YAML or YAML beyond a limit.
    """
    if len(text) > limits.max_bytes:  # characters >= bytes / 4: a cheap first bound
        raise ConfigError(
            f"{name}: {_size(len(text))} of text; a config may be at most {_size(limits.max_bytes)}"
        )
    loader = _BoundedLoader(text, limits)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = getattr(exc, "problem", None) or str(exc)
        what = "" if isinstance(exc, _Refused) else "invalid YAML: "
        raise ConfigError(f"{where}: {what}{problem}") from None
    finally:
        loader.dispose()
    return node, data


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
    node, data = load_yaml(text, name)
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
    lines: list[str] = []
    errors = exc.errors(include_url=False)
    for err in errors:
        if len(lines) >= LIMITS.max_problems:
            break
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
            lines.append(
                f"{where}: {dotted((*loc, key))}: required field is missing "
                f"(expected one of {accepted})"
            )
            continue
        if err["type"] == "union_tag_invalid":
            key = str(ctx.get("discriminator", "'type'")).strip("'")
            lines.append(
                f"{where}: {dotted((*loc, key))}: expected one of "
                f"{ctx.get('expected_tags')}, got {_short(ctx.get('tag'))}"
            )
            continue
        if err["type"] == "string_pattern_mismatch" and ctx.get("pattern") in meaning:
            msg = f"expected {meaning[ctx['pattern']]}"
        msg = msg.replace("Value error, ", "")
        msg = msg.replace("Input should be ", "expected ").replace("String should ", "expected to ")
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "int_parsing_size":
            msg = f"expected an integer within this setting's range, got {_short(err['input'])}"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field (not one of the settings this section accepts)"
        elif "input" in err and err["type"] not in ("value_error", "assertion_error"):
            msg += f", got {_short(err['input'])}"
        lines.append(f"{where}: {dotted(loc) or '(top level)'}: {msg}")
    if len(lines) >= LIMITS.max_problems and len(errors) > len(lines):
        lines.append(f"{name}: ... and more problems ({len(errors)} in all); fix these first")
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


class _BoundedRepr(reprlib.Repr):
    """repr() that looks at a bounded part of a value, strings redacted before they are cut
    (a cut could otherwise split a URL's credentials from the `@` that marks them)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdeque = 6
        self.maxdict = 4
        self.maxstring = 60
        self.maxlong = 40
        self.maxother = 60

    def repr_str(self, x: str, level: int) -> str:
        return super().repr_str(redact(x[: self.maxstring * 4]), level)

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 4 * self.maxlong:  # str(int) is quadratic, and refused > 4300 digits
            return f"<an integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        # reprlib sorts every key first; a config mapping is shown in its own order
        if level <= 0:
            return "{...}" if x else "{}"
        shown = list(x.items())[: self.maxdict]
        items = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}" for k, v in shown]
        more = ", ..." if len(x) > self.maxdict else ""
        return "{" + ", ".join(items) + more + "}"


_REPR = _BoundedRepr()


def bounded_repr(value: Any, limit: int = 80) -> str:
    """repr() of `value` in at most `limit` characters, credentials redacted; its cost is
    bounded too (only the first items of a long list, the first levels of a deep one are
    looked at), so a huge value cannot stall an error message.

    >>> bounded_repr(list(range(10**6)))
    '[0, 1, 2, 3, 4, 5, ...]'
    """
    text = redact(_REPR.repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: Any) -> str:
    return bounded_repr(value)
