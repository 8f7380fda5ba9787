"""The daemon switches flexible loads end to end: the emulated inverter, a real mosquitto, and
loads simulated by an MQTT client that follows the published commands and reports power.

A day of 14 hours on simulated time (the application's jobs at their cadence, ``sim_harness``):
the water heater runs in its planned slots and never falls below its comfort temperature, the
dishwasher runs once in its window for its whole run, a pool pump whose relay does not work is
commanded again, then marked unreliable (until told otherwise: it is not tried again here),
left to its default and reported; Home Assistant is
told of every load's entities.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from support.load_site import BASE, SiteLoads, loads_listening
from support.mqtt_fixtures import Observer, mosquitto
from support.servers import ServerProcess
from support.sim_harness import Site, close_site, open_site
from support.waiting import eventually

from controller.config.loads import WaterHeaterConfig
from controller.loads.joint import LoadPlan
from storage.records import Resolution

START = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 06:00 in Warsaw
BODY = """
[site]
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 60
publish_interval_s = 300
[[prices.sources]]
type = "tou"
prices = {{ peak = 0.9, offpeak = 0.3 }}
export_prices = {{ peak = 0.1, offpeak = 0.1 }}
[prices.tariff]
vat = 0.0
[prices.tariff.calendar]
preset = "G12"
[prices.tariff.fees.peak]
distribution = 0.0
[prices.tariff.fees.offpeak]
distribution = 0.0
[prices.tariff.export]
mode = "market"
[mqtt]
host = "127.0.0.1"
port = {port}
keepalive_s = 5
[[loads]]
name = "boiler"
type = "water_heater"
draw_kwh_per_day = 8.0
[loads.switch]
via = "mqtt"
command_topic = "cmnd/boiler/POWER"
power_topic = "tele/boiler/SENSOR"
power_json_path = "ENERGY.Power"
[[loads]]
name = "dishwasher"
type = "appliance"
power_w = 1800
duration_min = 60
earliest_start = "08:00"
latest_end = "18:00"
default_start = "08:00"
[loads.switch]
power_topic = "tele/dishwasher/SENSOR"
power_json_path = "ENERGY.Power"
[[loads]]
name = "pool"
type = "appliance"
power_w = 700
duration_min = 120
earliest_start = "06:00"
latest_end = "20:00"
[loads.switch]
via = "mqtt"
command_topic = "cmnd/pool/POWER"
power_topic = "tele/pool/SENSOR"
power_json_path = "ENERGY.Power"
unresponsive_readings = 3
unreliable_retry_min = 0
"""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ServerProcess]:
    with mosquitto(tmp_path) as server:
        yield server


def planned_on(plan: LoadPlan, name: str, at: datetime, rated_w: float) -> bool:
    """Is the load planned to run at ``at`` (a store's element for the first part of a slot
    planned at less than its power)."""
    schedule = next(s for s in plan.loads if s.name == name)
    for slot, state, power in zip(plan.plan.slots, schedule.states, schedule.power_w, strict=True):
        if slot.start <= at < slot.end:
            share = min(power / rated_w, 1.0) if schedule.type != "appliance" else 1.0
            return state in ("on", "boost") and at < slot.start + share * (slot.end - slot.start)
    return False


@pytest.mark.slow
async def test_a_day_of_loads_switched_over_mqtt(tmp_path: Path, broker: ServerProcess) -> None:
    observer = Observer(broker.port, ("hemsd/#", "homeassistant/#", "cmnd/#"))
    site: Site = await open_site(tmp_path, START, BODY.format(port=broker.port), start_app=False)
    loads = SiteLoads(site, broker.port, ignoring=("pool",))
    sim = loads.sim
    boiler = site.config.loads[0]
    assert isinstance(boiler, WaterHeaterConfig)
    followed: dict[str, list[bool]] = {"boiler": [], "dishwasher": []}
    rest_of_house: dict[float, list[float]] = {}  # the household without the loads, per quarter

    async def step(s: Site) -> None:
        now = s.true_clock.now()
        if loads.advance_to(now) is None:
            return
        rest_of_house.setdefault(now.timestamp() // 900 * 900, []).append(loads.household(now))
        await loads.exchange(s)
        plan = s.app.load_plan
        if plan is not None and s.app.loads is not None:
            for name, marks in followed.items():
                runtime = s.app.loads.switcher.loads[name]
                if "minimum time" not in runtime.reason:  # held by its minimum on or off time
                    rated = boiler.element_w if name == "boiler" else 1800.0
                    marks.append(planned_on(plan, name, now, rated) == (runtime.output == "on"))

    try:
        await site.app.start()
        await loads_listening(observer, "boiler")
        await site.run(timedelta(hours=14), during=step, jobs=("poll", "plan", "forecast"))
        await asyncio.sleep(0.3)
        assert not site.failures, site.failures
        app = site.app
        assert app.loads is not None
        # the water heater followed its plan and stayed warm enough
        for name, marks in followed.items():
            assert len(marks) > 700, name
            assert sum(marks) / len(marks) >= 0.95, (name, sum(marks), len(marks))
        assert sim.loads["boiler"].lowest_c >= boiler.min_c - 0.5
        assert sim.loads["boiler"].on_minutes  # it did heat
        # the dishwasher ran once, for its hour, between 08:00 and 18:00
        ran = sim.loads["dishwasher"].on_minutes
        assert len(ran) == 60
        local = [t.astimezone(site.config.site.zone) for t in ran]
        assert local[0].hour >= 8
        assert local[-1].hour < 18
        assert ran[-1] - ran[0] == timedelta(minutes=59)
        # the pool's relay never worked: commanded again, then left to its default and reported
        pool_commands = [p for n, p in sim.commands if n == "pool"]
        assert pool_commands.count("ON") >= 2
        events = await app.parts.data.events(kinds=("load.unresponsive", "load.unreliable"))
        assert {e.kind for e in events} == {"load.unresponsive", "load.unreliable"}
        assert all(e.data["load"] == "pool" for e in events)
        state = json.loads(observer.payload(f"{BASE}/load/pool/state") or b"{}")
        assert state["reliable"] is False
        assert state["output"] == "off"
        assert "does not follow" in state["reason"]
        assert app.load_plan is not None  # and the plan leaves it at its default
        pool_plan = next(s for s in app.load_plan.loads if s.name == "pool")
        assert pool_plan.reason == "pool: at its default time"
        # every load is announced to Home Assistant with its controls
        discovery = json.loads(observer.payload("homeassistant/device/hemsd_home/config") or b"{}")
        cmps = discovery["cmps"]
        for name in ("boiler", "dishwasher", "pool"):
            assert cmps[f"load_{name}_enabled"]["command_topic"] == f"{BASE}/load/{name}_enabled/set"
            assert cmps[f"load_{name}_problem"]["state_topic"] == f"{BASE}/load/{name}/state"
        assert "load_boiler_temperature" in cmps
        # what the loads drew is recorded with each reading: the load forecast sees the rest of the house
        assert app.parts.forecaster.net_of_loads
        result = await app.parts.data.history(
            ["load_w", "flex_loads_w"], START, START + timedelta(hours=14), resolution=Resolution.MIN15
        )
        assert result.data is not None
        quarters = result.data.times
        measured, drawn = (result.data.fields[n].mean for n in ("load_w", "flex_loads_w"))
        rest = np.array([np.mean(rest_of_house.get(t, [np.nan])) for t in quarters])
        known = np.isfinite(measured) & np.isfinite(drawn) & np.isfinite(rest)
        assert known.sum() >= 50
        assert (drawn[known] > 1000.0).sum() >= 10
        # over the day (a switch shows in the reading and in the load's report a poll apart)
        loads_w = drawn[known].sum()
        assert (measured - rest)[known].sum() > 0.9 * loads_w  # the house as measured has the loads
        assert abs((measured - drawn - rest)[known].sum()) < 0.05 * loads_w
        # Home Assistant disables the boiler: its thermostat runs it (relay on)
        observer.publish(f"{BASE}/load/boiler_enabled/set", "OFF")
        await eventually(
            lambda: app.loads is not None and not app.loads.switcher.loads["boiler"].enabled,
            30,
            "boiler disabled",
        )
        await site.run(timedelta(minutes=2), during=step, jobs=("poll",))
        state = json.loads(observer.payload(f"{BASE}/load/boiler/state") or b"{}")
        assert state["enabled"] is False
        assert state["output"] == "on"
    finally:
        await close_site(site)
        sim.close()
    # stopped, hemsd leaves every load to its default
    await eventually(lambda: observer.payload("cmnd/boiler/POWER") == b"ON", 30, "the boiler left on")
    observer.close()
