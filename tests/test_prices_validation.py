"""Day validation: every way a day of prices can be wrong gets a message naming it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from drivers.days import day_window
from drivers.prices.types import MarketSlot, PriceDataError
from drivers.prices.validation import validate_day

WARSAW = ZoneInfo("Europe/Warsaw")
DAY = date(2025, 11, 19)
Q = timedelta(minutes=15)


def day_slots(price: float = 0.4, currency: str = "PLN", step: timedelta = Q) -> list[MarketSlot]:
    start, end = day_window(DAY, WARSAW)
    return [
        MarketSlot(start + i * step, start + (i + 1) * step, price, currency)
        for i in range((end - start) // step)
    ]


def check(slots: list[MarketSlot]) -> tuple[MarketSlot, ...]:
    return validate_day(slots, day=DAY, tz=WARSAW, source="src")


def test_valid_day_is_returned_sorted() -> None:
    slots = day_slots()
    assert check(list(reversed(slots))) == tuple(slots)
    assert len(check(day_slots(step=timedelta(hours=1)))) == 24


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: [], "no prices in the response"),
        (
            lambda s: s[:-1],
            r"1 slot\(s\) missing from 2025-11-19T22:45Z \(23:45\+0100 local\) to the end of the day",
        ),
        (lambda s: s[1:], r"1 slot\(s\) missing from 2025-11-18T23:00Z"),
        (lambda s: [*s[:10], s[9], *s[10:]], r"duplicated or overlapping slot at 2025-11-19T01:15Z"),
        (
            lambda s: [*s, MarketSlot(s[-1].end, s[-1].end + Q, 0.4, "PLN")],
            "prices run past the end of the day",
        ),
        (
            lambda s: [MarketSlot(s[0].start - Q, s[0].start, 0.4, "PLN"), *s],
            "prices start at 2025-11-18T22:45Z",
        ),
        (
            lambda s: [*s[:5], MarketSlot(s[5].start, s[5].end, 0.4, "EUR"), *s[6:]],
            "mixed currencies: PLN and EUR",
        ),
        (
            lambda s: [MarketSlot(s[0].start, s[0].start + 2 * Q, 0.4, "PLN"), *s[2:]],
            r"slot at 2025-11-18T23:30Z \(00:30\+0100 local\) lasts 0:15:00, unlike the first slot of the day \(0:30:00\)",
        ),
        (
            lambda s: [*s[:7], MarketSlot(s[7].start, s[7].end, 412.5, "PLN"), *s[8:]],
            r"price = 412.5 PLN/kWh is outside the plausible range -5.0..45.0 \(unit error\?\)",
        ),
        (
            lambda s: [*s[:7], MarketSlot(s[7].start, s[7].end, 0.4, "PLN", -80.0), *s[8:]],
            "export_price = -80.0 PLN/kWh",
        ),
    ],
    ids=[
        "empty",
        "last-missing",
        "first-missing",
        "duplicate",
        "overrun",
        "early",
        "currency",
        "resolution",
        "absurd",
        "absurd-export",
    ],
)
def test_bad_days(mutate: object, message: str) -> None:
    with pytest.raises(PriceDataError, match=message):
        check(mutate(day_slots()))  # type: ignore[operator]


def test_unknown_currency_and_odd_resolution() -> None:
    with pytest.raises(PriceDataError, match="currency 'XYZ' is not supported"):
        check(day_slots(currency="XYZ"))
    with pytest.raises(PriceDataError, match="lasts 0:05:00; expected 15, 30 or 60 minutes"):
        check(day_slots(step=timedelta(minutes=5)))


def test_slot_values_refuse_naive_times_and_nan() -> None:
    start, _ = day_window(DAY, WARSAW)
    with pytest.raises(ValueError, match=r"MarketSlot\.price must be finite, got nan"):
        MarketSlot(start, start + Q, float("nan"), "PLN")
    with pytest.raises(ValueError, match="must be timezone-aware UTC"):
        MarketSlot(datetime(2025, 11, 19), datetime(2025, 11, 19, 0, 15), 0.4, "PLN")  # noqa: DTZ001
    with pytest.raises(ValueError, match="must be timezone-aware UTC"):
        MarketSlot(start.astimezone(WARSAW), start + Q, 0.4, "PLN")
