"""aWATTar market data: hourly EUR/MWh bodies with epoch-millisecond slots, and fetching."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from support.price_server import PriceApiServer, fast_http, fixture

from drivers.days import day_window
from drivers.prices.awattar import AwattarConfig, AwattarSource, parse_marketdata
from drivers.prices.types import MarketSlot, PriceDataError, PriceUnavailableError
from drivers.prices.validation import validate_day

BERLIN = ZoneInfo("Europe/Berlin")
NORMAL, SPRING, AUTUMN, NEGATIVE = (
    date(2025, 11, 19),
    date(2026, 3, 29),
    date(2025, 10, 26),
    date(2026, 5, 10),
)


def parsed(name: str, day: date) -> tuple[MarketSlot, ...]:
    return validate_day(
        parse_marketdata(fixture(f"awattar/{name}"), where="t"), day=day, tz=BERLIN, source="awattar"
    )


@pytest.fixture
async def api() -> AsyncIterator[PriceApiServer]:
    async with PriceApiServer() as server:
        yield server


@pytest.mark.parametrize(("day", "count"), [(NORMAL, 24), (SPRING, 23), (AUTUMN, 25), (NEGATIVE, 24)])
def test_day_lengths(day: date, count: int) -> None:
    assert len(parsed(f"marketdata_{day}.json", day)) == count


def test_first_hour() -> None:
    first = parsed(f"marketdata_{NORMAL}.json", NORMAL)[0]
    assert first.start == datetime(2025, 11, 18, 23, 0, tzinfo=UTC)
    assert first.price == pytest.approx(0.10124)


def test_negative_prices_are_kept() -> None:
    slots = parsed(f"marketdata_{NEGATIVE}.json", NEGATIVE)
    assert min(s.price for s in slots) == pytest.approx(-0.04679)


def test_missing_hour() -> None:
    with pytest.raises(
        PriceDataError, match=r"1 slot\(s\) missing from 2025-11-19T08:00Z \(09:00\+0100 local\)"
    ):
        parsed(f"marketdata_{NORMAL}_missing.json", NORMAL)


def test_malformed_body() -> None:
    with pytest.raises(PriceDataError, match="not valid JSON"):
        parse_marketdata(fixture(f"awattar/marketdata_{NORMAL}_malformed.json"), where="t")


def test_unit_other_than_mwh_is_rejected() -> None:
    document = json.loads(fixture(f"awattar/marketdata_{NORMAL}.json"))
    document["data"][3]["unit"] = "Eur/kWh"
    with pytest.raises(PriceDataError, match=r"data\[3\]: unit is 'Eur/kWh', expected 'Eur/MWh'"):
        parse_marketdata(json.dumps(document), where="t")


async def test_fetch_day_asks_for_the_local_day(api: PriceApiServer) -> None:
    start, end = day_window(SPRING, BERLIN)
    api.serve(
        "/awattar/marketdata",
        fixture(f"awattar/marketdata_{SPRING}.json"),
        match=(f"start={int(start.timestamp() * 1000)}",),
    )
    async with fast_http() as http:
        slots = await AwattarSource(AwattarConfig(base_url=f"{api.url}/awattar"), http).fetch_day(SPRING)
    assert len(slots) == 23
    assert f"end={int(end.timestamp() * 1000)}" in api.requests[0]


async def test_empty_data_means_not_published(api: PriceApiServer) -> None:
    api.serve("/awattar/marketdata", '{"object": "list", "data": [], "url": "/de/v1/marketdata"}')
    async with fast_http() as http:
        with pytest.raises(PriceUnavailableError, match="no prices published yet"):
            await AwattarSource(AwattarConfig(base_url=f"{api.url}/awattar"), http).fetch_day(NORMAL)
