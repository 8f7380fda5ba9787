"""Nord Pool Data Portal: DayAheadPrices bodies (15-minute entries, DST days, states) and fetching."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from support.price_server import PriceApiServer, Reply, fast_http, fixture

from drivers.prices.nordpool import DELIVERY_DAY_TIMEZONE, NordpoolConfig, NordpoolSource, parse_day_ahead
from drivers.prices.types import MarketSlot, PriceDataError, PriceUnavailableError
from drivers.prices.validation import validate_day

NORMAL, SPRING, AUTUMN, NEGATIVE = (
    date(2025, 11, 19),
    date(2026, 3, 29),
    date(2025, 10, 26),
    date(2026, 5, 10),
)


def parsed(name: str, day: date) -> tuple[MarketSlot, ...]:
    slots = parse_day_ahead(fixture(f"nordpool/{name}"), area="SE3", currency="EUR", where="test")
    return validate_day(slots, day=day, tz=DELIVERY_DAY_TIMEZONE, source="nordpool")


@pytest.fixture
async def api() -> AsyncIterator[PriceApiServer]:
    async with PriceApiServer() as server:
        yield server


@pytest.mark.parametrize(("day", "count"), [(NORMAL, 96), (SPRING, 92), (AUTUMN, 100), (NEGATIVE, 96)])
def test_day_lengths(day: date, count: int) -> None:
    assert len(parsed(f"dayahead_SE3_{day}.json", day)) == count


def test_values_are_per_kwh() -> None:
    slots = parsed(f"dayahead_SE3_{NORMAL}.json", NORMAL)
    first = slots[0]
    assert first.start == datetime(2025, 11, 18, 23, 0, tzinfo=UTC)
    assert first.price == pytest.approx(0.06246)
    assert first.currency == "EUR"


def test_negative_prices_are_kept() -> None:
    slots = parsed(f"dayahead_SE3_{NEGATIVE}.json", NEGATIVE)
    assert min(s.price for s in slots) == pytest.approx(-0.02785)


def test_missing_entry() -> None:
    with pytest.raises(
        PriceDataError, match=r"1 slot\(s\) missing from 2025-11-19T11:30Z \(12:30\+0100 local\)"
    ):
        parsed(f"dayahead_SE3_{NORMAL}_missing.json", NORMAL)


def test_malformed_body() -> None:
    with pytest.raises(PriceDataError, match="not valid JSON"):
        parse_day_ahead(
            fixture(f"nordpool/dayahead_SE3_{NORMAL}_malformed.json"), area="SE3", currency="EUR", where="t"
        )


def test_preliminary_prices_are_not_used() -> None:
    with pytest.raises(PriceUnavailableError, match="'Preliminary', not Final"):
        parse_day_ahead(
            fixture(f"nordpool/dayahead_SE3_{NORMAL}_preliminary.json"), area="SE3", currency="EUR", where="t"
        )


def test_other_area_or_currency_is_an_error() -> None:
    body = fixture(f"nordpool/dayahead_SE3_{NORMAL}.json")
    with pytest.raises(PriceDataError, match="field 'SE4' is missing"):
        parse_day_ahead(body, area="SE4", currency="EUR", where="t")
    with pytest.raises(PriceDataError, match="currency is 'EUR', requested 'SEK'"):
        parse_day_ahead(body, area="SE3", currency="SEK", where="t")


def test_null_price_names_the_entry() -> None:
    document = json.loads(fixture(f"nordpool/dayahead_SE3_{NORMAL}.json"))
    document["multiAreaEntries"][7]["entryPerArea"]["SE3"] = None
    with pytest.raises(PriceDataError, match=r"entry 7: entryPerArea\.SE3 must be a number, got None"):
        parse_day_ahead(json.dumps(document), area="SE3", currency="EUR", where="t")


async def test_fetch_day(api: PriceApiServer) -> None:
    api.serve(
        "/nordpool/DayAheadPrices", fixture(f"nordpool/dayahead_SE3_{AUTUMN}.json"), match=(f"date={AUTUMN}",)
    )
    async with fast_http() as http:
        source = NordpoolSource(NordpoolConfig(area="SE3", base_url=f"{api.url}/nordpool"), http)
        slots = await source.fetch_day(AUTUMN)
    assert len(slots) == 100
    (request,) = api.requests
    assert "market=DayAhead" in request
    assert "deliveryArea=SE3" in request
    assert "currency=EUR" in request


async def test_no_content_means_not_published(api: PriceApiServer) -> None:
    api.add("/nordpool/DayAheadPrices", Reply(status=204))
    async with fast_http() as http:
        source = NordpoolSource(NordpoolConfig(area="SE3", base_url=f"{api.url}/nordpool"), http)
        with pytest.raises(PriceUnavailableError, match="no prices published for SE3 yet"):
            await source.fetch_day(NORMAL)
