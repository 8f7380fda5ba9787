"""Weekly load requirements and the "not reachable" signal end to end: the daemon against the
emulated inverter, a real mosquitto and loads simulated by an MQTT client.

Monday 15 June 2026 from 06:00: "dishwasher done by 06:30 on weekdays", set as Home Assistant
sets it, cannot be met today (its hour does not fit): the load's state says why, its problem
sensor is announced, an event is written and ``/api/state`` lists it. Once 06:30 has passed
(a missed run: a warning), the goal stays for Tuesday's 06:30 and is reachable again.
Misspelt days and a time 25:00 are refused naming the field and value and change nothing; a
weekly goal set over HTTP is cancelled alone by its time.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support.load_site import BASE, SiteLoads, loads_listening, refusals
from support.mqtt_fixtures import Observer
from support.servers import ServerProcess, free_port
from support.sim_harness import Site, close_site, open_site
from support.waiting import eventually
from test_load_goals_daemon import LOADS, START, TOKEN, broker, http

from controller.control import load_goals

__all__ = ["broker"]  # the fixture, used by name
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def state_of(observer: Observer, name: str) -> dict[str, object]:
    found: dict[str, object] = json.loads(observer.payload(f"{BASE}/load/{name}/state") or b"{}")
    return found


@pytest.mark.slow
async def test_a_weekly_goal_is_planned_and_one_out_of_reach_is_reported(
    tmp_path: Path, broker: ServerProcess
) -> None:
    web = free_port()
    observer = Observer(broker.port, ("hemsd/#", "homeassistant/#"))
    body = LOADS.format(port=broker.port, web=web, token=TOKEN).replace("{{", "{").replace("}}", "}")
    site: Site = await open_site(tmp_path, START, body, start_app=False)
    loads = SiteLoads(site, broker.port)
    sim = loads.sim

    async def step(s: Site) -> None:
        now = s.true_clock.now()
        if loads.advance_to(now) is None:
            return
        await loads.exchange(s)

    try:
        await site.app.start()
        await loads_listening(observer, "boiler")
        app = site.app
        data = app.parts.data
        topic = f"{BASE}/load/dishwasher_goal/set"
        # Home Assistant: a misspelt day, a time 25:00: refused naming field and value, nothing stored
        for bad, field, value in (
            ({"by": "06:30", "days": ["mon", "tuseday"]}, "days", "tuseday"),
            ({"by": "25:00", "days": ["mon"]}, "by", "25:00"),
        ):
            seen = len(refusals(observer, topic))
            observer.publish(topic, json.dumps(bad))
            await eventually(lambda s=seen: len(refusals(observer, topic)) > s, 30, f"the error on {field}")
            error = refusals(observer, topic)[-1]
            assert (error["field"], error["value"]) == (field, value)
        assert (await load_goals.load(data)).to_json() == {}
        # a weekly goal whose first occurrence is out of reach: its hour does not fit before 06:30
        observer.publish(topic, json.dumps({"by": "06:30", "days": WEEKDAYS}))
        await eventually(
            lambda: bool(state_of(observer, "dishwasher").get("goal_unreachable")), 10, "not reachable"
        )
        state = state_of(observer, "dishwasher")
        assert state["goal"] == "dishwasher done by 06:30 (mon, tue, wed, thu, fri)"
        assert json.loads(str(state["goal_command"])) == {"by": "06:30", "days": WEEKDAYS}
        assert state["goal_unreachable"] == (
            "dishwasher done by 06:30: 60 min of its run do not fit before 06:30"
        )
        discovery = json.loads(observer.payload("homeassistant/device/hemsd_home/config") or b"{}")
        sensor = discovery["cmps"]["load_dishwasher_goal_unreachable"]
        assert (sensor["p"], sensor["device_class"]) == ("binary_sensor", "problem")
        assert sensor["state_topic"] == f"{BASE}/load/dishwasher/state"
        status, reply = await http("GET", web, "/api/state")
        assert status == 200
        listed = {str(x["name"]): x for x in reply["loads"]}  # type: ignore[union-attr]
        assert listed["dishwasher"]["goal_unreachable"] == state["goal_unreachable"]  # type: ignore[index]
        # HTTP: a weekly boiler goal, cancelled alone by its time
        status, reply = await http(
            "POST",
            web,
            "/api/control/loads/boiler/goal",
            {"by": "16:00", "days": WEEKDAYS, "temperature_c": 60},
        )
        assert status == 200, reply
        status, reply = await http("DELETE", web, "/api/control/loads/boiler/goal?by=17:00")
        assert (status, reply["parameter"]) == (400, "by")
        status, reply = await http("DELETE", web, "/api/control/loads/boiler/goal?by=16:00")
        assert status == 200, reply
        assert set((await load_goals.load(data)).weekly) == {"dishwasher@06:30"}
        # 06:30 passes without a run: a warning; the goal stays, Tuesday's is within reach
        await site.run(timedelta(hours=1), during=step, jobs=("poll", "plan", "forecast"))
        await asyncio.sleep(0.3)
        assert not site.failures, site.failures
        kinds = ("load.goal_unreachable", "load.goal_missed", "load.goal_reachable")
        events = {e.kind: e for e in await data.events(kinds=kinds)}
        assert set(events) == set(kinds)
        assert events["load.goal_unreachable"].data == {"load": "dishwasher"}
        assert events["load.goal_missed"].message == (
            "dishwasher done by 2026-06-15 06:30: its run was not done in time"
        )
        stored = (await load_goals.load(data)).weekly["dishwasher@06:30"]
        assert stored.done_until == datetime(2026, 6, 15, 4, 30, tzinfo=START.tzinfo)
        await eventually(
            lambda: state_of(observer, "dishwasher").get("goal_unreachable") == "", 10, "reachable"
        )
        assert app.loads is not None
        assert app.loads.switcher.requirements()["dishwasher"].by == datetime(
            2026, 6, 16, 4, 30, tzinfo=START.tzinfo
        )
    finally:
        await close_site(site)
        sim.close()
        observer.close()
