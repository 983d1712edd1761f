"""The alert stream's JSON Schema (engine/alerts/schemas/alert-v1.json) and a validator for it.

Every message the publisher sends — alerts and heartbeats — validates against it; the tests
check that of every message they receive. `jsonschema` is needed only to validate (a test
dependency); the schema file itself is for consumers in any language.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_PATH", "load_schema", "validate_message"]

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "alert-v1.json"


@cache
def load_schema() -> dict[str, Any]:
    """The schema as a dict."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def validate_message(message: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless `message` is a valid v1 alert or heartbeat."""
    import jsonschema

    jsonschema.validate(message, load_schema(), format_checker=jsonschema.FormatChecker())
