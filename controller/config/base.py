"""The base of every configuration table: unknown keys are errors, values frozen, no booleans for numbers."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        """``poll_interval_s = true`` is a mistake, not 1 second (pydantic would take it as 1)."""
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if isinstance(value, bool) and field is not None and not _admits_bool(field.annotation):
                    raise ValueError(f"{name}: a number or text, not the boolean {str(value).lower()}")
        return data


def _admits_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    return any(_admits_bool(arg) for arg in get_args(annotation))
