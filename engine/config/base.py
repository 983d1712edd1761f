"""The one base model of every config section, and the identifier type they share.

Every section forbids unknown keys (a typo is an error, not a silently ignored key), is frozen
(a config is a value: a reload builds a new one) and refuses NaN and infinity (they pass no
comparison, so a zone or bound holding one would silently never match).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ID_PATTERN", "ConfigModel", "Id"]


class ConfigModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are frozen and finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


ID_PATTERN = r"^[A-Za-z0-9_-]+$"
Id = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="Identifier: letters, digits, '-' and '_' (it becomes part of topics).",
    ),
]
