"""Plain JSON data from the values hemsd publishes and serves: one encoder for MQTT state and the
HTTP API. Datetimes become ISO 8601 in UTC (a naive one is an error), dates ISO dates, enums
their values, dataclasses and mappings objects, sequences arrays, and non-finite floats null
(JSON has no NaN; Home Assistant and the dashboard read null as unknown)."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime


def plain(value: object) -> object:
    """``value`` as JSON-ready data (see the module docstring); TypeError for anything else."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"cannot encode a naive datetime {value!r}: times must be timezone-aware")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    raise TypeError(f"cannot encode a {type(value).__name__} as JSON: {value!r}")


def dumps(value: object) -> str:
    """Compact JSON text of ``value`` (through :func:`plain`)."""
    return json.dumps(plain(value), separators=(",", ":"), allow_nan=False)
