"""InfluxDB line protocol: one line per point, as the Influx sink sends and spools it.

The same bytes influxdb-client's ``Point.to_line_protocol`` produces (tests compare the two), without
importing that library, which costs ~11 MB and is only needed for the v2 write API:

- tags and fields in key order; a tag with an empty key or value is left out;
- measurement: comma, space, newline, tab and carriage return escaped; tag keys, tag values and field
  keys: those and the equals sign; a tag value ending in a backslash gets a space after it;
- floats as ``str`` with a trailing ``.0`` dropped (still floats to the server: no ``i``); NaN and
  infinities left out; integers with an ``i`` suffix; booleans ``true``/``false``; strings in
  double quotes with backslash and double quote escaped;
- the timestamp as an integer in the write precision (s, ms, us or ns since the epoch).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

from storage.records import Point

Precision = Literal["s", "ms", "us", "ns"]
FieldValue = float | int | bool | str

PRECISION: Precision = "ms"  # what the sink writes and declares to the server

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000}
_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


def timestamp(time: datetime, precision: Precision = PRECISION) -> int:
    """``time`` (timezone-aware) as an integer count of ``precision`` units since the epoch."""
    if precision == "ns":
        return (time - _EPOCH) // timedelta(microseconds=1) * 1000
    # the same rounding as storage.records.to_ms, so a line's time matches the ring and SQLite
    return round(time.timestamp() * _PER_SECOND[precision])


def _field(value: FieldValue) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = str(value)
        return text.removesuffix(".0")
    if isinstance(value, str):
        return '"' + value.translate(_STRING) + '"'
    raise TypeError(f"line protocol field values are float, int, bool or str, got {type(value).__name__}")


def encode_line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    time: datetime,
    precision: Precision = PRECISION,
) -> str:
    """One line; ``ValueError`` when no field is left to write (all of them NaN or infinite)."""
    parts = [measurement.translate(_MEASUREMENT)]
    for raw_key, raw_value in sorted(tags.items()):
        key, value = raw_key.translate(_KEY), raw_value.translate(_KEY)
        if key and value:
            parts.append(f",{key}={value} " if value.endswith("\\") else f",{key}={value}")
    encoded = [
        f"{key.translate(_KEY)}={text}"
        for key, value in sorted(fields.items())
        if (text := _field(value)) is not None
    ]
    if not encoded:
        raise ValueError(f"{measurement} point at {time.isoformat()} has no finite field to write")
    parts.append(f" {','.join(encoded)} {timestamp(time, precision)}")
    return "".join(parts)


def encode(point: Point, precision: Precision = PRECISION) -> str:
    """The point as one line of line protocol."""
    return encode_line(point.measurement, point.tags, point.fields, point.time, precision)
