"""Zone calendars and holidays: Easter, Polish holidays, G13 seasons, custom rules, tou and csv."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from support.price_server import FIXTURES

from drivers.prices.csv_file import CsvConfig, CsvSource
from drivers.prices.holidays import easter_sunday, holidays
from drivers.prices.tou import TouConfig, TouSource
from drivers.prices.types import PriceDataError, PriceFetchError, PriceUnavailableError
from drivers.prices.zones import CalendarConfig, DayType

WARSAW = ZoneInfo("Europe/Warsaw")


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=WARSAW)


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2000, date(2000, 4, 23)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2038, date(2038, 4, 25)),
    ],
)
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


def test_polish_holidays_2026() -> None:
    days = holidays("PL", 2026)
    assert len(days) == 14
    assert {date(2026, 4, 6), date(2026, 5, 24), date(2026, 6, 4), date(2026, 12, 24)} <= days
    assert date(2010, 1, 6) not in holidays("PL", 2010)  # Epiphany is a holiday from 2011
    assert date(2024, 12, 24) not in holidays("PL", 2024)
    with pytest.raises(ValueError, match="unknown holiday calendar 'XX'"):
        holidays("XX", 2026)


def test_g13_seasons_and_days_off() -> None:
    g13 = CalendarConfig(preset="G13").build(WARSAW)
    assert g13.zone_at(at(2026, 1, 14, 8)) == "peak_morning"
    assert g13.zone_at(at(2026, 1, 14, 17)) == "peak_afternoon"  # winter: 16-21
    assert g13.zone_at(at(2026, 1, 14, 21, 30)) == "offpeak"
    assert g13.zone_at(at(2026, 7, 15, 17)) == "offpeak"  # summer: 19-22
    assert g13.zone_at(at(2026, 7, 15, 21, 45)) == "peak_afternoon"
    assert g13.zone_at(at(2026, 8, 15, 10)) == "offpeak"  # Assumption Day, a Saturday anyway
    assert g13.zone_at(at(2026, 6, 4, 10)) == "offpeak"  # Corpus Christi, a Thursday
    assert g13.zones == ("offpeak", "peak_morning", "peak_afternoon")


def test_custom_rules_wrap_midnight_and_first_match_wins() -> None:
    config = CalendarConfig.model_validate(
        {
            "default_zone": "day",
            "rules": [
                {"zone": "free", "start": "11:00", "end": "14:00", "days": ["saturday", "sunday"]},
                {"zone": "night", "start": "21:00", "end": "07:00"},
                {"zone": "free", "start": "00:00", "end": "24:00", "months": [8]},
            ],
            "holidays": "none",
            "extra_holidays": ["2026-03-11"],
        }
    )
    calendar = config.build(WARSAW)
    assert calendar.zone_at(at(2026, 3, 14, 12)) == "free"  # Saturday
    assert calendar.zone_at(at(2026, 3, 14, 6)) == "night"  # past midnight
    assert calendar.zone_at(at(2026, 3, 13, 12)) == "day"
    assert calendar.zone_at(at(2026, 8, 3, 23)) == "night"  # the earlier rule wins
    assert calendar.zone_at(at(2026, 8, 3, 12)) == "free"
    assert calendar.day_type(date(2026, 3, 11)) is DayType.HOLIDAY
    assert calendar.day_type(date(2026, 5, 1)) is DayType.WORKDAY  # holidays = none


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"preset": "G12", "default_zone": "x"}, "either preset or default_zone/rules"),
        ({}, "give a preset"),
        ({"preset": "G14"}, "Input should be 'G11', 'G12', 'G12w' or 'G13'"),
        (
            {"default_zone": "a", "rules": [{"zone": "b", "start": "25:00", "end": "06:00"}]},
            "start must be 'HH:MM'",
        ),
        (
            {"default_zone": "a", "rules": [{"zone": "b", "start": "06:00", "end": "06:00"}]},
            "start and end must differ",
        ),
        (
            {"default_zone": "a", "rules": [{"zone": "b", "start": "1:00", "end": "06:00", "days": ["fri"]}]},
            "days",
        ),
        ({"default_zone": "Peak Zone"}, "default_zone"),
    ],
)
def test_calendar_config_errors_name_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CalendarConfig.model_validate(data)


@pytest.mark.parametrize(
    ("day", "count"), [(date(2026, 3, 29), 92), (date(2025, 11, 19), 96), (date(2025, 10, 26), 100)]
)
async def test_tou_days_follow_dst(day: date, count: int) -> None:
    calendar = CalendarConfig(preset="G12").build(WARSAW)
    source = TouSource(
        TouConfig(prices={"peak": 0.62, "offpeak": 0.41}, export_prices={"peak": 0.3, "offpeak": 0.2}),
        calendar,
        currency="PLN",
    )
    slots = await source.fetch_day(day)
    assert len(slots) == count
    assert source.cache_key is None
    noon = next(s for s in slots if s.start == at(day.year, day.month, day.day, 12).astimezone(UTC))
    assert (noon.price, noon.export_price) == (0.62, 0.3)
    one_pm = next(s for s in slots if s.start == at(day.year, day.month, day.day, 13).astimezone(UTC))
    assert (one_pm.price, one_pm.export_price) == (0.41, 0.2)


def test_tou_needs_a_price_per_zone() -> None:
    with pytest.raises(PriceDataError, match="no price for zone\\(s\\) offpeak"):
        TouSource(TouConfig(prices={"peak": 0.6}), CalendarConfig(preset="G12").build(WARSAW), currency="PLN")


async def test_csv_source_reads_the_25_hour_day(tmp_path: Path) -> None:
    config = CsvConfig(
        path=FIXTURES / "csv" / "prices_pln_mwh.csv", currency="PLN", unit="MWh", timezone="Europe/Warsaw"
    )
    source = CsvSource(config)
    slots = await source.fetch_day(date(2025, 10, 26))
    assert len(slots) == 25
    assert slots[2].start == datetime(2025, 10, 26, 0, 0, tzinfo=UTC)  # 02:00 CEST
    assert slots[3].start == datetime(2025, 10, 26, 1, 0, tzinfo=UTC)  # 02:00 CET
    assert slots[2].price == pytest.approx(0.38398)
    assert slots[2].export_price == pytest.approx(0.34558)
    assert len(await source.fetch_day(date(2025, 10, 27))) == 24
    with pytest.raises(PriceUnavailableError, match="no prices for 2025-10-28"):
        await source.fetch_day(date(2025, 10, 28))


async def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("start,price\n2025-11-19T00:00+01:00,0.5\n2025-11-19T00:15,0.5\n")
    source = CsvSource(CsvConfig(path=path, currency="PLN", timezone="Europe/Warsaw"))
    with pytest.raises(PriceDataError, match="line 3: start has no UTC offset: '2025-11-19T00:15'"):
        await source.fetch_day(date(2025, 11, 19))
    path.write_text("when,price\n")
    with pytest.raises(PriceDataError, match="column 'start' missing \\(columns: when, price\\)"):
        await source.fetch_day(date(2025, 11, 19))
    missing = CsvSource(CsvConfig(path=tmp_path / "absent.csv", currency="PLN"))
    with pytest.raises(PriceFetchError, match="cannot read"):
        await missing.fetch_day(date(2025, 11, 19))


async def test_csv_quarter_hours_without_end_column(tmp_path: Path) -> None:
    start = datetime(2025, 11, 19, tzinfo=WARSAW).astimezone(UTC)
    rows = [f"{(start + i * timedelta(minutes=15)).isoformat()},{0.4 + i / 1000:.3f}" for i in range(96)]
    path = tmp_path / "q.csv"
    path.write_text("start,price\n" + "\n".join(rows) + "\n")
    slots = await CsvSource(CsvConfig(path=path, currency="PLN", timezone="Europe/Warsaw")).fetch_day(
        date(2025, 11, 19)
    )
    assert len(slots) == 96
    assert slots[-1].price == pytest.approx(0.495)
