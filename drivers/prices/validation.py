"""Strict checks on one market day of prices; a day that fails is rejected whole.

A valid day covers local midnight to midnight exactly (92/96/100 quarter-hours, 46/48/50 half
hours or 23/24/25 hours), with one resolution, no gaps, no duplicates, finite prices within
the bounds a real market can clear at, and one currency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from drivers.days import day_window
from drivers.prices.types import MarketSlot, PriceDataError

ALLOWED_RESOLUTIONS = (timedelta(minutes=15), timedelta(minutes=30), timedelta(minutes=60))


@dataclass(frozen=True, slots=True)
class PriceBounds:
    """Prices outside [low, high] per kWh are not market prices but unit or parse errors.

    The European day-ahead market clears between -500 and +4000 EUR/MWh (harmonised limits);
    the bounds leave room above that and are converted at rough exchange rates.
    """

    currency: str
    low: float
    high: float


PRICE_BOUNDS: tuple[PriceBounds, ...] = (
    PriceBounds("EUR", -1.0, 10.0),
    PriceBounds("PLN", -5.0, 45.0),
    PriceBounds("GBP", -1.0, 10.0),
    PriceBounds("SEK", -12.0, 115.0),
    PriceBounds("NOK", -12.0, 120.0),
    PriceBounds("DKK", -8.0, 75.0),
    PriceBounds("CHF", -1.0, 10.0),
    PriceBounds("CZK", -25.0, 250.0),
    PriceBounds("HUF", -400.0, 4000.0),
    PriceBounds("RON", -5.0, 50.0),
    PriceBounds("BGN", -2.0, 20.0),
)


def bounds_for(currency: str) -> PriceBounds:
    for bounds in PRICE_BOUNDS:
        if bounds.currency == currency:
            return bounds
    known = ", ".join(b.currency for b in PRICE_BOUNDS)
    raise PriceDataError(f"currency {currency!r} is not supported (known: {known})")


def _at(instant: datetime, tz: ZoneInfo) -> str:
    return f"{instant:%Y-%m-%dT%H:%MZ} ({instant.astimezone(tz):%H:%M%z} local)"


def check_price(value: float, *, currency: str, field: str, where: str) -> float:
    """One price per kWh: finite and within the currency's bounds; returns it unchanged."""
    if not math.isfinite(value):
        raise PriceDataError(f"{where}: {field} is not a finite number: {value!r}")
    bounds = bounds_for(currency)
    if not bounds.low <= value <= bounds.high:
        raise PriceDataError(
            f"{where}: {field} = {value!r} {currency}/kWh is outside the plausible range "
            f"{bounds.low}..{bounds.high} (unit error?)"
        )
    return value


def validate_day(
    slots: Sequence[MarketSlot], *, day: date, tz: ZoneInfo, source: str
) -> tuple[MarketSlot, ...]:
    """Return the day's slots sorted by start, or raise PriceDataError naming the problem."""
    where = f"{source} {day.isoformat()}"
    if not slots:
        raise PriceDataError(f"{where}: no prices in the response")
    ordered = sorted(slots, key=lambda slot: slot.start)
    currency = ordered[0].currency
    resolution = ordered[0].duration
    if resolution not in ALLOWED_RESOLUTIONS:
        raise PriceDataError(
            f"{where}: slot at {_at(ordered[0].start, tz)} lasts {resolution}; expected 15, 30 or 60 minutes"
        )
    day_start, day_end = day_window(day, tz)
    if ordered[0].start < day_start:
        raise PriceDataError(
            f"{where}: prices start at {_at(ordered[0].start, tz)}, before the day ({_at(day_start, tz)})"
        )
    expected = day_start
    for slot in ordered:
        if slot.currency != currency:
            raise PriceDataError(
                f"{where}: mixed currencies: {currency} and {slot.currency} at {_at(slot.start, tz)}"
            )
        if slot.duration != resolution:
            raise PriceDataError(
                f"{where}: slot at {_at(slot.start, tz)} lasts {slot.duration}, "
                f"unlike the first slot of the day ({resolution})"
            )
        if slot.start < expected:
            raise PriceDataError(
                f"{where}: duplicated or overlapping slot at {_at(slot.start, tz)} "
                "(a DST hour counted twice?)"
            )
        if slot.start > expected:
            count = (slot.start - expected) // resolution
            raise PriceDataError(
                f"{where}: {count} slot(s) missing from {_at(expected, tz)} to {_at(slot.start, tz)}"
            )
        at = f"{where} {_at(slot.start, tz)}"
        check_price(slot.price, currency=currency, field="price", where=at)
        if slot.export_price is not None:
            check_price(slot.export_price, currency=currency, field="export_price", where=at)
        expected = slot.end
    if expected < day_end:
        count = (day_end - expected) // resolution
        raise PriceDataError(
            f"{where}: {count} slot(s) missing from {_at(expected, tz)} to the end of the day"
        )
    if expected > day_end:
        raise PriceDataError(
            f"{where}: prices run past the end of the day ({_at(day_end, tz)}) to {_at(expected, tz)}"
        )
    return tuple(ordered)
