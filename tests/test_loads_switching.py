"""The loads' switching rules (controller.control.loads) and their Home Assistant entities."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.forecaster_fixtures import SettableClock, data_manager
from test_ha_templates import ATTRIBUTES_LIMIT, render, used_undefined
from test_loads_plan import START, config, day_inputs
from test_mqtt_discovery import BASE, DEVICE, SENSOR_RULES, SensorRule

from controller.config.loads import HeatPumpConfig, WaterHeaterConfig
from controller.control.commands import ControlLimits
from controller.control.load_rules import COLD_MARGIN_K, pieces
from controller.control.loads import LoadSwitcher
from controller.daemon.load_inbox import LoadControls, reading_of
from controller.daemon.load_outbox import payload_of
from controller.daemon.loads import LoadLink
from controller.frontends.homeassistant.discovery import (
    ENTITIES,
    Component,
    discovery_payload,
    load_entities,
)
from controller.loads.inputs import make_load_plan
from controller.loads.joint import LoadPlan, ThermalState
from controller.loads.thermal import DRAW_SHAPE
from drivers.mqtt import MessageRejectedError, encode_payload

POOL = """
[[loads]]
name = "pool"
type = "appliance"
power_w = 1000
duration_min = 60
earliest_start = "06:00"
latest_end = "20:00"
default_start = "09:00"
interruptible = true
min_on_min = 30
min_off_min = 30
optional = true
surplus_only = true
[loads.switch]
unresponsive_readings = 2
"""
BOILER = '[[loads]]\nname = "boiler"\ntype = "water_heater"\n'


def joint(text: str) -> tuple[LoadSwitcher, LoadPlan]:
    cfg = config(text)
    slots, pv, load = day_inputs()
    plan = make_load_plan(cfg, 50.0, slots, pv, load, START, None, {"boiler": ThermalState(50.0)})
    return LoadSwitcher(cfg.loads, cfg.site.zone), plan


def test_without_a_plan_each_load_keeps_its_default() -> None:
    switcher, _ = joint(POOL + BOILER)
    at_nine = datetime(2026, 4, 11, 7, 10, tzinfo=UTC)  # 09:10 in Warsaw: the pool's own time
    changed = {o.name: o.output for o in switcher.tick(at_nine, None, None)}
    assert changed == {"pool": "on"}  # the boiler's default (its thermostat: on) is where it started
    assert switcher.loads["boiler"].output == "on"
    assert "no plan" in switcher.loads["pool"].reason
    # a plan a day old is no plan either
    switcher2, plan = joint(POOL + BOILER)
    later = plan.plan.created_at + timedelta(hours=2)
    switcher2.tick(later, plan, None)
    assert "no plan" in switcher2.loads["boiler"].reason


def test_the_plan_is_followed_and_minimum_times_hold() -> None:
    switcher, plan = joint(POOL + BOILER)
    boiler = next(s for s in plan.loads if s.name == "boiler")
    outputs = []
    now = plan.plan.slots[0].start
    for _ in range(24 * 60):
        switcher.tick(now, replace_created(plan, now), None)
        outputs.append((now, switcher.loads["boiler"].output))
        now += timedelta(minutes=1)
    rated = 3000.0  # the element's power: a slot planned at less runs its first part
    planned = {
        s.start: (st, min(w / rated, 1.0))
        for s, st, w in zip(plan.plan.slots, boiler.states, boiler.power_w, strict=True)
    }

    def wanted(t: datetime) -> str:
        start = t.replace(minute=t.minute - t.minute % 15)
        state, share = planned.get(start, ("off", 0.0))
        return state if t < start + share * timedelta(minutes=15) else "off"

    agree = sum(wanted(t) == out for t, out in outputs)
    assert agree / len(outputs) >= 0.95
    switches = [i for i in range(1, len(outputs)) if outputs[i][1] != outputs[i - 1][1]]
    assert all(b - a >= 5 for a, b in itertools.pairwise(switches))  # MIN_DWELL


def test_a_store_planned_for_part_of_a_slot_runs_at_least_its_share_and_less_than_a_tick_more() -> None:
    """Ticked every minute, the element runs its planned share of each slot, rounded up to the
    tick: the plan heats a store just enough, so stopping sooner would leave it below its minimum."""
    switcher, plan = joint(POOL + BOILER)
    boiler = next(s for s in plan.loads if s.name == "boiler")
    minutes_on: dict[datetime, int] = {}
    now = plan.plan.slots[0].start
    for _ in range(24 * 60):
        switcher.tick(now, replace_created(plan, now), None)
        slot = now.replace(minute=now.minute - now.minute % 15)
        minutes_on[slot] = minutes_on.get(slot, 0) + (switcher.loads["boiler"].output == "on")
        now += timedelta(minutes=1)
    partial = [
        (w / 3000.0 * 15.0, minutes_on[s.start])
        for s, w in zip(plan.plan.slots, boiler.power_w, strict=True)
        if s.start in minutes_on and 0.0 < w < 3000.0
    ]
    assert any(planned % 1.0 > 0.1 for planned, _ in partial)  # some shares end between two ticks
    assert all(planned <= on < planned + 1.0 for planned, on in partial)


def replace_created(plan: LoadPlan, now: datetime) -> LoadPlan:
    """The same plan, as fresh as ``now`` (the daemon re-plans every 15 minutes)."""
    return LoadPlan(
        replace(plan.plan, created_at=min(now, plan.plan.slots[-1].start)), plan.loads, plan.rounds, 0.0
    )


def test_an_unforecast_surplus_starts_an_optional_load() -> None:
    switcher, plan = joint(POOL)
    evening = datetime(2026, 4, 10, 16, 30, tzinfo=UTC)  # 18:30: no surplus forecast, none planned
    switcher.tick(evening, plan, 300.0)
    assert switcher.loads["pool"].output == "off"
    out = switcher.tick(evening + timedelta(minutes=1), plan, -1500.0)
    assert [o.output for o in out] == ["on"]
    assert "1500 W exported now" in switcher.loads["pool"].reason


def test_a_load_that_does_not_draw_is_commanded_again_then_left_to_its_default() -> None:
    switcher, _ = joint(POOL)
    at_nine = datetime(2026, 4, 11, 7, 10, tzinfo=UTC)
    switcher.tick(at_nine, None, None)
    assert switcher.loads["pool"].output == "on"
    kinds = []
    for k in range(4):
        kinds += [e.kind for e in switcher.power_reading("pool", 0.0, at_nine + timedelta(minutes=k))]
    assert kinds == ["load.unresponsive", "load.unreliable"]
    switcher.tick(at_nine + timedelta(minutes=5), None, None)
    payload = switcher.payload("pool", at_nine + timedelta(minutes=5))
    assert payload.reliable is False
    assert "does not follow" in payload.reason
    switcher.reliable_again("pool")
    assert switcher.payload("pool", at_nine).reliable is True
    # a tank at its top draws nothing when switched on: that is not a fault
    boiler_switcher, _ = joint(BOILER)
    boiler_switcher.loads["boiler"].temperature_c = 69.5
    boiler_switcher.tick(at_nine, None, None)
    assert not any(boiler_switcher.power_reading("boiler", 0.0, at_nine) for _ in range(20))


def test_payloads_and_power_readings() -> None:
    cfg = config(POOL + '[[loads]]\nname = "hp"\ntype = "heat_pump"\n[loads.switch]\npayload_boost = "3"\n')
    pool, hp = cfg.loads
    assert payload_of(pool, "on") == "ON"
    assert payload_of(hp, "boost") == "3"
    assert payload_of(hp, "block") == "BLOCK"
    assert reading_of(b"812.5", "") == 812.5
    assert reading_of(b'{"ENERGY": {"Power": 40}}', "ENERGY.Power") == 40.0
    for bad, path in ((b"nan", ""), (b'{"ENERGY": {}}', "ENERGY.Power"), (b"true", ""), (b'{"a": "x"}', "a")):
        with pytest.raises(ValueError):
            reading_of(bad, path)


def test_the_load_entities_render_without_undefined_values() -> None:
    switcher, plan = joint(POOL + BOILER)
    now = plan.plan.slots[0].start
    fresh = {name: encode_payload(asdict(switcher.payload(name, now))) for name in switcher.loads}
    switcher.tick(now, plan, None)
    busy = {name: encode_payload(asdict(switcher.payload(name, now))) for name in switcher.loads}
    for name, load_type in (("pool", "appliance"), ("boiler", "water_heater")):
        for entity in load_entities(name, load_type, on_request=True):
            if entity.template is None:
                continue
            for payloads in (fresh, busy):
                used_undefined.clear()
                value = render(entity.template, payloads[name])
                assert not used_undefined, (entity.key, used_undefined)
                # a text entity shows "" when it holds nothing (a load without a goal)
                assert value != "" or entity.component is Component.TEXT, entity.key
                if entity.attributes_template:
                    attributes = render(entity.attributes_template, payloads[name])
                    assert len(attributes.encode()) < ATTRIBUTES_LIMIT
                    json.loads(attributes)
    assert json.loads(busy["boiler"])["planned"]
    # the tank's temperature says where it comes from: no sensor here, so the model, never read
    (temperature,) = (
        e for e in load_entities("boiler", "water_heater", False) if e.key.endswith("_temperature")
    )
    assert temperature.attributes_template is not None
    assert json.loads(render(temperature.attributes_template, busy["boiler"])) == {
        "source": "model",
        "reading_age_s": None,
    }


async def test_a_bad_load_control_is_refused_naming_its_field_and_changes_nothing(tmp_path: Path) -> None:
    cfg = config(POOL + BOILER)
    clock = SettableClock(datetime(2026, 4, 11, 7, 10, tzinfo=UTC))
    async with data_manager(tmp_path, clock) as data:
        await _refused(LoadLink(cfg, data, clock))


async def _refused(link: LoadLink) -> None:
    inbox = LoadControls(link)
    for key, payload, field in (
        ("pool_enabled", b"maybe", "enabled"),
        ("pool_request", b"ON", "request"),
        ("garage_enabled", b"ON", "topic"),
        ("pool_speed", b"3", "topic"),
    ):
        with pytest.raises(MessageRejectedError) as info:
            inbox.parse(f"hemsd/home/load/{key}/set", key, payload)
        assert info.value.document["field"] == field
    assert all(load.enabled for load in link.switcher.loads.values())
    control = inbox.parse("hemsd/home/load/pool_enabled/set", "pool_enabled", b"OFF")
    link.replan = None
    await inbox.apply("hemsd/home/load/pool_enabled/set", control)
    assert link.switcher.at_default() == {"pool"}


def test_the_load_entities_follow_the_discovery_rules() -> None:
    """The rules tests/test_mqtt_discovery.py holds the other entities to: valid sensor classes,
    unique ids, hemsd's entity ids, and every command topic one the loads' connection listens on."""
    rules = {**SENSOR_RULES, "temperature": SensorRule(frozenset({"°C"}), frozenset({"measurement"}))}
    loads = load_entities("boiler", "water_heater", False) + load_entities("dish_washer", "appliance", True)
    entities = ENTITIES + loads
    cmps = discovery_payload(DEVICE, BASE, ControlLimits(), entities)["cmps"]
    assert isinstance(cmps, dict)
    announced = [c for c in cmps.values() if "unique_id" in c]  # the rest: phases this site lacks
    assert len({c["unique_id"] for c in announced}) == len(announced)
    for key in (e.key for e in loads):
        c = cmps[key]
        assert isinstance(c, dict)
        assert re.fullmatch(r"[a-z_]+\.hemsd_home_load_[a-z0-9_]+", str(c["default_entity_id"]))
        if c["p"] == "sensor" and c.get("device_class"):
            rule = rules[str(c["device_class"])]
            assert (
                (c.get("unit_of_measurement") in rule.units) if rule.units else "unit_of_measurement" not in c
            )
            assert c.get("state_class") in rule.state_classes
        if "command_topic" in c:
            topic = str(c["command_topic"])
            assert re.fullmatch(
                rf"{BASE}/load/(boiler|dish_washer)_(enabled|request|reset|goal|goal_cancel)/set", topic
            ), topic
        if "state_topic" in c:
            assert c["state_topic"] in (f"{BASE}/load/boiler/state", f"{BASE}/load/dish_washer/state")
        if c["p"] == "binary_sensor":  # a problem sensor: ON/OFF from its template, read from its state
            assert c["device_class"] == "problem"
            assert "payload_on" not in c
            assert "payload_off" not in c
            assert "state_topic" in c
            assert "{{ 'ON' if" in str(c["value_template"]) or "{{ 'OFF' if" in str(c["value_template"])
    for name in ("boiler", "dish_washer"):
        reach = cmps[f"load_{name}_goal_unreachable"]
        assert isinstance(reach, dict)
        assert (reach["p"], reach["device_class"]) == ("binary_sensor", "problem")
        assert reach["json_attributes_topic"] == reach["state_topic"] == f"{BASE}/load/{name}/state"


def test_what_the_loads_draw_is_measured_else_as_commanded() -> None:
    hp = '[[loads]]\nname = "hp"\ntype = "heat_pump"\nelectric_w = 2500\nheat_demand_w = [1500]\n'
    cfg = config(POOL + BOILER + hp)
    switcher = LoadSwitcher(cfg.loads, cfg.site.zone)
    pool, boiler, pump = (switcher.loads[n] for n in ("pool", "boiler", "hp"))
    now = datetime(2026, 4, 11, 7, 10, tzinfo=UTC)
    # the defaults: pool off, the boiler's thermostat (on) at its setting, the pump normal at its setpoint
    assert pool.output == "off"
    assert boiler.output == "on"
    assert pump.output == "normal"
    held_boiler = switcher.drawn_w(now)  # the boiler at its setting draws: it is below its top
    assert held_boiler == pytest.approx(3000.0 + 1500.0 / 3.0)  # the pump holds the house at its setpoint
    # a store at its top draws what holds it there; blocked, the pump draws nothing
    boiler.temperature_c = boiler.config.max_c
    pump.output = "block"
    top = switcher.drawn_w(now)
    assert 0.0 < top < 1000.0
    # a running appliance draws its run's power; a fresh reading replaces the model, a stale one does not
    pool.output = "on"
    assert switcher.drawn_w(now) == pytest.approx(top + 1000.0)
    switcher.power_reading("pool", 640.0, now)
    assert switcher.drawn_w(now + timedelta(minutes=1)) == pytest.approx(top + 640.0)
    assert switcher.drawn_w(now + timedelta(minutes=6)) == pytest.approx(top + 1000.0)


def test_an_interruptible_run_done_closes_its_window_and_the_next_window_runs_again() -> None:
    switcher, _ = joint(POOL)
    pool = switcher.loads["pool"]
    now = datetime(2026, 4, 11, 6, 50, tzinfo=UTC)  # 08:50 in Warsaw; the window is 06:00-20:00
    on_minutes: dict[int, int] = {}
    for _ in range(2 * 24 * 60):
        switcher.tick(now, None, None)
        if pool.output == "on":
            on_minutes[now.day] = on_minutes.get(now.day, 0) + 1
        if now == datetime(2026, 4, 11, 12, 0, tzinfo=UTC):  # after the first day's run
            assert pool.appliance.ran_h == 0.0
            assert pool.appliance.done_until == datetime(2026, 4, 11, 18, 0, tzinfo=UTC)
        now += timedelta(minutes=1)
    assert on_minutes == {11: 60, 12: 60}
    # a window that closes on part of a run: the next one starts from nothing
    pool.appliance = replace(pool.appliance, ran_h=0.5)
    switcher.tick(datetime(2026, 4, 13, 19, 0, tzinfo=UTC), None, None)  # 21:00: no window
    assert pool.appliance.ran_h == 0.0


def test_a_measured_store_temperature_replaces_the_model_while_fresh() -> None:
    sensed = BOILER + 'temperature_topic = "tele/boiler/SENSOR"\ntemperature_max_age_min = 10\n'
    switcher, plan = joint(sensed)
    boiler = switcher.loads["boiler"]
    now = plan.plan.slots[0].start
    # before any reading: the model, and no age
    state = switcher.payload("boiler", now)
    assert (state.temperature_source, state.temperature_age_s) == ("model", None)
    switcher.tick(now, plan, None)
    planned = plan.loads[0].temperature_c[0]
    # a reading near the plan's path: taken, no new plan needed; the planner starts from it
    assert switcher.temperature_reading("boiler", planned + 0.5, now) is False
    assert switcher.states()["boiler"] == ThermalState(planned + 0.5, boiler.output == "on")
    state = switcher.payload("boiler", now + timedelta(minutes=3))
    assert (state.temperature_source, state.temperature_age_s) == ("measured", 180.0)
    # one far from it asks for a new plan
    assert switcher.temperature_reading("boiler", planned - 6.0, now) is True
    # stale after temperature_max_age_min: the model goes on from the reading
    later = now + timedelta(minutes=11)
    switcher.tick(later, plan, None)
    state = switcher.payload("boiler", later)
    assert (state.temperature_source, state.temperature_age_s) == ("model", 660.0)
    assert state.temperature_c is not None
    assert state.temperature_c != planned - 6.0
    assert abs(state.temperature_c - (planned - 6.0)) < 3.0
    # a value no sensor gives is refused naming it, and changes nothing
    before = boiler.temperature_c
    for bad in (500.0, -60.0, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            switcher.temperature_reading("boiler", bad, later)
    assert boiler.temperature_c == before
    assert reading_of(b'{"DS18B20": {"Temperature": 51.5}}', "DS18B20.Temperature", "degC") == 51.5
    with pytest.raises(ValueError, match="degC"):
        reading_of(b'{"DS18B20": {"Temperature": null}}', "DS18B20.Temperature", "degC")


def test_a_heating_store_read_late_counts_its_draw_without_bias() -> None:
    """A tank heating on its thermostat draws 1.5 times its profile; every other reading arrives
    after the next tick (the value of a minute before, counted against a model a minute ahead):
    that reading's count is too high by the minute's heat and the next one's as much too low,
    which the day's count makes good (a count held at zero or above would keep the excess)."""
    cfg = config(BOILER + 'temperature_topic = "tele/boiler/SENSOR"\n')
    c = cfg.loads[0]
    assert isinstance(c, WaterHeaterConfig)
    switcher = LoadSwitcher(cfg.loads, cfg.site.zone)
    boiler = switcher.loads["boiler"]
    now = datetime(2026, 4, 11, 5, 0, tzinfo=UTC)  # 07:00 in Warsaw: the morning's hot water
    switcher.tick(now, None, None)
    assert boiler.output == "on"  # its thermostat, below its setting: the element heats
    tank = 46.0
    switcher.temperature_reading("boiler", tank, now)
    late: float | None = None
    for minute in range(1, 31):
        at = now + timedelta(minutes=minute)
        hour = at.astimezone(cfg.site.zone).hour
        drawn = 1.5 * c.draw_kwh_per_day * DRAW_SHAPE[hour] / sum(DRAW_SHAPE) / 60.0
        loss = c.loss_w_per_k * (tank - c.ambient_c) / 1000.0 / 60.0
        tank += (c.element_w / 1000.0 / 60.0 - drawn - loss) / c.capacity_kwh_per_k()
        switcher.tick(at, None, None)
        if late is not None:  # the reading held back, then this minute's
            switcher.temperature_reading("boiler", late, at)
            late = None
            switcher.temperature_reading("boiler", tank, at)
        elif minute % 2:
            late = tank  # read now, delivered after the next tick
        else:
            switcher.temperature_reading("boiler", tank, at)
    assert boiler.output == "on"  # it heated all along
    assert tank < c.thermostat_c
    state = switcher.states()["boiler"]
    assert isinstance(state, ThermalState)
    assert state.drawn_today_kwh / state.expected_today_kwh == pytest.approx(1.5, abs=0.02)


