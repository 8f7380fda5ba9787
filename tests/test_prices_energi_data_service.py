"""Energi Data Service: DayAheadPrices records (15-minute, TimeUTC without offset) and fetching."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from support.price_server import PriceApiServer, fast_http, fixture

from drivers.prices.energi_data_service import (
    DANISH_TIMEZONE,
    EnergiDataServiceConfig,
    EnergiDataServiceSource,
    parse_records,
)
from drivers.prices.types import MarketSlot, PriceDataError, PriceUnavailableError
from drivers.prices.validation import validate_day

NORMAL, SPRING, AUTUMN, NEGATIVE = (
    date(2025, 11, 19),
    date(2026, 3, 29),
    date(2025, 10, 26),
    date(2026, 5, 10),
)


def parsed(name: str, day: date, currency: str = "EUR") -> tuple[MarketSlot, ...]:
    slots = parse_records(fixture(f"eds/{name}"), area="DK1", currency=currency, where="t")
    return validate_day(slots, day=day, tz=DANISH_TIMEZONE, source="eds")


@pytest.fixture
async def api() -> AsyncIterator[PriceApiServer]:
    async with PriceApiServer() as server:
        yield server


@pytest.mark.parametrize(("day", "count"), [(NORMAL, 96), (SPRING, 92), (AUTUMN, 100), (NEGATIVE, 96)])
def test_day_lengths(day: date, count: int) -> None:
    assert len(parsed(f"dayaheadprices_DK1_{day}.json", day)) == count


def test_currency_selects_the_field() -> None:
    eur = parsed(f"dayaheadprices_DK1_{NORMAL}.json", NORMAL)[0]
    dkk = parsed(f"dayaheadprices_DK1_{NORMAL}.json", NORMAL, "DKK")[0]
    assert eur.start == datetime(2025, 11, 18, 23, 0, tzinfo=UTC)
    assert eur.price == pytest.approx(0.1018)
    assert dkk.price == pytest.approx(0.759428)
    assert dkk.currency == "DKK"


def test_negative_prices_are_kept() -> None:
    slots = parsed(f"dayaheadprices_DK1_{NEGATIVE}.json", NEGATIVE)
    assert min(s.price for s in slots) == pytest.approx(-0.04634)


def test_missing_quarter_hour() -> None:
    with pytest.raises(PriceDataError, match=r"1 slot\(s\) missing from 2025-11-19T16:30Z"):
        parsed(f"dayaheadprices_DK1_{NORMAL}_missing.json", NORMAL)


def test_malformed_time_names_the_record() -> None:
    with pytest.raises(
        PriceDataError, match=r"records\[24\]: TimeUTC is not an ISO 8601 date-time: '19.11.2025 05:00'"
    ):
        parse_records(
            fixture(f"eds/dayaheadprices_DK1_{NORMAL}_malformed.json"), area="DK1", currency="EUR", where="t"
        )


def test_duplicated_quarter_hour() -> None:
    document = json.loads(fixture(f"eds/dayaheadprices_DK1_{AUTUMN}.json"))
    document["records"][9] = dict(document["records"][8])
    slots = parse_records(json.dumps(document), area="DK1", currency="EUR", where="t")
    with pytest.raises(
        PriceDataError, match=r"duplicated or overlapping slot at 2025-10-26T00:00Z \(02:00\+0200 local\)"
    ):
        validate_day(slots, day=AUTUMN, tz=DANISH_TIMEZONE, source="eds")


async def test_fetch_day(api: PriceApiServer) -> None:
    api.serve(
        "/eds/dataset/DayAheadPrices",
        fixture(f"eds/dayaheadprices_DK1_{SPRING}.json"),
        match=(f"start={SPRING}T00:00",),
    )
    async with fast_http() as http:
        source = EnergiDataServiceSource(EnergiDataServiceConfig(area="DK1", base_url=f"{api.url}/eds"), http)
        slots = await source.fetch_day(SPRING)
    assert len(slots) == 92
    assert slots[0].currency == "DKK"
    assert 'filter={"PriceArea":["DK1"]}' in api.requests[0]
    assert "end=2026-03-30T00:00" in api.requests[0]


async def test_no_records_means_not_published(api: PriceApiServer) -> None:
    api.serve("/eds/dataset/DayAheadPrices", '{"total": 0, "dataset": "DayAheadPrices", "records": []}')
    async with fast_http() as http:
        source = EnergiDataServiceSource(EnergiDataServiceConfig(base_url=f"{api.url}/eds"), http)
        with pytest.raises(PriceUnavailableError, match="no prices published for DK1 yet"):
            await source.fetch_day(NORMAL)
