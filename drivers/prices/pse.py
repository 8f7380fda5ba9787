"""Poland: PSE's public reports API (https://api.raporty.pse.pl), 15-minute prices in PLN/MWh.

- ``csdac-pln``: the day-ahead (SDAC) price for Poland, field ``csdac_pln`` - the import side.
- ``rce-pln``: RCE, the market price prosumers' exported energy is settled at, field ``rce_pln``.

Records carry ``dtime`` (local) and ``dtime_utc``, both the END of the 15-minute period
("00:00 - 00:15" has dtime 00:15); on the autumn DST day the repeated local hour is written
"02a:15:00", so only ``dtime_utc`` is used. A day is requested with
``$filter=business_date eq 'YYYY-MM-DD'``; long answers are paged through ``nextLink``.
Tomorrow's prices appear around 13:00-14:00 local; before that the answer is an empty list.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from yarl import URL

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

PSE_TIMEZONE = ZoneInfo("Europe/Warsaw")
PERIOD = timedelta(minutes=15)
MAX_PAGES = 10
REPORT_FIELDS = {"csdac-pln": "csdac_pln", "rce-pln": "rce_pln"}
Report = Literal["csdac-pln", "rce-pln"]


class PseConfig(SourceConfigBase):
    """PSE reports API; ``import_report`` gives the market price, ``export_report`` the export price."""

    type: Literal["pse"] = "pse"
    base_url: HttpBase = "https://api.raporty.pse.pl/api"
    import_report: Report = "csdac-pln"
    export_report: Report | None = "rce-pln"


def parse_report(body: str, *, report: Report, day: date) -> tuple[dict[datetime, float], str | None]:
    """One page of a report: {period start UTC: PLN/kWh} and the next page's URL (None = last)."""
    where = f"pse {report} {day.isoformat()}"
    document = load_json(body, where)
    records = as_list(field(document, "value", where), "value", where)
    next_link: Any = document.get("nextLink")
    if next_link is not None and not isinstance(next_link, str):
        raise PriceDataError(f"{where}: nextLink must be a URL string, got {next_link!r}")
    value_field = REPORT_FIELDS[report]
    prices: dict[datetime, float] = {}
    for index, record in enumerate(records):
        at = f"{where} record {index}"
        business_date = field(record, "business_date", at)
        if business_date != day.isoformat():
            raise PriceDataError(f"{at}: business_date is {business_date!r}, requested {day.isoformat()}")
        end = utc_instant(field(record, "dtime_utc", at), "dtime_utc", at, naive_is_utc=True)
        if end.minute % 15 or end.second or end.microsecond:
            raise PriceDataError(f"{at}: dtime_utc {record['dtime_utc']!r} is not on a quarter-hour")
        start = end - PERIOD
        if start in prices:
            raise PriceDataError(
                f"{at}: duplicated period ending {record['dtime_utc']!r} UTC (dtime {record.get('dtime')!r})"
            )
        prices[start] = number(field(record, value_field, at), value_field, at) / 1000.0
    return prices, next_link or None


class PseSource:
    def __init__(self, config: PseConfig, http: HttpClient) -> None:
        self.config = config
        self.name = config.name or "pse"
        self.timezone = PSE_TIMEZONE
        self.cache_key: str | None = f"pse_{config.import_report}_{config.export_report or 'none'}"
        self._http = http

    async def fetch_day(self, day: date) -> tuple[MarketSlot, ...]:
        imports = await self._report(self.config.import_report, day)
        exports = None
        if self.config.export_report is not None:
            exports = await self._report(self.config.export_report, day)
            if exports.keys() != imports.keys():
                only = sorted(imports.keys() ^ exports.keys())
                raise PriceDataError(
                    f"{self.name} {day}: {self.config.import_report} and {self.config.export_report} "
                    f"cover different periods, e.g. {only[0]:%Y-%m-%dT%H:%MZ} ({len(only)} differ)"
                )
        slots = [
            MarketSlot(
                start=start,
                end=start + PERIOD,
                price=price,
                currency="PLN",
                export_price=None if exports is None else exports[start],
            )
            for start, price in imports.items()
        ]
        return validate_day(slots, day=day, tz=self.timezone, source=self.name)

    async def _report(self, report: Report, day: date) -> dict[datetime, float]:
        base = URL(self.config.base_url)
        url = f"{self.config.base_url}/{report}"
        params: dict[str, str] | None = {"$filter": f"business_date eq '{day.isoformat()}'", "$first": "200"}
        prices: dict[datetime, float] = {}
        for _ in range(MAX_PAGES):
            response = await http_get(self._http, self.name, url, params=params)
            page, next_link = parse_report(response.text, report=report, day=day)
            overlap = prices.keys() & page.keys()
            if overlap:
                raise PriceDataError(f"{self.name} {report} {day}: pages repeat {len(overlap)} period(s)")
            prices.update(page)
            if next_link is None:
                break
            following = URL(next_link)
            if following.origin() != base.origin():
                raise PriceDataError(
                    f"{self.name} {report} {day}: nextLink leaves {base.origin()}: {next_link!r}"
                )
            url, params = next_link, None
        else:
            raise PriceDataError(f"{self.name} {report} {day}: more than {MAX_PAGES} pages")
        if not prices:
            raise PriceUnavailableError(
                f"{self.name}: {report} has no prices for {day.isoformat()} yet "
                "(published around 14:00 the day before)"
            )
        return prices