def test_a_store_measured_under_its_minimum_heats_whatever_the_plan_says() -> None:
    """A plan that failed, or a draw beyond its guard, cannot leave a measured tank cold: more
    than COLD_MARGIN_K under its minimum it is left to its own thermostat (on); its model alone
    never overrides the plan."""
    sensed = BOILER + 'temperature_topic = "tele/boiler/SENSOR"\ntemperature_max_age_min = 10\n'
    switcher, plan = joint(sensed)
    boiler_plan = next(s for s in plan.loads if s.name == "boiler")
    off = next(i for i, st in enumerate(boiler_plan.states) if st == "off")
    now = plan.plan.slots[off].start + timedelta(minutes=1)
    fresh = replace_created(plan, now)
    switcher.tick(now - timedelta(minutes=10), fresh, None)  # the minimum times behind it
    switcher.tick(now, fresh, None)
    assert switcher.loads["boiler"].output == "off"  # as planned
    cold = 45.0 - COLD_MARGIN_K - 0.1
    for minute in range(1, 7):  # ticked every minute, as the daemon is every reading
        switcher.temperature_reading("boiler", 45.0 - COLD_MARGIN_K + 0.2, now + timedelta(minutes=minute))
        switcher.tick(now + timedelta(minutes=minute), fresh, None)
    assert switcher.loads["boiler"].output == "off"  # within the margin: the plan stands
    switcher.temperature_reading("boiler", cold, now + timedelta(minutes=7))
    changed = switcher.tick(now + timedelta(minutes=7), fresh, None)
    assert [(o.name, o.output) for o in changed] == [("boiler", "on")]
    assert "under its minimum 45" in switcher.loads["boiler"].reason
    # the same tank unmeasured, its model as cold: the plan stands
    unmeasured, plan2 = joint(BOILER)
    fresh2 = replace_created(plan2, now)
    unmeasured.tick(now - timedelta(minutes=10), fresh2, None)
    unmeasured.loads["boiler"].temperature_c = cold
    unmeasured.tick(now + timedelta(minutes=7), fresh2, None)
    assert unmeasured.loads["boiler"].output == "off"


