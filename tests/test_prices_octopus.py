"""Octopus Agile: half-hourly unit rates in pence (newest first, paged) and fetching."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError
from support.price_server import PriceApiServer, fast_http, fixture

from drivers.prices.octopus_agile import LONDON, OctopusAgileConfig, OctopusAgileSource, parse_rates
from drivers.prices.types import MarketSlot, PriceDataError, PriceUnavailableError
from drivers.prices.validation import validate_day

NORMAL, SPRING, AUTUMN, NEGATIVE = (
    date(2025, 11, 19),
    date(2026, 3, 29),
    date(2025, 10, 26),
    date(2026, 5, 10),
)
RATES = "/octopus/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-24-10-01-C/standard-unit-rates/"


def parsed(name: str, day: date, include_vat: bool = True) -> tuple[MarketSlot, ...]:
    slots, _ = parse_rates(fixture(f"octopus/{name}"), include_vat=include_vat, where="t")
    return validate_day(slots, day=day, tz=LONDON, source="octopus")


@pytest.fixture
async def api() -> AsyncIterator[PriceApiServer]:
    async with PriceApiServer() as server:
        yield server


@pytest.mark.parametrize(("day", "count"), [(NORMAL, 48), (SPRING, 46), (AUTUMN, 50), (NEGATIVE, 48)])
def test_day_lengths(day: date, count: int) -> None:
    assert len(parsed(f"agile_C_{day}.json", day)) == count


def test_pence_become_pounds_and_vat_is_selectable() -> None:
    inc = parsed(f"agile_C_{NORMAL}.json", NORMAL)[0]
    exc = parsed(f"agile_C_{NORMAL}.json", NORMAL, include_vat=False)[0]
    assert inc.start == datetime(2025, 11, 19, 0, 0, tzinfo=UTC)
    assert inc.price == pytest.approx(0.13104)
    assert exc.price == pytest.approx(0.1248)


def test_negative_rates_are_kept() -> None:
    slots = parsed(f"agile_C_{NEGATIVE}.json", NEGATIVE)
    assert min(s.price for s in slots) == pytest.approx(-0.05691)


def test_missing_half_hour() -> None:
    with pytest.raises(
        PriceDataError, match=r"1 slot\(s\) missing from 2025-11-19T10:00Z \(10:00\+0000 local\)"
    ):
        parsed(f"agile_C_{NORMAL}_missing.json", NORMAL)


def test_malformed_body() -> None:
    with pytest.raises(PriceDataError, match="field 'results' is missing"):
        parse_rates(fixture(f"octopus/agile_C_{NORMAL}_malformed.json"), include_vat=True, where="t")


def test_open_ended_rate_is_not_agile() -> None:
    document = json.loads(fixture(f"octopus/agile_C_{NORMAL}.json"))
    document["results"][0]["valid_to"] = None
    with pytest.raises(PriceDataError, match=r"results\[0\]: valid_to is null"):
        parse_rates(json.dumps(document), include_vat=True, where="t")


def test_region_letter_is_checked() -> None:
    with pytest.raises(ValidationError, match="region"):
        OctopusAgileConfig(region="I")


async def test_fetch_day_follows_pages(api: PriceApiServer) -> None:
    document = json.loads(fixture(f"octopus/agile_C_{AUTUMN}.json"))
    first = dict(document, results=document["results"][:30], next=f"{api.url}{RATES}?page=2")
    second = dict(document, results=document["results"][30:])
    api.serve(RATES, json.dumps(first), match=("period_from=2025-10-25T23:00:00Z",))
    api.serve(RATES, json.dumps(second), match=("page=2",))
    async with fast_http() as http:
        source = OctopusAgileSource(OctopusAgileConfig(region="C", base_url=f"{api.url}/octopus"), http)
        slots = await source.fetch_day(AUTUMN)
    assert len(slots) == 50
    assert slots[0].currency == "GBP"
    assert "period_to=2025-10-27T00:00:00Z" in api.requests[0]


async def test_no_rates_means_not_published(api: PriceApiServer) -> None:
    api.serve(RATES, '{"count": 0, "next": null, "previous": null, "results": []}')
    async with fast_http() as http:
        source = OctopusAgileSource(OctopusAgileConfig(region="C", base_url=f"{api.url}/octopus"), http)
        with pytest.raises(PriceUnavailableError, match="no Agile rates published yet"):
            await source.fetch_day(NORMAL)
