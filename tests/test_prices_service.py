"""The price service's fallback chain against a local server: 500s, timeouts, garbage, cache."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.price_server import FAST_POLICY, PriceApiServer, Reply, fixture

from drivers.http import HttpClient, RetryPolicy
from drivers.prices.awattar import AwattarConfig, AwattarSource
from drivers.prices.cache import PriceCache
from drivers.prices.entsoe import EntsoeConfig, EntsoeSource
from drivers.prices.pse import PseConfig, PseSource
from drivers.prices.registry import PricesConfig
from drivers.prices.service import PriceService
from drivers.prices.tariff import Tariff, TariffConfig, ZoneFees
from drivers.prices.tou import TouConfig, TouSource
from drivers.prices.types import Origin, PriceSource, PriceStatus
from drivers.prices.zones import CalendarConfig

WARSAW = ZoneInfo("Europe/Warsaw")
DAY = date(2025, 11, 19)
AUTUMN = date(2025, 10, 26)
G12W_FEES = {
    "peak": ZoneFees(distribution=0.4276, excise=0.005),
    "offpeak": ZoneFees(distribution=0.0845, excise=0.005),
}


@pytest.fixture
async def api() -> AsyncIterator[PriceApiServer]:
    async with PriceApiServer() as server:
        yield server


def make_tariff() -> Tariff:
    config = TariffConfig(
        calendar=CalendarConfig(preset="G12w"), fees=G12W_FEES, vat=0.23, exchange_rates={"EUR": 4.25}
    )
    return Tariff(config, currency="PLN", timezone=WARSAW)


def chain(
    api: PriceApiServer, http: HttpClient, tariff: Tariff, *, with_tou: bool = True
) -> list[PriceSource]:
    sources: list[PriceSource] = [
        PseSource(PseConfig(base_url=f"{api.url}/pse"), http),
        EntsoeSource(
            EntsoeConfig(token="t", zone="PL", timezone="Europe/Warsaw", base_url=f"{api.url}/entsoe/api"),
            http,
        ),
    ]
    if with_tou:
        tou = TouConfig(prices={"peak": 0.5, "offpeak": 0.5})
        sources.append(TouSource(tou, tariff.calendar, currency="PLN"))
    return sources


def serve_pse(api: PriceApiServer, day: date = DAY) -> None:
    api.serve("/pse/csdac-pln", fixture(f"pse/csdac-pln_{day}.json"), match=(str(day),))
    api.serve("/pse/rce-pln", fixture(f"pse/rce-pln_{day}.json"), match=(str(day),))


def serve_entsoe(api: PriceApiServer, day: date = DAY) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=WARSAW).astimezone(UTC)
    api.serve(
        "/entsoe/api",
        fixture(f"entsoe/a44_PL_{day}.xml"),
        match=(f"periodStart={start:%Y%m%d%H%M}",),
        content_type="application/xml",
    )


async def run(
    api: PriceApiServer, tmp_path: Path, *, policy: RetryPolicy = FAST_POLICY, with_tou: bool = True
) -> tuple[PriceService, float]:
    tariff = make_tariff()
    http = HttpClient(policy)
    service = PriceService(
        chain(api, http, tariff, with_tou=with_tou),
        tariff,
        timezone=WARSAW,
        cache=PriceCache(tmp_path / "cache"),
        http=http,
    )
    return service, time.monotonic()


async def test_primary_source_serves_everything(api: PriceApiServer, tmp_path: Path) -> None:
    serve_pse(api)
    service, _ = await run(api, tmp_path)
    async with service:
        result = await service.fetch(DAY)
    assert result.status is PriceStatus.REAL
    assert len(result.slots) == 96
    assert result.missing_slots == 0
    assert result.sources_used == ("pse",)
    assert [o.origin for o in result.outcomes] == [Origin.NETWORK]
    first = result.slots[0]  # Wednesday 00:00 local: G12w off-peak
    assert first.start == datetime(2025, 11, 18, 23, 0, tzinfo=UTC)
    assert first.import_price == pytest.approx((0.43635 + 0.0845 + 0.005) * 1.23)
    assert result.covered_until() == datetime(2025, 11, 19, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (Reply(body="upstream exploded", status=500), "HTTP 500"),
        (Reply(body="<html><h1>Maintenance</h1></html>", content_type="text/html"), "not valid JSON"),
        (Reply(body='{"value": [{"dtime_utc": "2025-11-18 23:15:00"}]}'), "field 'business_date' is missing"),
    ],
    ids=["http-500", "garbage", "wrong-shape"],
)
async def test_failing_primary_falls_back_to_the_next_market(
    api: PriceApiServer, tmp_path: Path, failure: Reply, expected: str
) -> None:
    api.add("/pse/csdac-pln", failure)
    serve_entsoe(api)
    service, _ = await run(api, tmp_path)
    async with service:
        result = await service.fetch(DAY)
    assert result.status is PriceStatus.FALLBACK
    assert result.sources_used == ("entsoe",)
    assert len(result.slots) == 96
    (pse_outcome, entsoe_outcome) = result.outcomes
    assert pse_outcome.source == "pse"
    assert pse_outcome.error is not None
    assert expected in pse_outcome.error
    assert entsoe_outcome.ok
    # ENTSO-E's EUR price converted at 4.25 PLN/EUR: (0.10245 * 4.25 + 0.0845 + 0.005) * 1.23
    assert result.slots[0].import_price == pytest.approx((0.10245 * 4.25 + 0.0845 + 0.005) * 1.23)


async def test_timeouts_fall_back_quickly(api: PriceApiServer, tmp_path: Path) -> None:
    slow_s = 10.0
    api.add("/pse/csdac-pln", Reply(body="{}", delay_s=slow_s))
    api.add("/entsoe/api", Reply(body="", delay_s=slow_s))
    policy = RetryPolicy(attempts=2, timeout_s=0.2, backoff_s=0.01, max_backoff_s=0.02)
    service, started = await run(api, tmp_path, policy=policy)
    async with service:
        result = await service.fetch(DAY)
    elapsed = time.monotonic() - started
    assert result.status is PriceStatus.FALLBACK
    assert result.sources_used == ("tou",)
    assert [o.error for o in result.outcomes[:2]] == [
        f"pse: GET {api.url}/pse/csdac-pln failed: timed out",
        f"entsoe: GET {api.url}/entsoe/api failed: timed out",
    ]
    assert api.routes[0].calls == 2  # retried once
    assert elapsed < slow_s / 2  # 2 sources x 2 attempts x 0.2 s, not the 10 s the server takes
    # tou: 0.5 PLN energy in every zone; a Wednesday 10:00 is peak.
    ten = datetime(2025, 11, 19, 9, 0, tzinfo=UTC)
    peak = next(s for s in result.slots if s.start == ten)
    assert peak.import_price == pytest.approx((0.5 + 0.4276 + 0.005) * 1.23)


async def test_retry_after_a_500_succeeds(api: PriceApiServer, tmp_path: Path) -> None:
    api.add(
        "/pse/csdac-pln", Reply(body="busy", status=503), Reply(body=fixture(f"pse/csdac-pln_{DAY}.json"))
    )
    api.serve("/pse/rce-pln", fixture(f"pse/rce-pln_{DAY}.json"))
    service, _ = await run(api, tmp_path)
    async with service:
        result = await service.fetch(DAY)
    assert result.status is PriceStatus.REAL
    assert api.routes[0].calls == 2


async def test_nothing_anywhere_is_an_error_and_two_days_can_be_partial(
    api: PriceApiServer, tmp_path: Path
) -> None:
    api.add("/pse/csdac-pln", Reply(body="down", status=502))
    api.add("/entsoe/api", Reply(body="down", status=502))
    service, _ = await run(api, tmp_path, with_tou=False)
    async with service:
        nothing = await service.fetch(DAY)
        serve_pse(api)
        partial = await service.fetch(DAY, DAY + timedelta(days=1))
    assert nothing.status is PriceStatus.ERROR
    assert nothing.slots == ()
    assert nothing.missing_slots == 96
    assert len(nothing.errors) == 2
    assert all(o.unreachable for o in nothing.outcomes)
    assert partial.status is PriceStatus.PARTIAL
    assert len(partial.slots) == 96
    assert partial.missing_slots == 96
    assert partial.covered_until() == datetime(2025, 11, 19, 23, 0, tzinfo=UTC)


async def test_restart_serves_the_cache_without_refetching(api: PriceApiServer, tmp_path: Path) -> None:
    serve_pse(api)
    service, _ = await run(api, tmp_path)
    async with service:
        first = await service.fetch(DAY)
    requests_before = len(api.requests)
    for route in api.routes:
        route.replies = [Reply(body="outage", status=500)]
    restarted, _ = await run(api, tmp_path)
    async with restarted:
        second = await restarted.fetch(DAY)
    assert len(api.requests) == requests_before  # nothing refetched
    assert second.status is PriceStatus.REAL
    assert [o.origin for o in second.outcomes] == [Origin.CACHE]
    assert second.slots == first.slots


async def test_corrupt_cache_file_is_ignored_and_refetched(api: PriceApiServer, tmp_path: Path) -> None:
    serve_pse(api)
    service, _ = await run(api, tmp_path)
    async with service:
        await service.fetch(DAY)
        cached = next((tmp_path / "cache").rglob("2025-11-19.json"))
        cached.write_text('{"version": 1, "slots": [["garbage"]]}')
        result = await service.fetch(DAY)
    assert [o.origin for o in result.outcomes] == [Origin.NETWORK]
    assert cached.with_suffix(".bad").exists()
    assert result.status is PriceStatus.REAL


async def test_invalid_day_is_not_applied_and_not_cached(api: PriceApiServer, tmp_path: Path) -> None:
    api.serve("/pse/csdac-pln", fixture(f"pse/csdac-pln_{DAY}_missing.json"))
    api.serve("/pse/rce-pln", fixture(f"pse/rce-pln_{DAY}.json"))
    serve_entsoe(api)
    service, _ = await run(api, tmp_path)
    async with service:
        result = await service.fetch(DAY)
    assert result.sources_used == ("entsoe",)
    assert not list((tmp_path / "cache").glob("pse*/*.json"))


async def test_autumn_day_through_the_service(api: PriceApiServer, tmp_path: Path) -> None:
    base = f"{api.url}/pse"
    page1 = fixture(f"pse/csdac-pln_{AUTUMN}_page1.json").replace("__BASE__", base)
    api.serve("/pse/csdac-pln", page1, match=(str(AUTUMN),))
    api.serve(
        "/pse/csdac-pln", fixture(f"pse/csdac-pln_{AUTUMN}_page2.json"), match=(str(AUTUMN), "$after=60")
    )
    api.serve("/pse/rce-pln", fixture(f"pse/rce-pln_{AUTUMN}.json"), match=(str(AUTUMN),))
    service, _ = await run(api, tmp_path)
    async with service:
        result = await service.fetch_days(datetime(2025, 10, 26, 9, 0, tzinfo=UTC), days=1)
    assert result.status is PriceStatus.REAL
    assert len(result.slots) == 100
    # Sunday: G12w off-peak all day; local 02:00 twice, at 00:00 and 01:00 UTC.
    by_start = {s.start: s for s in result.slots}
    first_two = by_start[datetime(2025, 10, 26, 0, 0, tzinfo=UTC)]
    second_two = by_start[datetime(2025, 10, 26, 1, 0, tzinfo=UTC)]
    assert first_two.import_price == pytest.approx((0.39164 + 0.0845 + 0.005) * 1.23)
    assert second_two.import_price == pytest.approx((0.41134 + 0.0845 + 0.005) * 1.23)
    assert second_two.export_price == pytest.approx(0.36528)
    assert all(s.end - s.start == timedelta(minutes=15) for s in result.slots)


async def test_hourly_source_becomes_quarter_hours(api: PriceApiServer, tmp_path: Path) -> None:
    api.serve("/awattar/marketdata", fixture(f"awattar/marketdata_{DAY}.json"))
    tariff = make_tariff()
    async with HttpClient(FAST_POLICY) as http:
        source = AwattarSource(AwattarConfig(base_url=f"{api.url}/awattar"), http)
        service = PriceService([source], tariff, timezone=WARSAW)
        result = await service.fetch(DAY)
    assert len(result.slots) == 96
    first_hour = result.slots[:4]
    assert len({s.import_price for s in first_hour}) == 1
    assert first_hour[0].import_price == pytest.approx((0.10124 * 4.25 + 0.0845 + 0.005) * 1.23)


async def test_from_config_builds_the_chain(api: PriceApiServer, tmp_path: Path) -> None:
    serve_pse(api)
    config = PricesConfig.model_validate(
        {
            "sources": [
                {"type": "pse", "base_url": f"{api.url}/pse"},
                {"type": "tou", "prices": {"peak": 0.5, "offpeak": 0.5}},
            ],
            "tariff": {"calendar": {"preset": "G12w"}, "fees": {"peak": {}, "offpeak": {}}, "vat": 0.23},
            "http": {"timeout_s": 0.5, "attempts": 1},
        }
    )
    service = PriceService.from_config(config, timezone=WARSAW, currency="PLN", cache_dir=tmp_path / "c")
    async with service:
        result = await service.fetch(DAY, DAY + timedelta(days=1))
        pruned = await service.prune_cache(keep_days=0, today=DAY + timedelta(days=1))
    assert result.status is PriceStatus.FALLBACK  # the second day only from tou
    assert result.sources_used == ("pse", "tou")
    assert [(o.source, o.day, o.origin) for o in result.outcomes if o.ok] == [
        ("pse", DAY, Origin.NETWORK),
        ("tou", DAY + timedelta(days=1), Origin.LOCAL),
    ]
    assert pruned == 1


async def test_unpublished_tomorrow_is_filled_by_tou_only_when_asked(
    api: PriceApiServer, tmp_path: Path
) -> None:
    tomorrow = DAY + timedelta(days=1)
    serve_pse(api)
    api.serve("/pse/csdac-pln", '{"value": []}', match=(str(tomorrow),))
    api.serve("/entsoe/api", fixture("entsoe/acknowledgement_no_data.xml"), content_type="application/xml")
    api.serve("/entsoe/api", fixture(f"entsoe/a44_PL_{DAY}.xml"), match=("periodStart=202511182300",))
    now = datetime(2025, 11, 19, 9, 0, tzinfo=UTC)
    service, _ = await run(api, tmp_path)
    async with service:
        filled = await service.fetch_days(now, days=2)
        strict = await service.fetch_days(now, days=2, fill_unpublished=False)
    assert filled.status is PriceStatus.FALLBACK
    assert filled.sources_used == ("pse", "tou")
    unpublished = [o for o in filled.outcomes if o.unpublished]
    assert [(o.source, o.day) for o in unpublished] == [("pse", tomorrow), ("entsoe", tomorrow)]
    assert strict.status is PriceStatus.PARTIAL
    assert strict.sources_used == ("pse",)
    assert strict.missing_slots == 96
    assert [o.source for o in strict.outcomes] == ["pse", "pse", "entsoe"]  # tou not asked for tomorrow


async def test_unreachable_source_is_not_retried_for_its_other_days(
    api: PriceApiServer, tmp_path: Path
) -> None:
    route = api.add("/pse/csdac-pln", Reply(body="down", status=503))
    service, _ = await run(api, tmp_path)
    async with service:
        result = await service.fetch(DAY, DAY + timedelta(days=2))
    assert route.calls == 2  # one day's request and its retry, not three days' worth
    pse = [o for o in result.outcomes if o.source == "pse"]
    assert len(pse) == 3
    assert pse[1].error is not None
    assert "unreachable earlier in this fetch" in pse[1].error
    assert result.sources_used == ("tou",)
