"""Prices from a local CSV file: for tests, replays and markets without an API.

Header row with ``start`` and ``price`` columns, optionally ``end`` and ``export_price``.
``start``/``end`` are ISO 8601 with a UTC offset (``2025-10-26T02:00+01:00`` or ``...Z``);
without ``end`` every row lasts ``resolution_min``. Prices are per ``unit`` in ``currency``.
"""

from __future__ import annotations

import asyncio
import csv
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from drivers.days import day_window
from drivers.prices.base import SourceConfigBase, number, utc_instant
from drivers.prices.types import (
    MarketSlot,
    PriceDataError,
    PriceFetchError,
    PriceUnavailableError,
)
from drivers.prices.validation import validate_day

MAX_ROWS = 200_000


class CsvConfig(SourceConfigBase):
    """A CSV file of prices; ``timezone`` sets the market day's boundaries."""

    type: Literal["csv"] = "csv"
    path: Path
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    unit: Literal["kWh", "MWh"] = "kWh"
    resolution_min: Literal[15, 30, 60] = 15
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def parse_csv(text: str, *, currency: str, unit: str, resolution: timedelta, where: str) -> list[MarketSlot]:
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    for required in ("start", "price"):
        if required not in columns:
            raise PriceDataError(f"{where}: column {required!r} missing (columns: {', '.join(columns)})")
    scale = 1000.0 if unit == "MWh" else 1.0
    slots: list[MarketSlot] = []
    for line, row in enumerate(reader, start=2):
        if line > MAX_ROWS:
            raise PriceDataError(f"{where}: more than {MAX_ROWS} rows")
        at = f"{where} line {line}"
        start = utc_instant(row["start"], "start", at)
        end = utc_instant(row["end"], "end", at) if row.get("end") else start + resolution
        if end <= start:
            raise PriceDataError(f"{at}: end {row.get('end')!r} is not after start {row['start']!r}")
        export_text = row.get("export_price")
        export = number(export_text, "export_price", at) / scale if export_text else None
        price = number(row["price"], "price", at) / scale
        slots.append(MarketSlot(start=start, end=end, price=price, currency=currency, export_price=export))
    return slots


class CsvSource:
    def __init__(self, config: CsvConfig) -> None:
        self.config = config
        self.name = config.name or "csv"
        self.timezone = ZoneInfo(config.timezone)
        self.cache_key: str | None = None

    async def fetch_day(self, day: date) -> tuple[MarketSlot, ...]:
        try:
            text = await asyncio.to_thread(self.config.path.read_text, encoding="utf-8")
        except OSError as exc:
            raise PriceFetchError(f"{self.name}: cannot read {self.config.path}: {exc.strerror}") from exc
        where = f"{self.name} {self.config.path.name}"
        slots = parse_csv(
            text,
            currency=self.config.currency,
            unit=self.config.unit,
            resolution=timedelta(minutes=self.config.resolution_min),
            where=where,
        )
        start, end = day_window(day, self.timezone)
        in_day = [slot for slot in slots if start <= slot.start < end]
        if not in_day:
            raise PriceUnavailableError(f"{where}: no prices for {day.isoformat()}")
        return validate_day(in_day, day=day, tz=self.timezone, source=self.name)