def test_a_measured_store_counts_what_it_drew_today_against_its_profile() -> None:
    cfg = config(BOILER + 'temperature_topic = "tele/boiler/SENSOR"\n')
    switcher = LoadSwitcher(cfg.loads, cfg.site.zone)
    boiler = switcher.loads["boiler"]
    capacity = 200 * 4.186 / 3600
    now = datetime(2026, 4, 11, 5, 0, tzinfo=UTC)  # 07:00 in Warsaw: the morning's hot water
    switcher.tick(now, None, None)
    switcher.temperature_reading("boiler", 50.0, now)
    # the tank loses twice its profile's hot water: each reading is where the model has it, less
    # the profile's draw since the reading before once more
    for minute in range(1, 61):
        at = now + timedelta(minutes=minute)
        switcher.tick(at, None, None)
        assert boiler.temperature_c is not None
        switcher.temperature_reading(
            "boiler", boiler.temperature_c - boiler.expected_since_kwh / capacity, at
        )
    state = switcher.states()["boiler"]
    assert isinstance(state, ThermalState)
    # the model draws at each tick the hour's of its end: 59 minutes of 07:00's, one of 08:00's
    shape = 6.0 / sum(DRAW_SHAPE)
    assert state.expected_today_kwh == pytest.approx(shape * (DRAW_SHAPE[7] * 59 + DRAW_SHAPE[8]) / 60)
    assert state.drawn_today_kwh == pytest.approx(2.0 * state.expected_today_kwh)
    # a new local day counts from nothing; without a sensor nothing is counted
    switcher.tick(datetime(2026, 4, 11, 22, 0, 30, tzinfo=UTC), None, None)
    assert switcher.states()["boiler"] == ThermalState(boiler.temperature_c or 0.0, boiler.output == "on")
    unsensed = LoadSwitcher(config(BOILER).loads, cfg.site.zone)
    unsensed.tick(now, None, None)
    unsensed.tick(now + timedelta(hours=1), None, None)
    assert unsensed.states()["boiler"] == ThermalState(unsensed.loads["boiler"].temperature_c or 0.0, True)


