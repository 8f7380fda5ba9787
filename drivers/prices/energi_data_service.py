"""Energi Data Service (Energinet, Denmark): the ``DayAheadPrices`` dataset, 15-minute prices.

``GET https://api.energidataservice.dk/dataset/DayAheadPrices?start=..&end=..&filter={"PriceArea":["DK1"]}``
answers ``{"total": n, "dataset": "DayAheadPrices", "records": [{TimeUTC, TimeDK, PriceArea,
DayAheadPriceDKK, DayAheadPriceEUR}]}``; ``TimeUTC`` is the period start without an offset.
``start``/``end`` are Danish local times. (The hourly ``Elspotprices`` dataset ended 2025-09-30.)
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from drivers.http import HttpClient
from drivers.prices.base import (
    HttpBase,
    SourceConfigBase,
    as_list,
    field,
    http_get,
    load_json,
    number,
    utc_instant,
)
from drivers.prices.types import MarketSlot, PriceDataError, PriceUnavailableError
from drivers.prices.validation import validate_day

DANISH_TIMEZONE = ZoneInfo("Europe/Copenhagen")
PERIOD = timedelta(minutes=15)


class EnergiDataServiceConfig(SourceConfigBase):
    """Danish day-ahead prices for price area DK1 (west) or DK2 (east)."""

    type: Literal["energi_data_service"] = "energi_data_service"
    area: Literal["DK1", "DK2"] = "DK1"
    currency: Literal["DKK", "EUR"] = "DKK"
    base_url: HttpBase = "https://api.energidataservice.dk"


def parse_records(body: str, *, area: str, currency: str, where: str) -> list[MarketSlot]:
    document = load_json(body, where)
    records = as_list(field(document, "records", where), "records", where)
    price_field = f"DayAheadPrice{currency}"
    slots: list[MarketSlot] = []
    for index, record in enumerate(records):
        at = f"{where} records[{index}]"
        record_area = field(record, "PriceArea", at)
        if record_area != area:
            raise PriceDataError(f"{at}: PriceArea is {record_area!r}, requested {area!r}")
        start = utc_instant(field(record, "TimeUTC", at), "TimeUTC", at, naive_is_utc=True)
        if start.minute % 15 or start.second:
            raise PriceDataError(f"{at}: TimeUTC {record['TimeUTC']!r} is not on a quarter-hour")
        price = number(field(record, price_field, at), price_field, at)
        slots.append(MarketSlot(start=start, end=start + PERIOD, price=price / 1000.0, currency=currency))
    return slots


class EnergiDataServiceSource:
    def __init__(self, config: EnergiDataServiceConfig, http: HttpClient) -> None:
        self.config = config
        self.name = config.name or "energi_data_service"
        self.timezone = DANISH_TIMEZONE
        self.cache_key: str | None = f"eds_{config.area}_{config.currency}"
        self._http = http

    async def fetch_day(self, day: date) -> tuple[MarketSlot, ...]:
        params = {
            "start": f"{day.isoformat()}T00:00",
            "end": f"{(day + timedelta(days=1)).isoformat()}T00:00",
            "filter": json.dumps({"PriceArea": [self.config.area]}, separators=(",", ":")),
            "sort": "TimeUTC ASC",
            "limit": "0",
        }
        response = await http_get(
            self._http, self.name, f"{self.config.base_url}/dataset/DayAheadPrices", params=params
        )
        where = f"{self.name} {day.isoformat()}"
        slots = parse_records(
            response.text, area=self.config.area, currency=self.config.currency, where=where
        )
        if not slots:
            raise PriceUnavailableError(f"{where}: no prices published for {self.config.area} yet")
        return validate_day(slots, day=day, tz=self.timezone, source=self.name)
