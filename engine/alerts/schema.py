"""The alert stream's JSON Schema (engine/alerts/schemas/alert-v3.json) and a validator for it.

Every message the publisher sends — alerts and heartbeats — validates against it; the tests
check that of every message they receive. Older versions stay beside it (alert-v1.json,
alert-v2.json): a journal written by an earlier engine replays messages of that version, and
`validate_message` checks each against the version its `dataschema` names. `jsonschema` is
needed only to validate (a test dependency); the schema files themselves are for consumers in
any language.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from engine.alerts.wire import SCHEMA_VERSION

__all__ = ["SCHEMA_PATH", "load_schema", "validate_message"]

SCHEMAS = Path(__file__).resolve().parent / "schemas"
SCHEMA_PATH = SCHEMAS / f"alert-v{SCHEMA_VERSION}.json"
_VERSION = re.compile(r"^lookout\.(?:alert|heartbeat)/v(\d+)$")


@cache
def load_schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The schema of `version` (default: the one this engine writes) as a dict.

    Raises:
        FileNotFoundError: no schema of that version ships with this engine.
    """
    schema: dict[str, Any] = json.loads((SCHEMAS / f"alert-v{version}.json").read_text())
    return schema


def validate_message(message: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless `message` is a valid alert or heartbeat of the
    version its `dataschema` names (the current version when it names none it knows)."""
    import jsonschema

    found = _VERSION.match(str(message.get("dataschema", "")))
    version = int(found.group(1)) if found else SCHEMA_VERSION
    if not (SCHEMAS / f"alert-v{version}.json").exists():
        version = SCHEMA_VERSION
    schema = load_schema(version)
    jsonschema.validate(message, schema, format_checker=jsonschema.FormatChecker())
