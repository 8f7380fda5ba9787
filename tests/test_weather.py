"""Weather clients: Open-Meteo tilted irradiance and Forecast.Solar estimates, against fixtures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.price_server import SHARED_API, PriceApiServer, Reply, fast_http
from support.shared import needs_shared

from drivers.weather.forecast_solar import ForecastSolarClient, parse_estimate
from drivers.weather.openmeteo import OpenMeteoClient, irradiance_slots, parse_series
from drivers.weather.types import Plane, PvPowerSample, WeatherError, mean_power

WEATHER = Path(__file__).resolve().parent / "fixtures" / "weather"
OPEN_METEO = (WEATHER / "openmeteo_gti_warsaw_2026-06-20.json").read_text(encoding="utf-8")
FORECAST_SOLAR = (WEATHER / "forecast_solar_warsaw_2026-06-20.json").read_text(encoding="utf-8")
SOUTH = Plane(tilt_deg=35, azimuth_deg=0)


def slots_of(body: str) -> object:
    times, values = parse_series(
        body, ("global_tilted_irradiance", "temperature_2m", "cloud_cover"), where="t"
    )
    return irradiance_slots(times, values, where="t")


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=UTC)


@pytest.fixture
async def api() -> AsyncIterator[PriceApiServer]:
    async with PriceApiServer() as server:
        yield server


def test_open_meteo_values_cover_the_preceding_quarter_hour() -> None:
    times, values = parse_series(
        OPEN_METEO, ("global_tilted_irradiance", "temperature_2m", "cloud_cover"), where="t"
    )
    slots = irradiance_slots(times, values, where="t")
    assert len(slots) == 184  # the last 8 steps have no irradiance yet
    by_end = {slot.end: slot for slot in slots}
    assert by_end[utc(20, 2, 30)].start == utc(20, 2, 15)
    assert by_end[utc(20, 2, 15)].gti_w_m2 == 0.0  # before sunrise
    assert by_end[utc(20, 2, 30)].gti_w_m2 == 6.1
    clear = by_end[utc(20, 10, 30)]
    assert (clear.start, clear.gti_w_m2, clear.temperature_c, clear.cloud_cover_pct) == (
        utc(20, 10, 15),
        878.7,
        20.9,
        5,
    )
    overcast = by_end[utc(21, 10, 30)]
    assert overcast.gti_w_m2 == pytest.approx(0.35 * 878.7, abs=0.1)
    assert overcast.cloud_cover_pct == 95


def test_open_meteo_local_times_use_the_offset() -> None:
    body = json.loads(OPEN_METEO)
    body["utc_offset_seconds"] = 7200
    times, _ = parse_series(json.dumps(body), ("global_tilted_irradiance",), where="t")
    assert times[0] == utc(19, 22, 15)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["minutely_15"]["global_tilted_irradiance"].pop(), "must be a list of 192 values"),
        (lambda d: d["minutely_15"]["time"].__setitem__(3, "soon"), r"time\[3\] is not an ISO 8601 time"),
        (lambda d: d["minutely_15"]["global_tilted_irradiance"].__setitem__(50, -4.0), r"\[50\] = -4.0 W/m²"),
        (
            lambda d: d["minutely_15"]["temperature_2m"].__setitem__(5, "warm"),
            r"temperature_2m\[5\] must be a number",
        ),
        (
            lambda d: d["minutely_15"]["time"].__setitem__(7, "2026-06-20T03:00"),
            r"time\[7\] 2026-06-20T03:00Z does not follow",
        ),
        (lambda d: d.pop("minutely_15"), "'minutely_15' is missing"),
    ],
)
def test_open_meteo_bad_bodies(change: object, message: str) -> None:
    document = json.loads(OPEN_METEO)
    change(document)  # type: ignore[operator]
    with pytest.raises(WeatherError, match=message):
        slots_of(json.dumps(document))


async def test_open_meteo_request(api: PriceApiServer) -> None:
    api.serve("/om/forecast", OPEN_METEO)
    async with fast_http() as http:
        slots = await OpenMeteoClient(http, base_url=f"{api.url}/om").tilted_irradiance(
            52.2297, 21.0122, Plane(tilt_deg=30, azimuth_deg=-90)
        )
    assert len(slots) == 184
    (request,) = api.requests
    for part in ("latitude=52.2297", "tilt=30", "azimuth=-90", "timezone=GMT",
                 "minutely_15=global_tilted_irradiance,temperature_2m,cloud_cover"):  # fmt: skip
        assert part in request


async def test_open_meteo_error_document(api: PriceApiServer) -> None:
    api.add(
        "/om/forecast",
        Reply(body='{"error": true, "reason": "Latitude must be in range of -90 to 90°."}', status=400),
    )
    async with fast_http() as http:
        with pytest.raises(WeatherError, match=r"HTTP 400.*Latitude must be in range"):
            await OpenMeteoClient(http, base_url=f"{api.url}/om").tilted_irradiance(52.0, 21.0, SOUTH)


def test_forecast_solar_times_with_offsets() -> None:
    samples = parse_estimate(FORECAST_SOLAR, where="t")
    assert samples[0] == PvPowerSample(utc(20, 2, 15), 0.0)
    assert samples[1] == PvPowerSample(utc(20, 3), 404.0)
    assert len(samples) == 36


def test_forecast_solar_naive_times_use_the_reported_zone() -> None:
    document = json.loads(FORECAST_SOLAR)
    document["result"]["watts"] = {"2026-06-20 12:00:00": 5000, "2026-06-20 13:00:00": 4800}
    samples = parse_estimate(json.dumps(document), where="t")
    assert [s.at for s in samples] == [utc(20, 10), utc(20, 11)]
    del document["message"]["info"]["timezone"]
    with pytest.raises(WeatherError, match=r"has no offset and message\.info\.timezone is missing"):
        parse_estimate(json.dumps(document), where="t")


async def test_forecast_solar_request_and_rate_limit(api: PriceApiServer) -> None:
    path = "/fs/secret-key/estimate/52.2297/21.0122/35/0/6.5"
    limited = {
        "result": "Rate limit for API calls reached.",
        "message": {"code": 429, "type": "error", "text": "Rate limit for API calls reached.",
                    "ratelimit": {"period": 3600, "limit": 12, "retry-at": "2026-06-20T02:48:53+02:00"}},
    }  # fmt: skip
    route = api.add(path, Reply(body=FORECAST_SOLAR), Reply(body=json.dumps(limited), status=429))
    async with fast_http() as http:
        client = ForecastSolarClient(http, api_key="secret-key", base_url=f"{api.url}/fs")
        samples = await client.estimate(52.2297, 21.0122, SOUTH, 6.5)
        assert len(samples) == 36
        with pytest.raises(WeatherError, match=r"API error 429.*retry at 2026-06-20T02:48:53"):
            await client.estimate(52.2297, 21.0122, SOUTH, 6.5)
    assert route.calls == 2  # a rate limit is not retried


def test_mean_power_integrates_the_linear_curve() -> None:
    samples = (
        PvPowerSample(utc(20, 10), 0.0),
        PvPowerSample(utc(20, 11), 4000.0),
        PvPowerSample(utc(20, 12), 0.0),
    )
    assert mean_power(samples, utc(20, 10), utc(20, 11)) == pytest.approx(2000.0)
    assert mean_power(samples, utc(20, 10, 45), utc(20, 11, 15)) == pytest.approx(3500.0)
    assert mean_power(samples, utc(20, 11, 45), utc(20, 12)) == pytest.approx(500.0)
    assert mean_power(samples, utc(20, 9, 45), utc(20, 10)) is None  # before the first sample
    quarter_hours = [
        mean_power(
            samples, utc(20, 10) + k * timedelta(minutes=15), utc(20, 10) + (k + 1) * timedelta(minutes=15)
        )
        for k in range(8)
    ]
    assert sum(q for q in quarter_hours if q is not None) / 4 == pytest.approx(4000.0)  # 4 kWh in all


def test_plane_limits() -> None:
    with pytest.raises(ValueError, match=r"tilt_deg must be within 0\.\.90"):
        Plane(tilt_deg=95, azimuth_deg=0)
    with pytest.raises(ValueError, match=r"azimuth_deg must be within -180\.\.180"):
        Plane(tilt_deg=30, azimuth_deg=270)


@needs_shared(SHARED_API)
def test_recorded_bodies() -> None:
    body = (SHARED_API / "openmeteo" / "emhass_openmeteo_minutely15_2025-02-24.json").read_text(
        encoding="utf-8"
    )
    times, values = parse_series(body, ("shortwave_radiation_instant", "temperature_2m"), where="rec")
    assert len(times) == 288
    assert times[0] == datetime(2025, 2, 23, 23, 0, tzinfo=UTC)  # Europe/Paris, offset 3600
    assert values["shortwave_radiation_instant"][44] == 286.0
    for name in (
        "emhass_forecast_solar_estimate_2022-10-24.json",
        "halibs_forecast.json",
        "halibs_forecast_personal.json",
    ):
        samples = parse_estimate(
            (SHARED_API / "forecast_solar" / name).read_text(encoding="utf-8"), where=name
        )
        assert samples
        assert samples[0].power_w == 0.0
    naive = parse_estimate(
        (SHARED_API / "forecast_solar" / "emhass_forecast_solar_estimate_2022-10-24.json").read_text(
            encoding="utf-8"
        ),
        where="rec",
    )
    assert naive[1] == PvPowerSample(datetime(2022, 10, 24, 7, 0, tzinfo=UTC), 696.0)  # 09:00 Paris CEST
    limited = (SHARED_API / "forecast_solar" / "halibs_ratelimit.json").read_text(encoding="utf-8")
    with pytest.raises(WeatherError, match="retry at 2024-04-27T02:48:53"):
        parse_estimate(limited, where="rec")
