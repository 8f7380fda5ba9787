"""A static time-of-use price: an energy price per tariff zone, from config.

For fixed-price contracts (Poland's G11/G12/G12w/G13 with a seller's zone prices) and as the
last fallback of a chain when no market source answers. Fees and VAT are added by the tariff,
so ``prices`` are the seller's net energy prices per zone.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import Field

from drivers.days import day_window
from drivers.prices.base import SourceConfigBase
from drivers.prices.types import MarketSlot, PriceDataError
from drivers.prices.validation import validate_day
from drivers.prices.zones import CalendarConfig, ZoneCalendar, ZoneName

SLOT = timedelta(minutes=15)
ZonePrice = Annotated[float, Field(ge=-10.0, le=100.0, allow_inf_nan=False)]


class TouConfig(SourceConfigBase):
    """Energy price per zone (currency/kWh, net); ``calendar`` defaults to the tariff's."""

    type: Literal["tou"] = "tou"
    calendar: CalendarConfig | None = None
    prices: dict[ZoneName, ZonePrice]
    export_prices: dict[ZoneName, ZonePrice] | None = None


def missing_zones(config: TouConfig, zones: tuple[str, ...]) -> list[str]:
    """Zones of the calendar that the config gives no price (or export price) for."""
    missing = [zone for zone in zones if zone not in config.prices]
    if config.export_prices is not None:
        missing += [f"{zone} (export)" for zone in zones if zone not in config.export_prices]
    return missing


class TouSource:
    def __init__(self, config: TouConfig, calendar: ZoneCalendar, *, currency: str) -> None:
        gaps = missing_zones(config, calendar.zones)
        if gaps:
            raise PriceDataError(f"tou: no price for zone(s) {', '.join(gaps)}")
        self.config = config
        self.calendar = calendar
        self.currency = currency
        self.name = config.name or "tou"
        self.timezone = calendar.timezone
        self.cache_key: str | None = None

    async def fetch_day(self, day: date) -> tuple[MarketSlot, ...]:
        start, end = day_window(day, self.timezone)
        slots: list[MarketSlot] = []
        at = start
        while at < end:
            zone = self.calendar.zone_at(at)
            export = None if self.config.export_prices is None else self.config.export_prices[zone]
            slots.append(
                MarketSlot(
                    start=at,
                    end=at + SLOT,
                    price=self.config.prices[zone],
                    currency=self.currency,
                    export_price=export,
                )
            )
            at += SLOT
        return validate_day(slots, day=day, tz=self.timezone, source=self.name)
