"""A store's measured temperature end to end: the daemon (its jobs on simulated time) against the
emulated inverter, a real mosquitto and a water heater simulated by an MQTT client that reports its
power and its temperature in one Tasmota-like message.

The tank starts at 47 degC, where the daemon's model, without a sensor, would have it at its
thermostat's 55 degC, on a June morning whose hot water would take it below its 45 degC minimum
within the hour, and draws 1.4 times the hot water its profile says. The first reading, far from
the plan's path, plans again at once from it: the daemon's temperature follows the tank's, every
plan starts where the tank is, the daemon counts what the tank drew against its profile, and the
tank stays warm enough. A reading no sensor gives is refused and changes nothing; once the sensor stops,
the model goes on from its last reading and the state says so, with the reading's age.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.load_site import BASE, SiteLoads, loads_listening
from support.mqtt_fixtures import Observer, mosquitto
from support.servers import ServerProcess
from support.sim_harness import Site, close_site, open_site
from support.waiting import eventually
from test_loads_daemon import BODY

from controller.config.loads import WaterHeaterConfig
from controller.loads.joint import LoadPlan, ThermalState

START = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 06:00 in Warsaw
TANK_C = 47.0
DRAW_FACTOR = 1.4  # the household uses more hot water today than the tank's profile says
SENSED = (
    BODY.split("[[loads]]")[0]
    + """[[loads]]
name = "boiler"
type = "water_heater"
draw_kwh_per_day = 8.0
temperature_topic = "tele/boiler/SENSOR"
temperature_json_path = "DS18B20.Temperature"
temperature_max_age_min = 10
[loads.switch]
via = "mqtt"
command_topic = "cmnd/boiler/POWER"
power_topic = "tele/boiler/SENSOR"
power_json_path = "ENERGY.Power"
"""
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ServerProcess]:
    with mosquitto(tmp_path) as server:
        yield server


@pytest.mark.slow
async def test_a_measured_tank_temperature_is_where_the_plans_start(
    tmp_path: Path, broker: ServerProcess
) -> None:
    observer = Observer(broker.port, ("hemsd/#",))
    site: Site = await open_site(tmp_path, START, SENSED.format(port=broker.port), start_app=False)
    loads = SiteLoads(site, broker.port)
    sim = loads.sim
    sim.loads["boiler"].temperature_c = TANK_C
    sim.loads["boiler"].draw_factor = DRAW_FACTOR
    boiler = site.config.loads[0]
    assert isinstance(boiler, WaterHeaterConfig)
    tracked: list[float] = []  # the daemon's temperature less the tank's, after each reading
    # each new plan's starting temperature, the tank's at the reading before, and when it was made
    starts: list[tuple[float, float, datetime]] = []
    read_c = [TANK_C]
    seen: list[LoadPlan | None] = [None]

    async def step(s: Site) -> None:
        now = s.true_clock.now()
        if now == loads.since:
            return
        tank = sim.loads["boiler"]
        plan = s.app.load_plan
        if plan is not None and plan is not seen[0]:  # made since the step before, from its reading
            seen[0] = plan
            schedule = next(x for x in plan.loads if x.name == "boiler")
            starts.append((schedule.temperature_c[0], read_c[0], plan.plan.created_at))
        loads.advance_to(now)
        await loads.exchange(s)
        links = s.app.loads
        assert links is not None
        if tank.sensing:
            read_c[0] = tank.temperature_c
            await eventually(
                lambda: (
                    abs((links.switcher.loads["boiler"].temperature_c or 0.0) - tank.temperature_c) < 0.02
                ),
                30,
                "the daemon to read the tank's temperature",
            )
            tracked.append((links.switcher.loads["boiler"].temperature_c or 0.0) - tank.temperature_c)

    try:
        await site.app.start()
        await loads_listening(observer, "boiler")
        app = site.app
        assert app.loads is not None
        # before any reading, the model: the tank at its thermostat's temperature
        assert app.loads.switcher.loads["boiler"].temperature_c == boiler.thermostat_c
        await site.run(timedelta(hours=3), during=step, jobs=("poll", "plan", "forecast"))
        await asyncio.sleep(0.3)
        assert not site.failures, site.failures
        # the daemon's temperature is the tank's; every plan after the first reading starts there
        assert len(tracked) >= 170
        assert max(abs(d) for d in tracked) < 0.02
        assert len(starts) >= 12  # every 15 minutes, and at once on the first reading
        assert starts[0][0] == boiler.thermostat_c  # the plan at the start: no reading yet
        # (the model moves it on from the reading for the minute to the plan: at most 0.25 K)
        assert all(abs(planned - tank) < 0.25 for planned, tank, _ in starts[1:]), starts[:4]
        assert starts[1][2] <= START + timedelta(minutes=2)  # made at the first reading, not 15 minutes on
        assert sim.loads["boiler"].lowest_c >= boiler.min_c - 0.3
        assert sim.loads["boiler"].on_minutes  # it heated
        # from its readings the daemon counts what the tank drew today: more than its profile
        counted = app.loads.switcher.states()["boiler"]
        assert isinstance(counted, ThermalState)
        assert counted.expected_today_kwh > 1.0
        # (each reading's count is signed: a reading delivered after the next tick, counted
        # against a model a minute ahead of it, is made good by the next one)
        assert counted.drawn_today_kwh / counted.expected_today_kwh == pytest.approx(DRAW_FACTOR, abs=0.03)
        state = json.loads(observer.payload(f"{BASE}/load/boiler/state") or b"{}")
        assert state["temperature_source"] == "measured"
        assert state["temperature_age_s"] < 120
        # a reading no sensor gives is refused: nothing changes
        before = app.loads.switcher.loads["boiler"].temperature_c
        observer.publish("tele/boiler/SENSOR", json.dumps({"DS18B20": {"Temperature": 500}}))
        observer.publish("tele/boiler/SENSOR", json.dumps({"DS18B20": {"Temperature": "hot"}}))
        await asyncio.sleep(0.5)
        assert app.loads.switcher.loads["boiler"].temperature_c == before
        # the sensor stops: the model goes on from the last reading, the state says how old it is
        sim.loads["boiler"].sensing = False
        await site.run(timedelta(minutes=20), during=step, jobs=("poll", "plan"))
        assert not site.failures, site.failures

        def state_now() -> dict[str, float | str]:
            return json.loads(observer.payload(f"{BASE}/load/boiler/state") or b"{}")  # type: ignore[no-any-return]

        # the observer gets the state of the last tick a moment after it is published
        await eventually(
            lambda: (
                state_now().get("temperature_source") == "model"
                and float(state_now()["temperature_age_s"]) >= 20 * 60 - 120
            ),
            30,
            "a state of the model, 20 minutes on from the last reading",
        )
        state = state_now()
        assert 20 * 60 - 120 <= state["temperature_age_s"] <= 20 * 60 + 60
        assert abs(state["temperature_c"] - sim.loads["boiler"].temperature_c) < 1.0
    finally:
        await close_site(site)
        sim.close()
        observer.close()
