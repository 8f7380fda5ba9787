"""PSE reports API: parsing csdac-pln/rce-pln bodies and fetching a day from a local server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from support.price_server import PriceApiServer, Reply, fast_http, fixture

from drivers.prices.pse import PSE_TIMEZONE, PseConfig, PseSource, parse_report
from drivers.prices.types import MarketSlot, PriceDataError, PriceFetchError, PriceUnavailableError
from drivers.prices.validation import validate_day

NORMAL, SPRING, AUTUMN, NEGATIVE = (
    date(2025, 11, 19),
    date(2026, 3, 29),
    date(2025, 10, 26),
    date(2026, 5, 10),
)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
async def api() -> AsyncIterator[PriceApiServer]:
    async with PriceApiServer() as server:
        yield server


def serve_day(api: PriceApiServer, day: date, *, csdac: str | None = None) -> None:
    api.serve("/pse/csdac-pln", csdac or fixture(f"pse/csdac-pln_{day}.json"), match=(str(day),))
    api.serve("/pse/rce-pln", fixture(f"pse/rce-pln_{day}.json"), match=(str(day),))


def test_dtime_is_the_end_of_the_period() -> None:
    prices, next_link = parse_report(fixture(f"pse/csdac-pln_{NORMAL}.json"), report="csdac-pln", day=NORMAL)
    assert next_link is None
    assert len(prices) == 96
    # First record: period "00:00 - 00:15" local, dtime_utc 2025-11-18 23:15 (its end).
    assert prices[utc(2025, 11, 18, 23, 0)] == pytest.approx(0.43635)
    # Last record: dtime "2025-11-20 00:00:00" closes "23:45 - 24:00".
    assert prices[utc(2025, 11, 19, 22, 45)] == pytest.approx(0.47795)


def test_autumn_day_has_100_quarter_hours_with_both_repeated_hours() -> None:
    page1, link = parse_report(fixture(f"pse/csdac-pln_{AUTUMN}_page1.json"), report="csdac-pln", day=AUTUMN)
    assert link is not None
    assert "$after=60" in link
    page2, end = parse_report(fixture(f"pse/csdac-pln_{AUTUMN}_page2.json"), report="csdac-pln", day=AUTUMN)
    assert end is None
    prices = {**page1, **page2}
    assert len(prices) == 100
    # 02:00-02:15 local happens twice: CEST (00:00 UTC) and CET ("02a", 01:00 UTC).
    assert prices[utc(2025, 10, 26, 0, 0)] == pytest.approx(0.39164)
    assert prices[utc(2025, 10, 26, 1, 0)] == pytest.approx(0.41134)


def test_spring_day_has_92_quarter_hours() -> None:
    prices, _ = parse_report(fixture(f"pse/csdac-pln_{SPRING}.json"), report="csdac-pln", day=SPRING)
    assert len(prices) == 92
    assert min(prices) == utc(2026, 3, 28, 23, 0)
    assert max(prices) == utc(2026, 3, 29, 21, 45)


def test_negative_prices_are_kept() -> None:
    prices, _ = parse_report(fixture(f"pse/rce-pln_{NEGATIVE}.json"), report="rce-pln", day=NEGATIVE)
    assert prices[utc(2026, 5, 10, 10, 30)] == pytest.approx(-0.19676)
    assert sum(1 for value in prices.values() if value < 0) >= 12


def test_malformed_body_is_a_data_error() -> None:
    with pytest.raises(PriceDataError, match="not valid JSON"):
        parse_report(fixture(f"pse/csdac-pln_{NORMAL}_malformed.json"), report="csdac-pln", day=NORMAL)


def test_wrong_business_date_is_rejected() -> None:
    with pytest.raises(PriceDataError, match="business_date is '2025-11-19', requested 2025-11-20"):
        parse_report(fixture(f"pse/csdac-pln_{NORMAL}.json"), report="csdac-pln", day=date(2025, 11, 20))


def test_duplicated_record_names_the_period() -> None:
    document = json.loads(fixture(f"pse/rce-pln_{AUTUMN}.json"))
    document["value"].insert(14, document["value"][13])
    expected = r"duplicated period ending '2025-10-26 01:30:00' UTC \(dtime '2025-10-26 02a:30:00'\)"
    with pytest.raises(PriceDataError, match=expected):
        parse_report(json.dumps(document), report="rce-pln", day=AUTUMN)


def test_missing_record_fails_day_validation() -> None:
    prices, _ = parse_report(fixture(f"pse/csdac-pln_{NORMAL}_missing.json"), report="csdac-pln", day=NORMAL)
    slots = [MarketSlot(s, s + timedelta(minutes=15), p, "PLN") for s, p in prices.items()]
    with pytest.raises(
        PriceDataError, match=r"1 slot\(s\) missing from 2025-11-19T09:15Z \(10:15\+0100 local\)"
    ):
        validate_day(slots, day=NORMAL, tz=PSE_TIMEZONE, source="pse")


def test_text_number_and_nan() -> None:
    document = json.loads(fixture(f"pse/rce-pln_{NORMAL}.json"))
    document["value"][5]["rce_pln"] = "401.20000"
    prices, _ = parse_report(json.dumps(document), report="rce-pln", day=NORMAL)
    assert prices[utc(2025, 11, 19, 0, 15)] == pytest.approx(0.4012)
    document["value"][5]["rce_pln"] = "NaN"
    with pytest.raises(PriceDataError, match="record 5: rce_pln must be finite, got 'NaN'"):
        parse_report(json.dumps(document), report="rce-pln", day=NORMAL)


async def test_fetch_day_combines_import_and_export(api: PriceApiServer) -> None:
    serve_day(api, NORMAL)
    async with fast_http() as http:
        source = PseSource(PseConfig(base_url=f"{api.url}/pse"), http)
        slots = await source.fetch_day(NORMAL)
    assert len(slots) == 96
    assert slots[0].start == utc(2025, 11, 18, 23, 0)
    assert slots[-1].end == utc(2025, 11, 19, 23, 0)
    assert slots[0].currency == "PLN"
    assert slots[0].price == pytest.approx(0.43635)
    assert slots[0].export_price is not None
    assert slots[0].export_price != slots[0].price
    assert any("$filter=business_date eq '2025-11-19'" in request for request in api.requests)


async def test_fetch_follows_next_link_pages(api: PriceApiServer) -> None:
    base = f"{api.url}/pse"
    api.serve(
        "/pse/csdac-pln",
        fixture(f"pse/csdac-pln_{AUTUMN}_page1.json").replace("__BASE__", base),
        match=(str(AUTUMN),),
    )
    api.serve(
        "/pse/csdac-pln", fixture(f"pse/csdac-pln_{AUTUMN}_page2.json"), match=(str(AUTUMN), "$after=60")
    )
    api.serve("/pse/rce-pln", fixture(f"pse/rce-pln_{AUTUMN}.json"), match=(str(AUTUMN),))
    async with fast_http() as http:
        slots = await PseSource(PseConfig(base_url=base), http).fetch_day(AUTUMN)
    assert len(slots) == 100
    assert slots[12].start == utc(2025, 10, 26, 1, 0)
    assert slots[12].export_price == pytest.approx(0.36528)


async def test_next_link_to_another_host_is_refused(api: PriceApiServer) -> None:
    body = fixture(f"pse/csdac-pln_{AUTUMN}_page1.json").replace("__BASE__", "http://elsewhere.invalid/api")
    api.serve("/pse/csdac-pln", body, match=(str(AUTUMN),))
    async with fast_http() as http:
        with pytest.raises(PriceDataError, match="nextLink leaves"):
            await PseSource(PseConfig(base_url=f"{api.url}/pse", export_report=None), http).fetch_day(AUTUMN)


async def test_empty_answer_means_not_published(api: PriceApiServer) -> None:
    api.serve("/pse/csdac-pln", '{"value": []}')
    async with fast_http() as http:
        with pytest.raises(PriceUnavailableError, match="no prices for 2025-11-20 yet"):
            await PseSource(PseConfig(base_url=f"{api.url}/pse"), http).fetch_day(date(2025, 11, 20))


async def test_odata_error_is_a_fetch_error(api: PriceApiServer) -> None:
    error = '{"error":{"code":"BadRequest","message":"Could not find a property named \'doba\'"}}'
    api.add("/pse/csdac-pln", Reply(body=error, status=400))
    async with fast_http() as http:
        with pytest.raises(PriceFetchError, match=r"HTTP 400.*doba"):
            await PseSource(PseConfig(base_url=f"{api.url}/pse"), http).fetch_day(NORMAL)


async def test_export_report_covering_other_periods_is_rejected(api: PriceApiServer) -> None:
    api.serve("/pse/csdac-pln", fixture(f"pse/csdac-pln_{NORMAL}_missing.json"), match=(str(NORMAL),))
    api.serve("/pse/rce-pln", fixture(f"pse/rce-pln_{NORMAL}.json"), match=(str(NORMAL),))
    async with fast_http() as http:
        with pytest.raises(PriceDataError, match=r"cover different periods, e\.g\. 2025-11-19T09:15Z"):
            await PseSource(PseConfig(base_url=f"{api.url}/pse"), http).fetch_day(NORMAL)
