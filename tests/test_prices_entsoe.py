"""ENTSO-E A44: XML parsing (A03 gaps, several sequences and resolutions, DST) and fetching."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from support.price_server import PriceApiServer, Reply, fast_http, fixture

from drivers.prices.entsoe import EntsoeConfig, EntsoeSource, parse_a44, select_day, zone_eic
from drivers.prices.types import MarketSlot, PriceDataError, PriceFetchError, PriceUnavailableError

WARSAW = ZoneInfo("Europe/Warsaw")
NORMAL, SPRING, AUTUMN, NEGATIVE = (
    date(2025, 11, 19),
    date(2026, 3, 29),
    date(2025, 10, 26),
    date(2026, 5, 10),
)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def day_from(name: str, day: date, sequence: int = 1) -> tuple[MarketSlot, ...]:
    curves = parse_a44(fixture(f"entsoe/{name}"), where="test")
    return select_day(curves, day=day, tz=WARSAW, sequence=sequence, source="entsoe")


@pytest.fixture
async def api() -> AsyncIterator[PriceApiServer]:
    async with PriceApiServer() as server:
        yield server


def test_sequence_one_quarter_hours_win_over_hourly_sequence_two() -> None:
    curves = parse_a44(fixture(f"entsoe/a44_PL_{NORMAL}.xml"), where="test")
    assert sorted((c.sequence, c.resolution) for c in curves) == [
        (1, timedelta(minutes=15)),
        (2, timedelta(hours=1)),
    ]
    slots = select_day(curves, day=NORMAL, tz=WARSAW, sequence=1, source="entsoe")
    assert len(slots) == 96
    assert slots[0].start == utc(2025, 11, 18, 23, 0)
    assert slots[0].currency == "EUR"
    assert slots[0].price == pytest.approx(0.10245)
    assert slots[1].price == pytest.approx(0.09937)


def test_a03_gap_repeats_the_previous_price() -> None:
    slots = day_from(f"a44_PL_{NORMAL}.xml", NORMAL)
    # Position 4 is absent from the document (same price as position 3).
    assert "<position>4</position>" not in fixture(f"entsoe/a44_PL_{NORMAL}.xml").split("</TimeSeries>")[0]
    assert slots[3].price == slots[2].price


def test_absent_sequence_is_named() -> None:
    curves = parse_a44(fixture(f"entsoe/a44_PL_{SPRING}.xml"), where="test")
    with pytest.raises(PriceDataError, match=r"classification sequence 2 absent \(present: 1\)"):
        select_day(curves, day=SPRING, tz=WARSAW, sequence=2, source="entsoe")


def test_other_sequence_can_be_chosen() -> None:
    slots = day_from(f"a44_PL_{NORMAL}.xml", NORMAL, sequence=2)
    assert len(slots) == 24
    assert slots[0].end - slots[0].start == timedelta(hours=1)
    assert slots[0].price == pytest.approx(0.09899)


def test_spring_day_quarter_hours_and_pre_go_live_hours() -> None:
    assert len(day_from(f"a44_PL_{SPRING}.xml", SPRING)) == 92
    hourly = day_from("a44_PL_2025-03-30_PT60M.xml", date(2025, 3, 30))
    assert len(hourly) == 23
    assert hourly[0].price == pytest.approx(0.10181)
    assert hourly[-1].end == utc(2025, 3, 30, 22, 0)


def test_autumn_day_has_100_quarter_hours() -> None:
    slots = day_from(f"a44_PL_{AUTUMN}.xml", AUTUMN)
    assert len(slots) == 100
    assert slots[0].start == utc(2025, 10, 25, 22, 0)
    assert slots[-1].end == utc(2025, 10, 26, 23, 0)


def test_negative_prices_are_kept() -> None:
    slots = day_from(f"a44_PL_{NEGATIVE}.xml", NEGATIVE)
    negatives = [s for s in slots if s.price < 0]
    assert len(negatives) >= 12
    assert min(s.price for s in slots) == pytest.approx(-0.04823)


def test_missing_position_in_a01_curve() -> None:
    with pytest.raises(PriceDataError, match=r"Point position 42 missing \(curveType A01\)"):
        parse_a44(fixture(f"entsoe/a44_PL_{NORMAL}_missing.xml"), where="test")


def test_period_shorter_than_the_day_reports_missing_slots() -> None:
    body = fixture(f"entsoe/a44_PL_{NORMAL}.xml")
    first_series = body.split("</TimeSeries>")[0]
    shortened = first_series.replace("<end>2025-11-19T23:00Z</end>", "<end>2025-11-19T22:00Z</end>")
    shortened = re.sub(r"\s*<Point>\s*<position>9[3-6]</position>.*?</Point>", "", shortened, flags=re.S)
    curves = parse_a44(body.replace(first_series, shortened), where="test")
    with pytest.raises(PriceDataError, match=r"4 slot\(s\) missing from 2025-11-19T22:00Z"):
        select_day(curves, day=NORMAL, tz=WARSAW, sequence=1, source="entsoe")


def test_malformed_xml() -> None:
    with pytest.raises(PriceDataError, match="not well-formed XML"):
        parse_a44(fixture(f"entsoe/a44_PL_{NORMAL}_malformed.xml"), where="test")


def test_acknowledgement_999_means_no_data() -> None:
    with pytest.raises(PriceUnavailableError, match="No matching data found"):
        parse_a44(fixture("entsoe/acknowledgement_no_data.xml"), where="test")


def test_wrong_unit_is_rejected() -> None:
    body = fixture(f"entsoe/a44_PL_{NORMAL}.xml").replace(">MWH<", ">KWH<", 1)
    with pytest.raises(PriceDataError, match="price unit 'KWH', expected 'MWH'"):
        parse_a44(body, where="test")


def test_zone_aliases_and_config_errors() -> None:
    assert zone_eic("pl") == "10YPL-AREA-----S"
    assert zone_eic("10Y1001A1001A82H") == "10Y1001A1001A82H"
    with pytest.raises(ValidationError, match="unknown bidding zone 'Mars'"):
        EntsoeConfig(token="t", zone="Mars")
    with pytest.raises(ValidationError, match="unknown time zone 'Europe/Atlantis'"):
        EntsoeConfig(token="t", zone="PL", timezone="Europe/Atlantis")


async def test_fetch_day_sends_the_documented_query(api: PriceApiServer) -> None:
    api.serve("/entsoe/api", fixture(f"entsoe/a44_PL_{NORMAL}.xml"), content_type="application/xml")
    config = EntsoeConfig(
        token="secret-token", zone="PL", timezone="Europe/Warsaw", base_url=f"{api.url}/entsoe/api"
    )
    async with fast_http() as http:
        slots = await EntsoeSource(config, http).fetch_day(NORMAL)
    assert len(slots) == 96
    (request,) = api.requests
    for part in ("documentType=A44", "in_Domain=10YPL-AREA-----S", "out_Domain=10YPL-AREA-----S",
                 "periodStart=202511182300", "periodEnd=202511192300", "securityToken=secret-token"):  # fmt: skip
        assert part in request


async def test_refused_request_is_a_fetch_error_without_the_token(api: PriceApiServer) -> None:
    api.add(
        "/entsoe/api",
        Reply(body="<html><body>Unauthorized</body></html>", status=401, content_type="text/html"),
    )
    config = EntsoeConfig(token="secret-token", zone="PL", base_url=f"{api.url}/entsoe/api")
    async with fast_http() as http:
        with pytest.raises(PriceFetchError, match="HTTP 401") as caught:
            await EntsoeSource(config, http).fetch_day(NORMAL)
    assert "secret-token" not in str(caught.value)


async def test_acknowledgement_with_http_400(api: PriceApiServer) -> None:
    ack = fixture("entsoe/acknowledgement_no_data.xml").replace("<code>999</code>", "<code>A01</code>")
    api.add("/entsoe/api", Reply(body=ack, status=400, content_type="application/xml"))
    config = EntsoeConfig(token="t", zone="PL", base_url=f"{api.url}/entsoe/api")
    async with fast_http() as http:
        with pytest.raises(PriceFetchError, match="request refused \\(reason A01\\)"):
            await EntsoeSource(config, http).fetch_day(NORMAL)


async def test_token_from_a_file(api: PriceApiServer, tmp_path: Path) -> None:
    token_file = tmp_path / "entsoe"
    token_file.write_text("file-token\n")
    api.serve("/entsoe/api", fixture(f"entsoe/a44_PL_{NORMAL}.xml"), content_type="application/xml")
    config = EntsoeConfig(
        token_file=token_file, zone="PL", timezone="Europe/Warsaw", base_url=f"{api.url}/entsoe/api"
    )
    async with fast_http() as http:
        assert len(await EntsoeSource(config, http).fetch_day(NORMAL)) == 96
    assert "securityToken=file-token&" in api.requests[0] or api.requests[0].endswith(
        "securityToken=file-token"
    )
    token_file.unlink()
    async with fast_http() as http:
        with pytest.raises(PriceFetchError, match="cannot read token_file"):
            await EntsoeSource(config, http).fetch_day(NORMAL)
    with pytest.raises(ValidationError, match="exactly one of token and token_file"):
        EntsoeConfig(zone="PL")
