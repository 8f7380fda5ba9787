"""Pieces every price source shares: the config base, HTTP error mapping, field parsing."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from drivers.http import HttpClient, HttpError, HttpResponse
from drivers.prices.types import PriceDataError, PriceFetchError

SourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
HttpBase = Annotated[str, Field(pattern=r"^https?://[^\s?#]+$")]


class SourceConfigBase(BaseModel):
    """Fields every source has. ``name`` labels the source in status, logs and the cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: SourceName | None = None


async def http_get(
    http: HttpClient,
    source: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    ok_statuses: frozenset[int] = frozenset({200}),
) -> HttpResponse:
    try:
        return await http.get(url, params=params, headers=headers, ok_statuses=ok_statuses)
    except HttpError as exc:
        raise PriceFetchError(f"{source}: {exc}") from exc


def load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PriceDataError(
            f"{where}: response is not valid JSON ({exc.msg} at {exc.pos}): {text[:80]!r}"
        ) from None


def field(record: Any, name: str, where: str) -> Any:
    if not isinstance(record, Mapping):
        raise PriceDataError(f"{where}: expected an object, got {type(record).__name__} {str(record)[:60]!r}")
    if name not in record:
        raise PriceDataError(f"{where}: field {name!r} is missing (fields: {', '.join(map(str, record))})")
    return record[name]


def as_list(value: Any, name: str, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise PriceDataError(f"{where}: {name!r} must be a list, got {type(value).__name__}")
    return value


def number(value: Any, name: str, where: str) -> float:
    """A finite number (JSON number or numeric string); bool and null are errors."""
    if isinstance(value, bool) or value is None:
        raise PriceDataError(f"{where}: {name} must be a number, got {value!r}")
    if isinstance(value, int | float):
        try:
            result = float(value)
        except OverflowError:  # an integer beyond any float
            raise PriceDataError(f"{where}: {name} is out of range: {str(value)[:40]}...") from None
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise PriceDataError(f"{where}: {name} must be a number, got {value!r}") from None
    else:
        raise PriceDataError(f"{where}: {name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(result):
        raise PriceDataError(f"{where}: {name} must be finite, got {value!r}")
    return result


def utc_instant(value: Any, name: str, where: str, *, naive_is_utc: bool = False) -> datetime:
    """Parse an ISO 8601 instant ('Z' or an offset; naive only when ``naive_is_utc``) to UTC."""
    if not isinstance(value, str):
        raise PriceDataError(f"{where}: {name} must be a date-time string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PriceDataError(f"{where}: {name} is not an ISO 8601 date-time: {value!r}") from None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise PriceDataError(f"{where}: {name} has no UTC offset: {value!r}")
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01 with a positive offset
        raise PriceDataError(f"{where}: {name} is out of range: {value!r}") from None
