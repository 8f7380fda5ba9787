"""The forecaster's weather PV against a loopback stand-in for Open-Meteo and Forecast.Solar:
arrays and their azimuths, failures falling back, the kept forecast across outages and restarts,
and calibration on measured PV."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.forecaster_fixtures import (
    QUARTER,
    SettableClock,
    data_manager,
    open_meteo_body,
    quarters,
    record_quarters,
    sunny_gti,
    utc,
)
from support.price_server import FAST_POLICY, PriceApiServer, Reply
from support.waiting import eventually

from controller.config.models import ForecastConfig, PvArrayConfig, WeatherConfig
from controller.forecast.combine import TYPICAL_CLEAR_SKY_SCALE
from controller.forecast.pv_model import clear_sky_pv_w
from controller.forecast.service import Forecaster
from drivers.http import RetryPolicy
from drivers.weather.forecast_solar import parse_estimate
from drivers.weather.types import mean_power

WARSAW = ZoneInfo("Europe/Warsaw")
WEATHER = Path(__file__).resolve().parent / "fixtures" / "weather"
SOUTH = PvArrayConfig(kwp=5.0, tilt_deg=35.0, azimuth_deg=180.0, losses_pct=10.0)


def site(*arrays: PvArrayConfig, **weather: object) -> ForecastConfig:
    settings = {"source": "open_meteo", **weather}
    return ForecastConfig(arrays=list(arrays or [SOUTH]), weather=WeatherConfig(**settings))


def south_power_w(gti: float, air_c: float, kwp: float = 5.0, losses: float = 0.10) -> float:
    """By hand: kWp x irradiance x (1 - losses) x (1 - 0.4 %/K above 25 °C of a cell 0.03 K per W/m² above air)."""
    return kwp * gti * (1 - losses) * (1 - 0.004 * (air_c + 0.03 * gti - 25.0))


def sunny_power(quarter: datetime) -> float:
    """The south array's power in the quarter hour from ``quarter`` under the formula's sun."""
    return south_power_w(sunny_gti(quarter + QUARTER), 25.0)


@pytest.fixture
async def api() -> AsyncIterator[PriceApiServer]:
    async with PriceApiServer() as server:
        yield server


async def test_open_meteo_irradiance_becomes_the_pv_forecast(api: PriceApiServer, tmp_path: Path) -> None:
    body = (WEATHER / "openmeteo_gti_warsaw_2026-06-20.json").read_text(encoding="utf-8")
    api.serve("/om/forecast", body)
    clock = SettableClock(utc(6, 20, 4))
    async with data_manager(tmp_path, clock) as data:
        forecaster = Forecaster(site(base_url=f"{api.url}/om"), data, WARSAW, http_policy=FAST_POLICY)
        starts, ends = quarters(utc(6, 20, 4), 96)
        result = await forecaster.forecast(starts, ends)
    assert (result.weather, result.stale, result.pv_source, result.source) == (
        "fresh",
        False,
        "weather",
        "model",
    )
    # the quarter 10:15-10:30 has 878.7 W/m² at 20.9 °C (the value at 10:30 covers the quarter before it)
    assert result.pv_w[starts.index(utc(6, 20, 10, 15))] == pytest.approx(
        south_power_w(878.7, 20.9), rel=1e-6
    )
    (request,) = api.requests
    assert "azimuth=0" in request
    assert "tilt=35" in request
    assert "past_days=7" in request
    assert "forecast_days=2" in request  # until the horizon's end, 2026-06-21 04:00


async def test_several_arrays_add_up_and_each_gets_its_own_azimuth(
    api: PriceApiServer, tmp_path: Path
) -> None:
    east = PvArrayConfig(kwp=3.0, tilt_deg=20.0, azimuth_deg=90.0, losses_pct=10.0)
    west = PvArrayConfig(kwp=4.0, tilt_deg=20.0, azimuth_deg=270.0, losses_pct=10.0)
    morning_sun = lambda end: 600.0 if end.hour < 12 else 100.0  # noqa: E731
    evening_sun = lambda end: 100.0 if end.hour < 12 else 600.0  # noqa: E731
    api.serve("/om/forecast", open_meteo_body(utc(6, 20), 2, morning_sun, 25.0), match=("azimuth=-90",))
    api.serve("/om/forecast", open_meteo_body(utc(6, 20), 2, evening_sun, 25.0), match=("azimuth=90",))
    clock = SettableClock(utc(6, 20, 6))
    async with data_manager(tmp_path, clock) as data:
        forecaster = Forecaster(
            site(east, west, base_url=f"{api.url}/om"), data, WARSAW, http_policy=FAST_POLICY
        )
        starts, ends = quarters(utc(6, 20, 8), 32)
        result = await forecaster.forecast(starts, ends)
    assert len(api.requests) == 2
    morning = result.pv_w[0]  # 08:00, the east plane in the sun
    assert morning == pytest.approx(
        south_power_w(600.0, 25.0, 3.0) + south_power_w(100.0, 25.0, 4.0), rel=1e-6
    )
    afternoon = result.pv_w[starts.index(utc(6, 20, 14))]
    assert afternoon == pytest.approx(
        south_power_w(100.0, 25.0, 3.0) + south_power_w(600.0, 25.0, 4.0), rel=1e-6
    )


@pytest.mark.parametrize(
    ("reply", "calls"),
    [
        (Reply(body="oops", status=500), FAST_POLICY.attempts),
        (Reply(body="{}", delay_s=1.0), FAST_POLICY.attempts),
        (Reply(body="<html>not json</html>"), 1),  # an answer that does not parse is not retried
    ],
    ids=["http-500", "timeout", "garbage"],
)
async def test_a_failing_source_falls_back_to_the_clear_sky_model(
    api: PriceApiServer, tmp_path: Path, reply: Reply, calls: int
) -> None:
    route = api.add("/om/forecast", reply)
    clock = SettableClock(utc(6, 20, 4))
    async with data_manager(tmp_path, clock) as data:
        config = site(base_url=f"{api.url}/om")
        forecaster = Forecaster(config, data, WARSAW, http_policy=FAST_POLICY)
        starts, ends = quarters(utc(6, 20, 4), 48)
        result = await forecaster.forecast(starts, ends)
        events = await data.events(kinds=["forecast.weather"])
        # resting after the failure: the next forecast does not ask again
        await forecaster.forecast(starts, ends)
    assert route.calls == calls
    assert (result.weather, result.stale, result.pv_source) == ("unavailable", True, "clear_sky")
    mids = [s + (e - s) / 2 for s, e in zip(starts, ends, strict=True)]
    expected = (
        clear_sky_pv_w(config.arrays, config.latitude, config.longitude, mids) * TYPICAL_CLEAR_SKY_SCALE
    )
    assert result.pv_w == pytest.approx(expected.tolist())
    assert len(events) == 1
    assert "no weather forecast yet" in events[0].message
    assert forecaster.health()["weather_error"]


async def test_an_outage_and_a_restart_serve_the_kept_forecast(api: PriceApiServer, tmp_path: Path) -> None:
    route = api.add(
        "/om/forecast", Reply(body=open_meteo_body(utc(6, 20), 3)), Reply(body="down", status=503)
    )
    clock = SettableClock(utc(6, 20, 4))
    config = site(base_url=f"{api.url}/om", refresh_min=60)
    starts, ends = quarters(utc(6, 20, 6), 96)
    async with data_manager(tmp_path, clock) as data:
        first = await Forecaster(config, data, WARSAW, http_policy=FAST_POLICY).forecast(starts, ends)
    assert first.weather == "fresh"
    clock.now = utc(6, 20, 4, 30)  # restarted within refresh_min: no new request
    async with data_manager(tmp_path, clock) as data:
        restarted = Forecaster(config, data, WARSAW, http_policy=FAST_POLICY)
        again = await restarted.forecast(starts, ends)
        assert route.calls == 1
        assert again.weather == "fresh"
        assert again.pv_w == pytest.approx(first.pv_w, abs=0.05)  # kept to 0.1 W
        clock.now = utc(6, 20, 5, 30)  # due again, and the source is down
        outage = await restarted.forecast(starts, ends)
    assert route.calls == 1 + FAST_POLICY.attempts
    assert (outage.weather, outage.stale) == ("stale", True)
    assert outage.pv_w == pytest.approx(first.pv_w, abs=0.05)


async def test_calibration_scales_the_weather_forecast_by_measured_output(
    api: PriceApiServer, tmp_path: Path
) -> None:
    # eight days of weather (7 past days for calibration), the site measured 80 % of it
    api.serve("/om/forecast", open_meteo_body(utc(6, 13), 9))
    clock = SettableClock(utc(6, 20, 3))
    async with data_manager(tmp_path, clock) as data:
        await record_quarters(data, utc(6, 13), utc(6, 20, 3), lambda q: 0.8 * sunny_power(q), 400.0)
        forecaster = Forecaster(site(base_url=f"{api.url}/om"), data, WARSAW, http_policy=FAST_POLICY)
        starts, ends = quarters(utc(6, 20, 3), 96)
        result = await forecaster.forecast(starts, ends)
    assert result.calibration == pytest.approx(0.8, abs=1e-3)
    assert result.source == "history"
    assert result.pv_source == "weather+history"
    noon = starts.index(utc(6, 20, 10))
    weather_part = 0.8 * sunny_power(utc(6, 20, 10))
    # the blend: the prior weather weight on the calibrated forecast, the rest on the history,
    # which saw the same sunny days
    assert result.weather_weight == pytest.approx(0.8)
    assert result.pv_w[noon] == pytest.approx(weather_part, rel=0.02)


async def test_calibration_is_clipped_when_the_site_measures_far_less(
    api: PriceApiServer, tmp_path: Path
) -> None:
    api.serve("/om/forecast", open_meteo_body(utc(6, 13), 9))
    clock = SettableClock(utc(6, 20, 3))
    async with data_manager(tmp_path, clock) as data:
        await record_quarters(data, utc(6, 13), utc(6, 20, 3), lambda q: 0.1 * sunny_power(q), 400.0)
        forecaster = Forecaster(site(base_url=f"{api.url}/om"), data, WARSAW, http_policy=FAST_POLICY)
        result = await forecaster.forecast(*quarters(utc(6, 20, 3), 8))
    assert result.calibration == 0.5


async def test_forecast_solar_estimates_per_array(api: PriceApiServer, tmp_path: Path) -> None:
    body = (WEATHER / "forecast_solar_warsaw_2026-06-20.json").read_text(encoding="utf-8")
    route = api.serve("/fs/key123/estimate/52.2300/21.0100/35/0/5", body)
    clock = SettableClock(utc(6, 20, 4))
    async with data_manager(tmp_path, clock) as data:
        config = site(source="forecast_solar", base_url=f"{api.url}/fs", api_key="key123")
        forecaster = Forecaster(config, data, WARSAW, http_policy=FAST_POLICY)
        starts, ends = quarters(utc(6, 20, 4), 32)
        result = await forecaster.forecast(starts, ends)
    assert route.calls == 1
    assert result.weather == "fresh"
    samples = parse_estimate(body, where="t")
    expected = [mean_power(samples, s, e) for s, e in zip(starts, ends, strict=True)]
    assert result.pv_w == pytest.approx(expected)
    assert json.dumps(forecaster.health()).count("key123") == 0


async def test_a_slow_source_does_not_hold_up_the_forecast(api: PriceApiServer, tmp_path: Path) -> None:
    slow_s = 3.0
    api.add("/om/forecast", Reply(body=open_meteo_body(utc(6, 20), 2), delay_s=slow_s))
    clock = SettableClock(utc(6, 20, 4))
    patient = RetryPolicy(attempts=1, timeout_s=15.0)
    async with data_manager(tmp_path, clock) as data:
        forecaster = Forecaster(site(base_url=f"{api.url}/om"), data, WARSAW, http_policy=patient)
        forecaster.weather.wait_s = 0.1
        starts, ends = quarters(utc(6, 20, 4), 16)
        began = time.monotonic()
        early = await forecaster.forecast(starts, ends)
        assert time.monotonic() - began < slow_s  # not held up until the source answered
        assert forecaster.weather.fetched_at is None
        assert (early.weather, early.pv_source) == ("unavailable", "clear_sky")
        await eventually(
            lambda: forecaster.weather.fetched_at is not None, 30, "the fetch completes in the background"
        )
        later = await forecaster.forecast(starts, ends)
    assert (later.weather, later.pv_source) == ("fresh", "weather")


async def test_close_stops_a_fetch_under_way(api: PriceApiServer, tmp_path: Path) -> None:
    slow_s = 10.0  # under the client's 15-s timeout: only the close can end the fetch sooner
    api.add("/om/forecast", Reply(body="{}", delay_s=slow_s))
    clock = SettableClock(utc(6, 20, 4))
    async with data_manager(tmp_path, clock) as data:
        forecaster = Forecaster(
            site(base_url=f"{api.url}/om"), data, WARSAW, http_policy=RetryPolicy(attempts=1)
        )
        forecaster.weather.wait_s = 0.05
        await forecaster.forecast(*quarters(utc(6, 20, 4), 4))
        began = time.monotonic()
        await forecaster.close()
    assert time.monotonic() - began < slow_s / 2  # the fetch was stopped, not waited for
    assert forecaster.weather.fetched_at is None
