"""Loads' requirements end to end: the daemon (its jobs on simulated time) against the emulated
inverter, a real mosquitto and loads simulated by an MQTT client, the requirements set as Home
Assistant sets them (the load's own goal topic) and through the HTTP API.

A June day from 06:00: "dishwasher done by 16:00" (a dishwasher run only on request) runs once,
its whole hour, before 16:00, the plan saying so; "boiler at 65 degC by 16:00" heats the tank
to it. A bad requirement is refused naming its field, and changes nothing. Once the run is done
its requirement ends (an event, nothing left stored), the boiler's at its time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from support.load_site import BASE, SiteLoads, loads_listening, refusals
from support.mqtt_fixtures import Observer, mosquitto
from support.servers import ServerProcess, free_port
from support.sim_harness import Site, close_site, open_site
from support.waiting import eventually
from test_loads_daemon import BODY

from controller.control import load_goals
from controller.frontends.homeassistant.discovery import load_entities

START = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 06:00 in Warsaw
BY = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)  # 16:00 in Warsaw
TOKEN = "load-goals-token-0123456789"
LOADS = (
    BODY.split("[[loads]]")[0]
    + """[web]
enabled = true
port = {web}
token = "{token}"
write_enabled = true
[[loads]]
name = "boiler"
type = "water_heater"
draw_kwh_per_day = 4.0
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
earliest_start = "19:00"
latest_end = "07:00"
repeat = "request"
[loads.switch]
power_topic = "tele/dishwasher/SENSOR"
power_json_path = "ENERGY.Power"
"""
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ServerProcess]:
    with mosquitto(tmp_path) as server:
        yield server


async def http(method: str, port: int, path: str, body: object = None) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            f"http://127.0.0.1:{port}{path}",
            data=None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode()),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        ) as reply,
    ):
        return reply.status, await reply.json()


@pytest.mark.slow
async def test_requirements_set_from_home_assistant_and_http_are_met(
    tmp_path: Path, broker: ServerProcess
) -> None:
    web = free_port()
    observer = Observer(broker.port, ("hemsd/#", "homeassistant/#"))
    body = LOADS.format(port=broker.port, web=web, token=TOKEN).replace("{{", "{").replace("}}", "}")
    site: Site = await open_site(tmp_path, START, body, start_app=False)
    loads = SiteLoads(site, broker.port)
    sim = loads.sim
    reasons: list[str] = []
    tank_at_by: list[float] = []

    async def step(s: Site) -> None:
        now = s.true_clock.now()
        since = loads.advance_to(now)
        if since is None:
            return
        if since < BY <= now:
            tank_at_by.append(sim.loads["boiler"].temperature_c)
        await loads.exchange(s)
        if s.app.load_plan is not None:
            reasons.extend(x.reason for x in s.app.load_plan.loads if x.name == "dishwasher")

    try:
        await site.app.start()
        await loads_listening(observer, "boiler")
        app = site.app
        data = app.parts.data
        # Home Assistant: a bad requirement is refused on <base>/load/error and changes nothing
        goal_topic = f"{BASE}/load/dishwasher_goal/set"
        observer.publish(goal_topic, json.dumps({"by": "06:30"}))
        await eventually(lambda: refusals(observer, goal_topic), 30, "the error")
        (error,) = refusals(observer, goal_topic)
        assert (error["field"], error["value"]) == ("by", "2026-06-15 06:30")
        assert (await load_goals.load(data)).goals == {}
        # ... and a good one is stored and planned
        observer.publish(f"{BASE}/load/dishwasher_goal/set", json.dumps({"by": "16:00"}))
        await eventually(
            lambda: app.loads is not None and "dishwasher" in app.loads.goal_link.goals.goals, 30, "the goal"
        )
        # the HTTP API: the same checks, the same store
        status, reply = await http(
            "POST", web, "/api/control/loads/boiler/goal", {"by": "16:00", "temperature_c": 80}
        )
        assert (status, reply["parameter"]) == (400, "temperature_c")
        status, reply = await http("POST", web, "/api/control/loads/garage/goal", {"by": "16:00"})
        assert (status, reply["parameter"]) == (400, "load")
        status, reply = await http(
            "POST", web, "/api/control/loads/boiler/goal", {"by": "16:00", "temperature_c": 65}
        )
        assert status == 200, reply
        assert reply["applied"] == "load goal boiler at 65 degC by 2026-06-15 16:00"
        stored = (await load_goals.load(data)).goals
        assert {n: (g.by, g.temperature_c, g.source) for n, g in stored.items()} == {
            "dishwasher": (BY, None, "mqtt"),
            "boiler": (BY, 65.0, "http"),
        }
        assert app.load_plan is not None
        boiler_plan = next(x for x in app.load_plan.loads if x.name == "boiler")
        assert "65 degC by 16:00 as requested" in boiler_plan.reason
        await site.run(timedelta(hours=11), during=step, jobs=("poll", "plan", "forecast"))
        await asyncio.sleep(0.3)
        assert not site.failures, site.failures
        # the dishwasher ran once, its whole hour, before 16:00, as the plan said it would
        ran = sim.loads["dishwasher"].on_minutes
        assert len(ran) == 60
        assert ran[-1] - ran[0] == timedelta(minutes=59)
        assert ran[0] >= START
        assert ran[-1] < BY
        assert any("cheapest 1 h before 16:00" in r and "as requested" in r for r in reasons), reasons[:3]
        # the boiler was at 65 degC by 16:00 (as the simulated tank, not the model, says)
        assert len(tank_at_by) == 1
        assert tank_at_by[0] >= 64.5
        # the run done, its requirement ended: an event and nothing stored; the boiler's ended at 16:00
        events = await data.events(kinds=("load.goal_done",))
        assert [e.data["load"] for e in events] == ["dishwasher"]
        assert (await load_goals.load(data)).current(site.true_clock.now(), UTC).goals == {}
        state = json.loads(observer.payload(f"{BASE}/load/dishwasher/state") or b"{}")
        assert (state["goal"], state["goal_command"]) == ("", "")
        # Home Assistant is told of each load's goal controls
        discovery = json.loads(observer.payload("homeassistant/device/hemsd_home/config") or b"{}")
        cmps = discovery["cmps"]
        for entity in load_entities("boiler", "water_heater", False):
            assert entity.key in cmps
        assert cmps["load_dishwasher_goal"]["command_topic"] == f"{BASE}/load/dishwasher_goal/set"
        assert (
            cmps["load_dishwasher_goal_cancel"]["command_topic"] == f"{BASE}/load/dishwasher_goal_cancel/set"
        )
    finally:
        await close_site(site)
        sim.close()
        observer.close()