def test_a_heat_pump_left_normal_for_part_of_a_slot_is_blocked_after_its_share() -> None:
    """Planned ``normal`` (its thermostat heating) for half a slot, the pump is left to its
    thermostat for that half and blocked after it: on its own it would run on to its setpoint,
    past what the plan put in. A slot planned ``normal`` with nothing to heat stays ``normal``."""
    switcher, plan = joint('[[loads]]\nname = "hp"\ntype = "heat_pump"\nelectric_w = 2500\n')
    pump = next(s for s in plan.loads if s.name == "hp")
    states = ("normal", "normal", *pump.states[2:])
    power = (1250.0, 0.0, *pump.power_w[2:])  # half of the first 15-minute slot at 2.5 kW
    loads = tuple(replace(s, states=states, power_w=power) if s.name == "hp" else s for s in plan.loads)
    plan = LoadPlan(plan.plan, loads, plan.rounds, 0.0)
    start = plan.plan.slots[0].start
    hp = switcher.loads["hp"]
    for minute, output in ((0.0, "normal"), (7.0, "normal"), (7.5, "block"), (14.5, "block")):
        now = start + timedelta(minutes=minute)
        switcher.tick(now, replace_created(plan, now), None)
        assert hp.output == output, minute
    assert "its share of the slot done" in hp.reason
    later = plan.plan.slots[1].start + timedelta(minutes=1)  # its five minutes kept: normal again
    switcher.tick(later, replace_created(plan, later), None)
    assert hp.output == "normal"


