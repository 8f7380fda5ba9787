"""Octopus Energy Agile (Great Britain): half-hourly retail unit rates in pence/kWh.

``GET /v1/products/{product}/electricity-tariffs/E-1R-{product}-{region}/standard-unit-rates/
?period_from=..Z&period_to=..Z`` answers ``{"count", "next", "previous", "results":
[{value_exc_vat, value_inc_vat, valid_from, valid_to, payment_method}]}``, newest first and
paged through ``next``. Agile rates already include network costs: pair this source with a
tariff without fees (and vat = 0 when ``include_vat`` is true).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import Field
from yarl import URL

from drivers.days import day_window
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

LONDON = ZoneInfo("Europe/London")
MAX_PAGES = 5


class OctopusAgileConfig(SourceConfigBase):
    """An Agile product code (e.g. AGILE-24-10-01) and the region letter of the supply (A..P)."""

    type: Literal["octopus_agile"] = "octopus_agile"
    product: Annotated[str, Field(pattern=r"^AGILE-[A-Z0-9-]+$")] = "AGILE-24-10-01"
    region: Annotated[str, Field(pattern=r"^[A-HJ-NP]$")]
    include_vat: bool = True
    base_url: HttpBase = "https://api.octopus.energy/v1"


def parse_rates(body: str, *, include_vat: bool, where: str) -> tuple[list[MarketSlot], str | None]:
    document = load_json(body, where)
    results = as_list(field(document, "results", where), "results", where)
    following = document.get("next")
    if following is not None and not isinstance(following, str):
        raise PriceDataError(f"{where}: next must be a URL string, got {following!r}")
    value_field = "value_inc_vat" if include_vat else "value_exc_vat"
    slots: list[MarketSlot] = []
    for index, rate in enumerate(results):
        at = f"{where} results[{index}]"
        start = utc_instant(field(rate, "valid_from", at), "valid_from", at)
        valid_to = field(rate, "valid_to", at)
        if valid_to is None:
            raise PriceDataError(f"{at}: valid_to is null: not an Agile half-hourly rate")
        end = utc_instant(valid_to, "valid_to", at)
        if end <= start:
            raise PriceDataError(f"{at}: valid_to {valid_to!r} is not after valid_from")
        pence = number(field(rate, value_field, at), value_field, at)
        slots.append(MarketSlot(start=start, end=end, price=pence / 100.0, currency="GBP"))
    return slots, following or None


class OctopusAgileSource:
    def __init__(self, config: OctopusAgileConfig, http: HttpClient) -> None:
        self.config = config
        self.name = config.name or "octopus_agile"
        self.timezone = LONDON
        vat = "inc" if config.include_vat else "exc"
        self.cache_key: str | None = f"octopus_{config.product}_{config.region}_{vat}"
        self._http = http

    async def fetch_day(self, day: date) -> tuple[MarketSlot, ...]:
        start, end = day_window(day, self.timezone)
        product, region = self.config.product, self.config.region
        url = (
            f"{self.config.base_url}/products/{product}/electricity-tariffs/"
            f"E-1R-{product}-{region}/standard-unit-rates/"
        )
        base = URL(self.config.base_url)
        params: dict[str, str] | None = {
            "period_from": f"{start:%Y-%m-%dT%H:%M:%SZ}",
            "period_to": f"{end:%Y-%m-%dT%H:%M:%SZ}",
            "page_size": "1500",
        }
        where = f"{self.name} {day.isoformat()}"
        slots: list[MarketSlot] = []
        for _ in range(MAX_PAGES):
            response = await http_get(self._http, self.name, url, params=params)
            page, following = parse_rates(response.text, include_vat=self.config.include_vat, where=where)
            slots.extend(page)
            if following is None:
                break
            if URL(following).origin() != base.origin():
                raise PriceDataError(f"{where}: next page leaves {base.origin()}: {following!r}")
            url, params = following, None
        else:
            raise PriceDataError(f"{where}: more than {MAX_PAGES} pages")
        in_day = [slot for slot in slots if start <= slot.start < end]
        if not in_day:
            raise PriceUnavailableError(
                f"{where}: no Agile rates published yet (around 16:00 the day before)"
            )
        return validate_day(in_day, day=day, tz=self.timezone, source=self.name)
