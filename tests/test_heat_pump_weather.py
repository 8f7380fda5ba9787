"""A heat pump's demand following the weather forecast's air temperature (degree-hours): the
forecast keeps Open-Meteo's temperature (also across a restart), the house's demand follows it
where it is known, the plan heats more for a cold day, and nothing changes where it is not set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from support.forecaster_fixtures import SettableClock, data_manager, open_meteo_body, quarters, utc
from support.mqtt_fixtures import mosquitto
from support.price_server import FAST_POLICY, PriceApiServer
from support.sim_harness import close_site, open_site
from test_loads_daemon import BODY
from test_loads_plan import START, config, day_inputs

from controller.config.loads import HeatPumpConfig
from controller.config.models import ConfigError, ForecastConfig, PvArrayConfig, WeatherConfig
from controller.control.loads import LoadSwitcher
from controller.forecast.service import Forecaster
from controller.loads.inputs import make_load_plan
from controller.loads.joint import ThermalState
from controller.loads.thermal import thermal_store

LOADS_HEAD = BODY.split("[[loads]]")[0]  # the daemon test's site, prices and broker
WEATHER = '[forecast.weather]\nsource = "open_meteo"\n'
PUMP = """
[[loads]]
name = "hp"
type = "heat_pump"
electric_w = 3000
cop = 3.0
heat_demand_w = [1500]
demand_w_per_k = 250
demand_base_c = 16
"""


@pytest.fixture
async def api() -> AsyncIterator[PriceApiServer]:
    async with PriceApiServer() as server:
        yield server


def pump(text: str = PUMP) -> HeatPumpConfig:
    load = config(WEATHER + text).loads[0]
    assert isinstance(load, HeatPumpConfig)
    return load


def test_the_demand_follows_the_air_temperature_where_it_is_known() -> None:
    hp = pump()
    hours = np.array([0, 6, 12, 18], dtype=np.intp)
    air = np.array([-4.0, 6.0, 20.0, np.nan])
    # 250 W per kelvin below 16 degC; none above it; the configured demand where unknown
    assert hp.demand_w(hours, air).tolist() == [5000.0, 2500.0, 0.0, 1500.0]
    assert hp.demand_w(hours, None).tolist() == [1500.0] * 4
    fixed = pump(PUMP.replace("demand_w_per_k = 250", "demand_w_per_k = 0"))
    assert fixed.demand_w(hours, air).tolist() == [1500.0] * 4
    starts, ends = quarters(START, 8)
    store = thermal_store(hp, starts, ends, config().site.zone, np.full(8, 0.0))
    assert store.drawn_kwh.tolist() == pytest.approx([4.0 * 0.25] * 8)  # 4 kW for a quarter-hour
    # the switcher's model of the house takes the forecast of the quarter-hour it is in
    cfg = config(WEATHER + PUMP)
    switcher = LoadSwitcher(cfg.loads, cfg.site.zone)
    switcher.set_outdoor(starts, [0.0] * 8)
    assert switcher.outdoor_at(starts[3]) == 0.0
    assert switcher.outdoor_at(ends[-1]) is None


def test_a_cold_forecast_heats_more_and_an_unset_one_plans_as_before() -> None:
    slots, pv, load = day_inputs()
    states = {"hp": ThermalState(21.0)}

    def energy(air: list[float] | None, loads: str = PUMP) -> float:
        c = config(WEATHER + loads)
        plan = make_load_plan(c, 50.0, slots, pv, load, START, None, states, outdoor_c=air)
        return plan.loads[0].energy_kwh

    n = len(slots)
    cold, mild = energy([-5.0] * n), energy([10.0] * n)
    assert cold > 2.0 * mild
    assert cold == pytest.approx(21 * 250 * 48 / 3 / 1000, rel=0.1)  # 21 K x 250 W for 48 h at COP 3
    fixed = PUMP.replace("demand_w_per_k = 250", "demand_w_per_k = 0")
    assert energy([-5.0] * n, fixed) == energy(None, fixed)


def test_following_the_weather_needs_the_open_meteo_forecast() -> None:
    with pytest.raises(ConfigError, match=r"loads\.hp\.demand_w_per_k: .* needs \[forecast.weather\]"):
        config(PUMP)


async def test_the_weather_forecast_keeps_the_air_temperature_across_a_restart(
    api: PriceApiServer, tmp_path: Path
) -> None:
    api.serve("/om/forecast", open_meteo_body(utc(1, 20), 3, temperature_c=-3.5))
    forecast = ForecastConfig(
        arrays=[PvArrayConfig(kwp=5.0, tilt_deg=35.0, azimuth_deg=180.0)],
        weather=WeatherConfig(source="open_meteo", base_url=f"{api.url}/om", refresh_min=60),
    )
    clock = SettableClock(utc(1, 20, 4))
    starts, ends = quarters(utc(1, 20, 6), 96)
    warsaw = ZoneInfo("Europe/Warsaw")
    async with data_manager(tmp_path, clock) as data:
        forecaster = Forecaster(forecast, data, warsaw, http_policy=FAST_POLICY)
        await forecaster.forecast(starts, ends)
        assert forecaster.weather.temperatures(starts).tolist() == [-3.5] * 96
        assert np.isnan(forecaster.weather.temperatures([datetime(2027, 1, 1, tzinfo=UTC)])).all()
    clock.now = utc(1, 20, 4, 30)  # restarted within refresh_min: the kept forecast, no request
    async with data_manager(tmp_path, clock) as data:
        restarted = Forecaster(forecast, data, warsaw, http_policy=FAST_POLICY)
        await restarted.forecast(starts, ends)
        assert restarted.weather.temperatures(starts).tolist() == [-3.5] * 96
    assert len(api.requests) == 1


@pytest.mark.slow
async def test_the_daemon_plans_the_heat_pump_on_the_forecast_temperature(
    api: PriceApiServer, tmp_path: Path
) -> None:
    api.serve("/om/forecast", open_meteo_body(utc(6, 14), 4, temperature_c=-5.0))
    body = LOADS_HEAD + f'[forecast.weather]\nsource = "open_meteo"\nbase_url = "{api.url}/om"\n' + PUMP
    with mosquitto(tmp_path) as broker:
        site = await open_site(tmp_path, utc(6, 15, 4), body.format(port=broker.port))
        try:
            await site.app.replan("test")
            plan = site.app.load_plan
            assert plan is not None
            pump_plan = plan.loads[0]
            hours = sum((s.end - s.start).total_seconds() for s in plan.plan.slots) / 3600.0
            # 21 K below 16 degC at 250 W/K, at COP 3: the configured 1500 W would be a quarter of it
            assert pump_plan.energy_kwh == pytest.approx(21 * 250 * hours / 3 / 1000, rel=0.1)
            assert site.app.loads is not None
            assert site.app.loads.switcher.outdoor_at(utc(6, 15, 4)) == -5.0
        finally:
            await close_site(site)
