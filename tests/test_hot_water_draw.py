"""A water heater's draw learned from the tank's recorded power (controller.loads.hot_water,
the loads' link): a simulated tank on its thermostat, its element's power recorded in SQLite
minute by minute as the daemon records it, learned back within the thermostat's lag; the
configured profile stands until enough whole days are recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import numpy as np
import pytest
from support.forecaster_fixtures import SettableClock, data_manager
from test_loads_plan import config

from controller.config.loads import WaterHeaterConfig
from controller.config.models import ConfigError
from controller.daemon.loads import LoadLink
from controller.loads.hot_water import learned_draw
from controller.loads.thermal import DRAW_SHAPE
from drivers.inverter.types import Snapshot
from storage.datamanager import DataManager

BOILER = """
[[loads]]
name = "boiler"
type = "water_heater"
draw_kwh_per_day = 6.0
draw_learn_days = 10
draw_learn_min_days = 7
[loads.switch]
power_topic = "tele/boiler/SENSOR"
"""
STEP_MIN = 2
FIRST = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # local midnight of 2 March in Warsaw (CET)
# the household's hot water, kWh per local hour: showers in the morning, baths and dishes at night
TRUE_DRAW = np.array([0, 0, 0, 0, 0, 0.2, 1.2, 1.4, 0.5, 0.2, 0.1, 0.1,
                      0.3, 0.2, 0.1, 0.1, 0.1, 0.3, 0.8, 1.5, 1.2, 0.4, 0.2, 0.1])  # fmt: skip


async def record_tank(data: DataManager, tank: WaterHeaterConfig, days: int, own: float = 1.0) -> None:
    """The tank on its own thermostat for ``days`` local days from FIRST, a reading every
    STEP_MIN minutes: its element's power recorded beside the inverter's reading, as the daemon
    records it (``own``: 1 on its own thermostat, 0 as a plan would have it: its power the same here)."""
    rng = np.random.default_rng(22)
    temp, heating = tank.thermostat_c, False
    capacity = tank.capacity_kwh_per_k()
    step_h = STEP_MIN / 60.0
    for minute in range(0, days * 24 * 60, STEP_MIN):
        t = FIRST + timedelta(minutes=minute)
        hour = t.astimezone(tank_zone()).hour
        heating = temp < tank.thermostat_c - tank.hysteresis_k or (heating and temp < tank.thermostat_c)
        power = tank.element_w if heating else 0.0
        drawn = TRUE_DRAW[hour] * step_h * rng.uniform(0.7, 1.3)
        loss = tank.loss_w_per_k * (temp - tank.ambient_c) / 1000.0 * step_h
        temp += (power / 1000.0 * step_h - drawn - loss) / capacity
        reading = Snapshot(
            time=t, pv_w=0.0, load_w=300.0 + power, grid_w=300.0 + power, battery_w=0.0, soc_pct=50.0
        )
        await data.record(
            reading, {"flex_loads_w": power, "flex_load_boiler_w": power, "flex_load_boiler_own": own}
        )


def tank_zone() -> tzinfo:
    return config().site.zone


def tank_config() -> WaterHeaterConfig:
    tank = config(BOILER).loads[0]
    assert isinstance(tank, WaterHeaterConfig)
    return tank


async def test_the_draw_is_learned_from_the_recorded_power_and_planned_with(tmp_path: Path) -> None:
    cfg = config(BOILER)
    tank = tank_config()
    clock = SettableClock(FIRST)
    async with data_manager(tmp_path, clock) as data:
        await record_tank(data, tank, 10)
        clock.now = FIRST + timedelta(days=10, minutes=30)
        await data.flush()
        link = LoadLink(cfg, data, clock)
        await link.draws.learn()
    learned = link.configs()[0]
    assert isinstance(learned, WaterHeaterConfig)
    profile = np.array(learned.draw_profile_kwh)
    assert profile.shape == (24,)
    # the day's total within 10 % of what was drawn
    assert profile.sum() == pytest.approx(TRUE_DRAW.sum(), rel=0.1)
    # the peaks where they are, within the thermostat's lag (an hour or two after the draw)
    assert profile[6:10].sum() == pytest.approx(TRUE_DRAW[6:10].sum(), abs=1.0)
    assert profile[18:23].sum() == pytest.approx(TRUE_DRAW[18:23].sum(), abs=1.0)
    assert profile[0:5].sum() < 0.5
    assert link.draws.described["boiler"] == (
        f"learned from 10 days: {profile.sum():.1f} kWh a day, its hours from 10 days on its thermostat"
    )
    # the switcher's model takes it too
    assert link.switcher.loads["boiler"].config.draw_profile_kwh == learned.draw_profile_kwh


async def test_the_configured_draw_stands_until_enough_days_are_recorded(tmp_path: Path) -> None:
    cfg = config(BOILER)
    clock = SettableClock(FIRST)
    async with data_manager(tmp_path, clock) as data:
        await record_tank(data, tank_config(), 5)
        clock.now = FIRST + timedelta(days=10, minutes=30)  # five days recorded, five not
        await data.flush()
        link = LoadLink(cfg, data, clock)
        await link.draws.learn()
    assert link.configs()[0] == cfg.loads[0]
    assert link.draws.described["boiler"] == "as configured (5 of 7 days recorded)"


def test_learning_is_refused_without_a_measured_power_and_the_estimate_checks_its_input() -> None:
    with pytest.raises(ConfigError, match="draw_learn_days: learning the draw needs"):
        config('[[loads]]\nname = "boiler"\ntype = "water_heater"\ndraw_learn_days = 7\n')
    with pytest.raises(ConfigError, match=r"draw_learn_min_days \(9\) must be at most"):
        config(BOILER.replace("draw_learn_min_days = 7", "draw_learn_min_days = 9").replace("= 10", "= 8"))
    with pytest.raises(ValueError, match="element_kwh"):
        learned_draw(np.zeros((7, 23)), np.ones((7, 23)), tank_config())
    with pytest.raises(ValueError, match="own"):
        learned_draw(np.zeros((7, 24)), np.ones((6, 24)), tank_config())
    # a day with an hour unrecorded does not count
    days = np.ones((7, 24))
    days[3, 5] = np.nan
    assert learned_draw(days, np.ones((7, 24)), tank_config()) is None


def test_days_under_a_plan_give_the_day_s_draw_and_the_configured_hours() -> None:
    """Under a plan the element runs when energy is cheap, not when water is drawn: those days
    tell how much is drawn in a day, not when."""
    tank = tank_config()
    element = np.zeros((10, 24))
    element[:, 2:5] = 3.0  # heated in the cheap night hours only: 9 kWh a day
    learned = learned_draw(element, np.zeros((10, 24)), tank)
    assert learned is not None
    loss = tank.loss_w_per_k * (tank.thermostat_c - tank.hysteresis_k / 2 - tank.ambient_c) / 1000 * 24
    assert learned.per_day_kwh == pytest.approx(9.0 - loss, abs=1e-3)
    assert learned.shape_days == 0
    configured = np.array(DRAW_SHAPE) / sum(DRAW_SHAPE)
    assert np.array(learned.profile_kwh) == pytest.approx(configured * learned.per_day_kwh, abs=1e-3)
    # seven whole days on its thermostat of ten: the hours are theirs
    own = np.zeros((10, 24))
    own[3:] = 1.0
    mixed = learned_draw(element, own, tank)
    assert mixed is not None
    assert mixed.shape_days == 7
