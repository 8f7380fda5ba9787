"""Nord Pool Data Portal API: day-ahead prices per delivery area (Nordics, Baltics and more).

``GET /api/DayAheadPrices?date=YYYY-MM-DD&market=DayAhead&deliveryArea=SE3&currency=EUR`` answers
JSON with ``multiAreaEntries`` (``deliveryStart``/``deliveryEnd`` in UTC, ``entryPerArea``
{area: price per MWh}) and ``areaStates`` (Final or Preliminary). The delivery day is a CET day;
15-minute entries since 2025-10-01, hourly before. HTTP 204 = not published yet.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

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

DELIVERY_DAY_TIMEZONE = ZoneInfo("Europe/Oslo")  # the CET/CEST day every area's delivery date uses


class NordpoolConfig(SourceConfigBase):
    """Nord Pool day-ahead prices for one delivery area, in one of Nord Pool's currencies."""

    type: Literal["nordpool"] = "nordpool"
    area: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{1,4}$")]
    currency: Literal["EUR", "SEK", "NOK", "DKK", "PLN", "RON", "BGN"] = "EUR"
    base_url: HttpBase = "https://dataportal-api.nordpoolgroup.com/api"


def parse_day_ahead(body: str, *, area: str, currency: str, where: str) -> list[MarketSlot]:
    document = load_json(body, where)
    reported_currency = field(document, "currency", where)
    if reported_currency != currency:
        raise PriceDataError(f"{where}: currency is {reported_currency!r}, requested {currency!r}")
    states: Any = document.get("areaStates") or []
    for state in as_list(states, "areaStates", where):
        areas = as_list(field(state, "areas", where), "areas", where)
        if area in areas and field(state, "state", where) != "Final":
            raise PriceUnavailableError(f"{where}: prices for {area} are {state['state']!r}, not Final yet")
    entries = as_list(field(document, "multiAreaEntries", where), "multiAreaEntries", where)
    slots: list[MarketSlot] = []
    for index, entry in enumerate(entries):
        at = f"{where} entry {index}"
        start = utc_instant(field(entry, "deliveryStart", at), "deliveryStart", at)
        end = utc_instant(field(entry, "deliveryEnd", at), "deliveryEnd", at)
        per_area = field(entry, "entryPerArea", at)
        price = number(field(per_area, area, at), f"entryPerArea.{area}", at)
        if end <= start:
            raise PriceDataError(f"{at}: deliveryEnd {entry['deliveryEnd']!r} is not after deliveryStart")
        slots.append(MarketSlot(start=start, end=end, price=price / 1000.0, currency=currency))
    return slots


class NordpoolSource:
    def __init__(self, config: NordpoolConfig, http: HttpClient) -> None:
        self.config = config
        self.name = config.name or "nordpool"
        self.timezone = DELIVERY_DAY_TIMEZONE
        self.cache_key: str | None = f"nordpool_{config.area}_{config.currency}"
        self._http = http

    async def fetch_day(self, day: date) -> tuple[MarketSlot, ...]:
        params = {
            "date": day.isoformat(),
            "market": "DayAhead",
            "deliveryArea": self.config.area,
            "currency": self.config.currency,
        }
        response = await http_get(
            self._http,
            self.name,
            f"{self.config.base_url}/DayAheadPrices",
            params=params,
            ok_statuses=frozenset({200, 204}),
        )
        where = f"{self.name} {day.isoformat()}"
        if response.status == 204 or not response.text.strip():
            raise PriceUnavailableError(f"{where}: no prices published for {self.config.area} yet")
        slots = parse_day_ahead(
            response.text, area=self.config.area, currency=self.config.currency, where=where
        )
        return validate_day(slots, day=day, tz=self.timezone, source=self.name)