def test_a_store_share_of_an_hourly_slot_runs_in_pieces_at_least_five_minutes_long() -> None:
    """A store's share of a slot longer than a quarter-hour runs at the start of each of its
    parts (one per quarter-hour at most), each piece and each pause five minutes at least; a
    quarter-hour slot, a whole slot or a share too short to split runs in one piece."""
    hp = config('[[loads]]\nname = "hp"\ntype = "heat_pump"\nelectric_w = 2500\n').loads[0]
    assert isinstance(hp, HeatPumpConfig)
    start = datetime(2026, 1, 10, 6, 0, tzinfo=UTC)
    hour, minute = start + timedelta(hours=1), timedelta(minutes=1)

    def minutes(power_w: float, end: datetime = hour) -> list[tuple[float, float]]:
        return [((a - start) / minute, (b - start) / minute) for a, b in pieces(hp, start, end, power_w)]

    assert minutes(750.0) == [(0.0, 6.0), (20.0, 26.0), (40.0, 46.0)]  # 18 minutes: three of 6
    assert minutes(1250.0) == [(0.0, 7.5), (15.0, 22.5), (30.0, 37.5), (45.0, 52.5)]
    assert minutes(125.0) == [(0.0, 3.0)]  # 3 minutes: one piece
    assert minutes(2250.0) == [(0.0, 54.0)]  # 6 minutes' pause left: one piece
    assert minutes(2500.0) == [(0.0, 60.0)]
    assert minutes(1250.0, start + 15 * minute) == [(0.0, 7.5)]  # a quarter-hour slot: as before

    switcher, plan = joint('[[loads]]\nname = "hp"\ntype = "heat_pump"\nelectric_w = 2500\n')
    slots = plan.plan.slots
    first = replace(slots[0], end=slots[0].start + timedelta(hours=1))  # an hourly slot
    pump = next(s for s in plan.loads if s.name == "hp")
    pump = replace(pump, states=("boost", *pump.states[4:]), power_w=(750.0, *pump.power_w[4:]))
    plan = LoadPlan(replace(plan.plan, slots=(first, *slots[4:])), (pump,), plan.rounds, 0.0)
    outputs, reasons = [], []
    for tick in range(360):  # every 10 s through the hour
        now = first.start + tick * timedelta(seconds=10)
        switcher.tick(now, replace_created(plan, now), None)
        outputs.append(switcher.loads["hp"].output)
        reasons.append(switcher.loads["hp"].reason)
    boosted = [tick / 6.0 for tick, out in enumerate(outputs) if out == "boost"]
    assert boosted == [m / 6.0 for part in (0, 120, 240) for m in range(part, part + 36)]
    assert set(outputs) == {"boost", "block"}
    local = (first.start + timedelta(minutes=20)).astimezone(switcher.tz)
    assert reasons[60].endswith(f"(its next piece at {local:%H:%M})")  # 10 minutes in, blocked
    assert reasons[300].endswith("(its share of the slot done)")  # 50 minutes in
