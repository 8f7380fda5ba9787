"""aWATTar market data (Germany, Austria): EPEX day-ahead prices in EUR/MWh.

``GET https://api.awattar.de/v1/marketdata?start=<ms>&end=<ms>`` (api.awattar.at for Austria)
answers ``{"object": "list", "data": [{start_timestamp, end_timestamp, marketprice, unit}]}``
with epoch milliseconds and ``unit`` "Eur/MWh". An unpublished day is simply absent from data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from drivers.days import day_window
from drivers.http import HttpClient
from drivers.prices.base import HttpBase, SourceConfigBase, as_list, field, http_get, load_json, number
from drivers.prices.types import MarketSlot, PriceDataError, PriceUnavailableError
from drivers.prices.validation import validate_day

COUNTRIES = {
    "de": ("https://api.awattar.de/v1", ZoneInfo("Europe/Berlin")),
    "at": ("https://api.awattar.at/v1", ZoneInfo("Europe/Vienna")),
}


class AwattarConfig(SourceConfigBase):
    """aWATTar market data for Germany (``de``) or Austria (``at``)."""

    type: Literal["awattar"] = "awattar"
    country: Literal["de", "at"] = "de"
    base_url: HttpBase | None = None  # default: the country's public API


def _instant(value: object, name: str, where: str) -> datetime:
    millis = number(value, name, where)
    if millis != int(millis) or millis < 0:
        raise PriceDataError(f"{where}: {name} must be epoch milliseconds, got {value!r}")
    try:
        return datetime.fromtimestamp(millis / 1000.0, tz=UTC)
    except (OverflowError, OSError, ValueError):  # beyond the years a datetime holds
        raise PriceDataError(f"{where}: {name} is out of range: {value!r}") from None


def parse_marketdata(body: str, *, where: str) -> list[MarketSlot]:
    document = load_json(body, where)
    records = as_list(field(document, "data", where), "data", where)
    slots: list[MarketSlot] = []
    for index, record in enumerate(records):
        at = f"{where} data[{index}]"
        unit = field(record, "unit", at)
        if not isinstance(unit, str) or unit.lower() != "eur/mwh":
            raise PriceDataError(f"{at}: unit is {unit!r}, expected 'Eur/MWh'")
        start = _instant(field(record, "start_timestamp", at), "start_timestamp", at)
        end = _instant(field(record, "end_timestamp", at), "end_timestamp", at)
        if end <= start:
            raise PriceDataError(f"{at}: end_timestamp is not after start_timestamp")
        price = number(field(record, "marketprice", at), "marketprice", at)
        slots.append(MarketSlot(start=start, end=end, price=price / 1000.0, currency="EUR"))
    return slots


class AwattarSource:
    def __init__(self, config: AwattarConfig, http: HttpClient) -> None:
        default_url, tz = COUNTRIES[config.country]
        self.config = config
        self.name = config.name or "awattar"
        self.timezone = tz
        self.base_url = config.base_url or default_url
        self.cache_key: str | None = f"awattar_{config.country}"
        self._http = http

    async def fetch_day(self, day: date) -> tuple[MarketSlot, ...]:
        start, end = day_window(day, self.timezone)
        params = {"start": str(int(start.timestamp() * 1000)), "end": str(int(end.timestamp() * 1000))}
        response = await http_get(self._http, self.name, f"{self.base_url}/marketdata", params=params)
        where = f"{self.name} {day.isoformat()}"
        slots = [s for s in parse_marketdata(response.text, where=where) if start <= s.start < end]
        if not slots:
            raise PriceUnavailableError(f"{where}: no prices published yet")
        return validate_day(slots, day=day, tz=self.timezone, source=self.name)
