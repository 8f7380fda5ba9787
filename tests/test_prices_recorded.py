"""Parsers against real recorded API bodies in ../shared/data/api (skipped when it is absent).

The bodies are read in place, never copied into the repository; see that folder's README.md for
where each one comes from.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from support.price_server import SHARED_API
from support.shared import needs_shared

from drivers.days import day_window
from drivers.prices.awattar import parse_marketdata
from drivers.prices.entsoe import parse_a44, select_day
from drivers.prices.nordpool import DELIVERY_DAY_TIMEZONE, parse_day_ahead
from drivers.prices.types import PriceDataError, PriceUnavailableError
from drivers.prices.validation import validate_day

pytestmark = needs_shared(SHARED_API)

BERLIN = ZoneInfo("Europe/Berlin")
BRUSSELS = ZoneInfo("Europe/Brussels")


def recorded(path: str) -> str:
    return (SHARED_API / path).read_text(encoding="utf-8")


def test_entsoe_de_lu_2021_hourly_sdac_with_a03_gap() -> None:
    curves = parse_a44(recorded("entsoe/berrij_a44_DE-LU_2021-01-01_02_PT15M+PT60M.xml"), where="rec")
    # Sequence 1 is the hourly SDAC price (its second day has only 23 points: an A03 gap).
    first = select_day(curves, day=date(2021, 1, 1), tz=BERLIN, sequence=1, source="entsoe")
    second = select_day(curves, day=date(2021, 1, 2), tz=BERLIN, sequence=1, source="entsoe")
    assert (len(first), len(second)) == (24, 24)
    assert first[0].price == pytest.approx(0.05087)
    quarter_hours = select_day(curves, day=date(2021, 1, 1), tz=BERLIN, sequence=2, source="entsoe")
    assert len(quarter_hours) == 96
    assert quarter_hours[0].price == pytest.approx(0.07583)


def test_entsoe_after_the_15_minute_go_live() -> None:
    curves = parse_a44(recorded("entsoe/openhab_a44_DE-LU_2025-10-31_11-01_PT15M.xml"), where="rec")
    for day in (date(2025, 10, 31), date(2025, 11, 1)):
        for sequence in (1, 2):
            slots = select_day(curves, day=day, tz=BERLIN, sequence=sequence, source="entsoe")
            assert len(slots) == 96


def test_entsoe_without_classification_sequence() -> None:
    curves = parse_a44(recorded("entsoe/hassentsoe_a44_BE_2024-10-08_PT60M.xml"), where="rec")
    slots = select_day(curves, day=date(2024, 10, 8), tz=BRUSSELS, sequence=1, source="entsoe")
    assert len(slots) == 24
    assert slots[0].price == pytest.approx(0.06498)


def test_entsoe_overlapping_hourly_and_quarter_hourly_with_negatives() -> None:
    curves = parse_a44(recorded("entsoe/hassentsoe_a44_DE-LU_2024-10-06_07_PT60M+PT15M.xml"), where="rec")
    hourly = select_day(curves, day=date(2024, 10, 6), tz=BERLIN, sequence=1, source="entsoe")
    quarters = select_day(curves, day=date(2024, 10, 6), tz=BERLIN, sequence=2, source="entsoe")
    assert (len(hourly), len(quarters)) == (24, 96)
    assert min(s.price for s in quarters) == pytest.approx(-0.02991)


@pytest.mark.parametrize(
    "path",
    [
        "entsoe/tuntihinta_acknowledgement_nodata_FI_2022-08-07.xml",
        "entsoe/hexagon_acknowledgement_nodata_apiguide_2016-03-30.xml",
    ],
)
def test_entsoe_no_data_acknowledgements(path: str) -> None:
    with pytest.raises(PriceUnavailableError, match="No matching data found"):
        parse_a44(recorded(path), where="rec")


def test_nordpool_hourly_day() -> None:
    slots = parse_day_ahead(
        recorded("nordpool/pynordpool_dayahead_SE3_2024-11-05.json"), area="SE3", currency="EUR", where="rec"
    )
    day = validate_day(slots, day=date(2024, 11, 5), tz=DELIVERY_DAY_TIMEZONE, source="nordpool")
    assert len(day) == 24
    assert day[0].price == pytest.approx(0.02154)


def test_nordpool_index_endpoint_is_not_the_day_ahead_endpoint() -> None:
    with pytest.raises(PriceDataError, match="field 'multiAreaEntries' is missing"):
        parse_day_ahead(
            recorded("nordpool/hacore_dayaheadpriceindices_SE3_15min_2025-10-01.json"),
            area="SE3",
            currency="SEK",
            where="rec",
        )


def test_awattar_three_days_with_negative_prices() -> None:
    slots = parse_marketdata(
        recorded("awattar/openhab_awattar_de_marketdata_2024-06-14_16.json"), where="rec"
    )
    lowest = {}
    for day in (date(2024, 6, 14), date(2024, 6, 15), date(2024, 6, 16)):
        start, end = day_window(day, BERLIN)
        valid = validate_day(
            [s for s in slots if start <= s.start < end], day=day, tz=BERLIN, source="awattar"
        )
        assert len(valid) == 24
        lowest[day] = min(s.price for s in valid)
    assert lowest[date(2024, 6, 15)] == pytest.approx(-0.08001)
