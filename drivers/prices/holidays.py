"""Public holidays by country, as data: fixed dates and offsets from Easter Sunday.

Multi-zone tariffs (Poland's G12w, G13) treat public holidays like Sundays. Add a country by
adding a table; a contract's extra free days go into the tariff config's ``extra_holidays``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache


@dataclass(frozen=True, slots=True)
class FixedHoliday:
    month: int
    day: int
    name: str
    since: int | None = None  # first year the holiday applies


@dataclass(frozen=True, slots=True)
class EasterHoliday:
    days_after_easter: int
    name: str


Holiday = FixedHoliday | EasterHoliday

# Ustawa o dniach wolnych od pracy; Epiphany since 2011, Christmas Eve since 2025.
POLAND: tuple[Holiday, ...] = (
    FixedHoliday(1, 1, "Nowy Rok"),
    FixedHoliday(1, 6, "Święto Trzech Króli", since=2011),
    EasterHoliday(0, "Wielkanoc"),
    EasterHoliday(1, "Poniedziałek Wielkanocny"),
    FixedHoliday(5, 1, "Święto Pracy"),
    FixedHoliday(5, 3, "Święto Konstytucji 3 Maja"),
    EasterHoliday(49, "Zielone Świątki"),
    EasterHoliday(60, "Boże Ciało"),
    FixedHoliday(8, 15, "Wniebowzięcie Najświętszej Maryi Panny"),
    FixedHoliday(11, 1, "Wszystkich Świętych"),
    FixedHoliday(11, 11, "Narodowe Święto Niepodległości"),
    FixedHoliday(12, 24, "Wigilia Bożego Narodzenia", since=2025),
    FixedHoliday(12, 25, "Boże Narodzenie (pierwszy dzień)"),
    FixedHoliday(12, 26, "Boże Narodzenie (drugi dzień)"),
)

# Holidays common to all German states.
GERMANY: tuple[Holiday, ...] = (
    FixedHoliday(1, 1, "Neujahr"),
    EasterHoliday(-2, "Karfreitag"),
    EasterHoliday(1, "Ostermontag"),
    FixedHoliday(5, 1, "Tag der Arbeit"),
    EasterHoliday(39, "Christi Himmelfahrt"),
    EasterHoliday(50, "Pfingstmontag"),
    FixedHoliday(10, 3, "Tag der Deutschen Einheit"),
    FixedHoliday(12, 25, "1. Weihnachtstag"),
    FixedHoliday(12, 26, "2. Weihnachtstag"),
)

CALENDARS: dict[str, tuple[Holiday, ...]] = {"PL": POLAND, "DE": GERMANY, "none": ()}


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


@cache
def holidays(country: str, year: int) -> frozenset[date]:
    """The public holidays of ``country`` (a key of CALENDARS) in ``year``."""
    try:
        table = CALENDARS[country]
    except KeyError:
        raise ValueError(f"unknown holiday calendar {country!r} (known: {', '.join(CALENDARS)})") from None
    easter = easter_sunday(year)
    days: set[date] = set()
    for holiday in table:
        if isinstance(holiday, FixedHoliday):
            if holiday.since is None or year >= holiday.since:
                days.add(date(year, holiday.month, holiday.day))
        else:
            days.add(easter + timedelta(days=holiday.days_after_easter))
    return frozenset(days)
