"""Flexible loads in the plan (controller.loads): appliances in their windows, thermal stores
within comfort, the joint plan with the battery, and their reasons."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pytest

from controller.config.loading import load_config_text
from controller.config.loads import ApplianceConfig, HeatPumpConfig, WaterHeaterConfig
from controller.config.models import HemsdConfig
from controller.loads.appliance import ApplianceState, place_appliance, windows
from controller.loads.inputs import make_load_plan
from controller.loads.joint import MAX_ROUNDS, Horizon, ThermalState, default_run
from controller.loads.marginal import MarginalCost, SlotArrays
from controller.loads.thermal import (
    DRAW_QUANTILE_Z,
    MIN_RUN_MIN,
    _thermostat_wants,
    guard_k,
    levels,
    pieces_count,
    place,
    seen_today,
    temperature_grid,
    thermal_store,
    thermostat_run,
)
from controller.planner.inputs import PricedSlot, make_plan

START = datetime(2026, 4, 10, 16, 0, tzinfo=UTC)  # 18:00 in Warsaw
SLOTS = 48 * 4


def day_inputs(n: int = SLOTS, pv_kw: float = 5.0) -> tuple[list[PricedSlot], list[float], list[float]]:
    """Quarter-hours from START: dear evenings, cheap nights and middays, PV around noon."""
    slots, pv, load = [], [], []
    for i in range(n):
        s = START + timedelta(minutes=15 * i)
        h = (s.hour + 2) % 24 + s.minute / 60  # local hour (CEST)
        price = 0.5 + 0.3 * math.sin((h - 6) / 24 * 2 * math.pi) + (0.4 if 17 <= h < 21 else 0.0)
        price -= 0.3 if 10 <= h < 15 else 0.0
        slots.append(PricedSlot(s, s + timedelta(minutes=15), price, 0.02 if 10 <= h < 15 else 0.1))
        pv.append(max(0.0, 1000 * pv_kw * math.sin((h - 6) / 14 * math.pi)) if 6 < h < 20 else 0.0)
        load.append(400.0 + 300.0 * (7 < h < 9) + 600.0 * (18 < h < 22))
    return slots, pv, load


def config(loads: str = "") -> HemsdConfig:
    return load_config_text('[mqtt]\nhost = "localhost"\n' + loads)


def marginal_of(cfg: HemsdConfig) -> tuple[MarginalCost, Horizon]:
    slots, pv, load = day_inputs()
    plan = make_plan(cfg, 50.0, slots, pv, load, START, None)
    assert plan.values is not None
    params = cfg.battery.params()
    horizon = Horizon(tuple(s.start for s in slots), tuple(s.end for s in slots), cfg.site.zone)
    return MarginalCost(params, cfg.grid.limits(), SlotArrays.of(plan, params), plan.values), horizon


DISHWASHER = """
[[loads]]
name = "dishwasher"
type = "appliance"
power_w = 2000
duration_min = 90
earliest_start = "19:00"
latest_end = "07:00"
default_start = "19:00"
"""


def test_marginal_cost_lies_between_the_export_and_the_import_price() -> None:
    marginal, _ = marginal_of(config())
    per = marginal.per_kwh(1000.0)
    s = marginal.slots
    assert np.all(per <= s.import_price + 1e-9)
    assert np.all(per >= np.minimum(s.export_price, 0.0) - 1e-9)
    # an exported midday surplus costs the export price it no longer earns (or what storing it is worth)
    noon = int(np.argmax(s.pv_w - s.load_w))
    assert per[noon] < 0.5 * s.import_price[noon]


def test_an_appliance_runs_whole_in_its_cheapest_time_of_its_window() -> None:
    cfg = config(DISHWASHER)
    dishwasher = cfg.loads[0]
    assert isinstance(dishwasher, ApplianceConfig)
    marginal, h = marginal_of(cfg)
    placed = place_appliance(dishwasher, ApplianceState(), h.starts, h.ends, h.tz, marginal)
    assert len(placed.runs) == 2  # tonight's window and tomorrow's, both within the 48 h
    for run in placed.runs:
        local = run.start.astimezone(h.tz)
        assert run.end - run.start == timedelta(minutes=90)
        assert local.time() >= time(19, 0) or (run.end.astimezone(h.tz).time() <= time(7, 0))
    assert placed.power_w @ np.full(len(h.starts), 0.25) / 1000 == pytest.approx(6.0)
    # no other start in the first window costs less
    first = placed.runs[0]
    for w in windows(dishwasher, h.starts[0], h.ends[-1], h.tz)[:1]:
        for k, s in enumerate(h.starts):
            if s >= w.start and s + timedelta(minutes=90) <= w.end:
                power = np.zeros(len(h.starts))
                power[k : k + 6] = 2000.0
                assert (
                    marginal.cost(power).sum()
                    >= marginal.cost(
                        np.where([first.start <= t < first.end for t in h.starts], 2000.0, 0.0)
                    ).sum()
                    - 1e-9
                )
    assert "dishwasher at " in placed.reason
    assert "cheapest 1.5 h before 07:00" in placed.reason


def test_an_interruptible_appliance_keeps_its_minimum_on_and_off_times() -> None:
    cfg = config(
        """
[[loads]]
name = "pool"
type = "appliance"
power_w = 800
duration_min = 180
earliest_start = "06:00"
latest_end = "22:00"
interruptible = true
min_on_min = 45
min_off_min = 30
"""
    )
    pool = cfg.loads[0]
    assert isinstance(pool, ApplianceConfig)
    marginal, h = marginal_of(cfg)
    placed = place_appliance(pool, ApplianceState(), h.starts, h.ends, h.tz, marginal)
    on = placed.power_w > 0
    first_day = [t for t, s in enumerate(h.starts) if s < placed.runs[0].end]
    assert int(on[first_day].sum()) == 12  # 3 h of quarter-hours in the first window
    runs, offs, last, length = [], [], None, 0
    for flag in on[first_day[0] : first_day[-1] + 1].tolist():
        if flag != last and last is not None:
            (runs if last else offs).append(length)
            length = 0
        last, length = flag, length + 1
    (runs if last else offs).append(length)
    assert min(runs) >= 3
    assert min(offs[1:-1] or [2]) >= 2


def test_an_optional_appliance_runs_only_on_surplus_or_under_its_cap() -> None:
    surplus_cfg = config(
        """
[[loads]]
name = "pool"
type = "appliance"
power_w = 1000
duration_min = 120
earliest_start = "08:00"
latest_end = "18:00"
optional = true
surplus_only = true
"""
    )
    pool = surplus_cfg.loads[0]
    assert isinstance(pool, ApplianceConfig)
    marginal, h = marginal_of(surplus_cfg)
    placed = place_appliance(pool, ApplianceState(), h.starts, h.ends, h.tz, marginal)
    on = placed.power_w > 0
    assert on.any()
    s = marginal.slots
    assert np.all(s.pv_w[on] - s.load_w[on] >= 0.9 * 1000.0)
    assert "surplus PV worth 0.02/kWh exported" in placed.reason
    capped = pool.model_copy(update={"surplus_only": False, "price_cap": -1.0})
    fresh, _ = marginal_of(surplus_cfg)
    none = place_appliance(capped, ApplianceState(), h.starts, h.ends, h.tz, fresh)
    assert not np.any(none.power_w)
    assert "pool not run" in none.reason
    assert "cap -1.00/kWh" in none.reason


def test_a_run_in_progress_goes_on_and_a_done_window_is_skipped() -> None:
    cfg = config(DISHWASHER.replace('"19:00"', '"17:00"'))
    dishwasher = cfg.loads[0]
    assert isinstance(dishwasher, ApplianceConfig)
    marginal, h = marginal_of(cfg)
    tonight = windows(dishwasher, h.starts[0], h.ends[-1], h.tz)
    assert tonight[0].start == START - timedelta(hours=1)  # 17:00 local, open at 18:00
    placed = place_appliance(
        dishwasher, ApplianceState(started_at=START - timedelta(minutes=30)), h.starts, h.ends, h.tz, marginal
    )
    assert placed.power_w[:5].tolist() == [2000.0] * 4 + [0.0]  # the last hour of its run
    assert "dishwasher running 17:30-19:00" in placed.reason
    done = place_appliance(
        dishwasher, ApplianceState(done_until=tonight[0].end), h.starts, h.ends, h.tz, marginal
    )
    assert len(done.runs) == 1
    assert done.runs[0].start >= tonight[1].start


def _water() -> WaterHeaterConfig:
    cfg = config('[[loads]]\nname = "boiler"\ntype = "water_heater"\n')
    load = cfg.loads[0]
    assert isinstance(load, WaterHeaterConfig)
    return load


def test_the_water_heater_never_falls_below_comfort_and_beats_its_thermostat() -> None:
    cfg = config('[[loads]]\nname = "boiler"\ntype = "water_heater"\n')
    marginal, h = marginal_of(cfg)
    store = thermal_store(_water(), h.starts, h.ends, h.tz)
    assert store.drawn_kwh.sum() == pytest.approx(12.0)  # 6 kWh a day over two days
    full = np.full(len(h.starts), store.electric_w)
    cost_full = marginal.cost(full)
    run_cost = np.stack([marginal.cost(level * full) for level in levels(store.dt_h)[1:]])
    run = place(store, 50.0, run_cost, float(marginal.slots.import_price.max()))
    default = thermostat_run(store, 50.0)
    assert run.temp_c.min() >= store.min_c - 1e-6
    assert run.temp_c.max() <= store.max_c + 1e-6
    assert default.temp_c.min() >= store.min_c
    # the same heat or more is bought for less: cost per slot at the run's power
    planned = float(marginal.cost(run.power_w).sum())
    thermostat = float(marginal.cost(default.power_w).sum())
    stored = (run.temp_c[-1] - default.temp_c[-1]) * store.capacity_kwh_per_k
    assert planned - stored * float(np.median(cost_full / 0.75)) < thermostat
    assert planned < thermostat


def test_the_heat_pump_is_boosted_when_cheap_and_blocked_when_dear_within_comfort() -> None:
    cfg = config('[[loads]]\nname = "hp"\ntype = "heat_pump"\n')
    hp = cfg.loads[0]
    assert isinstance(hp, HeatPumpConfig)
    slots, pv, load = day_inputs()
    plan = make_load_plan(cfg, 50.0, slots, pv, load, START, None, {"hp": ThermalState(21.0)})
    schedule = plan.loads[0]
    assert min(schedule.temperature_c) >= hp.min_c - 1e-6
    assert max(schedule.temperature_c) <= hp.max_c + 1e-6
    # what its energy costs: the export price it no longer earns on a surplus, else the import price
    surplus = np.array(pv) - np.array(load) >= hp.electric_w
    price = np.array([s.export_price if x else s.import_price for s, x in zip(slots, surplus, strict=True)])
    states = np.array(schedule.states)
    assert "boost" in schedule.states
    assert "block" in schedule.states
    assert price[states == "block"].mean() > price[states == "boost"].mean() + 0.1
    assert "blocked" in schedule.reason
    assert "degC" in schedule.reason


def test_the_joint_plan_costs_less_than_the_loads_at_their_defaults() -> None:
    cfg = config(DISHWASHER + '[[loads]]\nname = "boiler"\ntype = "water_heater"\n')
    slots, pv, load = day_inputs()
    states = {"boiler": ThermalState(50.0)}
    joint = make_load_plan(cfg, 50.0, slots, pv, load, START, None, states)
    h = Horizon(tuple(s.start for s in slots), tuple(s.end for s in slots), cfg.site.zone)
    defaults = sum(default_run(c, states.get(c.name), h).power_w for c in cfg.loads)
    baseline = make_plan(cfg, 50.0, slots, pv, (np.array(load) + defaults).tolist(), START, None)
    assert joint.plan.objective < baseline.objective - 0.5
    assert 1 <= joint.rounds <= MAX_ROUNDS
    names = [s.name for s in joint.loads]
    assert names == ["dishwasher", "boiler"]
    # the battery's plan carries the loads in its load forecast
    total = np.array(load) + sum(np.array(s.power_w) for s in joint.loads)
    assert [s.load_w for s in joint.plan.slots] == pytest.approx(total.tolist())
    for s in joint.loads:
        assert s.reason
        assert s.next_run is not None
        assert s.to_dict()["reason"] == s.reason


def test_the_loads_are_placed_the_same_in_any_order_of_the_configuration() -> None:
    boiler = '[[loads]]\nname = "boiler"\ntype = "water_heater"\n'
    pump = '[[loads]]\nname = "hp"\ntype = "heat_pump"\nelectric_w = 2500\nheat_demand_w = [1500]\n'
    slots, pv, load = day_inputs()
    states = {"boiler": ThermalState(50.0), "hp": ThermalState(21.0)}
    plans = [
        make_load_plan(config(text), 50.0, slots, pv, load, START, None, states)
        for text in (DISHWASHER + boiler + pump, pump + boiler + DISHWASHER)
    ]
    first, second = ({s.name: s.power_w for s in p.loads} for p in plans)
    assert first == second
    assert plans[0].plan.objective == plans[1].plan.objective
    assert [s.name for s in plans[1].loads] == ["hp", "boiler", "dishwasher"]  # as configured


def test_a_disabled_load_keeps_its_default() -> None:
    cfg = config(DISHWASHER.replace('type = "appliance"', 'type = "appliance"\nenabled = false'))
    slots, pv, load = day_inputs()
    joint = make_load_plan(cfg, 50.0, slots, pv, load, START, None, {})
    h = Horizon(tuple(s.start for s in slots), tuple(s.end for s in slots), cfg.site.zone)
    default = default_run(cfg.loads[0], None, h)
    assert joint.loads[0].power_w == pytest.approx(default.power_w.tolist())
    starts = [h.starts[t] for t in np.flatnonzero(default.power_w > 0)]
    assert starts[0].astimezone(h.tz).time() == time(19, 0)


def test_a_run_whose_default_time_has_passed_stays_in_the_plan() -> None:
    """Planned at 23:00, the dishwasher's 19:00 has passed but its window is open: every round of
    the joint plan, the defaults' too, carries its run, so the plan cannot drop it."""
    cfg = config(DISHWASHER)
    slots, pv, load = day_inputs()
    late = 20  # 23:00 in Warsaw
    joint = make_load_plan(cfg, 50.0, slots[late:], pv[late:], load[late:], slots[late].start, None, {})
    h = Horizon(tuple(s.start for s in slots[late:]), tuple(s.end for s in slots[late:]), cfg.site.zone)
    default = default_run(cfg.loads[0], None, h)
    first_window = [t for t, s in enumerate(h.starts) if s < START + timedelta(hours=13)]
    assert default.power_w[first_window].sum() * 0.25 / 1000 == pytest.approx(3.0)
    planned = np.array(joint.loads[0].power_w)
    assert planned[first_window].sum() * 0.25 / 1000 == pytest.approx(3.0)


@pytest.mark.parametrize("spread", [0.0, 0.3, 0.6])
def test_a_store_ends_each_slot_warm_enough_for_a_high_hour_of_draw(spread: float) -> None:
    cfg = config('[[loads]]\nname = "boiler"\ntype = "water_heater"\n')
    marginal, h = marginal_of(cfg)
    store = thermal_store(_water().model_copy(update={"draw_spread": spread}), h.starts, h.ends, h.tz)
    full = np.full(len(h.starts), store.electric_w)
    run_cost = np.stack([marginal.cost(level * full) for level in levels(store.dt_h)[1:]])
    run = place(store, 50.0, run_cost, float(marginal.slots.import_price.max()))
    guard = guard_k(store)
    # the hour up to each slot's end, its draw at the 99th percentile of a day's departure
    for t in range(0, len(h.starts), 7):
        hour = slice(max(t - 3, 0), t + 1)
        high = math.exp(DRAW_QUANTILE_Z * spread - spread**2 / 2) - 1.0  # of a lognormal of mean 1
        assert guard[t] == pytest.approx(high * store.drawn_kwh[hour].sum() / store.capacity_kwh_per_k)
    assert (run.temp_c[1:] >= store.min_c + guard - 1e-6).all()
    if spread == 0.0:  # told the draws are exact, the plan rides on the minimum where that pays
        assert run.temp_c[1:].min() < store.min_c + 0.5


def test_what_a_store_drew_so_far_today_says_of_the_rest_of_the_day() -> None:
    cfg = config('[[loads]]\nname = "boiler"\ntype = "water_heater"\n')
    _, h = marginal_of(cfg)
    store = thermal_store(_water(), h.starts, h.ends, h.tz)  # spread 0.3, from 18:00 local
    today = 24  # quarter-hours to midnight
    rest = float(store.drawn_kwh[:today].sum())
    # half of the day's profile seen, drawn at 1.5 times it
    seen = rest
    out = seen_today(store, 1.5 * seen, seen, seen + rest, today)
    s = 0.3
    mean_log = 0.5 * (-s * s / 2) + 0.5 * math.log(1.5)
    left = s * math.sqrt(0.5)
    factor = math.exp(mean_log + left * left / 2)
    assert 1.0 < factor < 1.5
    assert out.drawn_kwh[:today] == pytest.approx(factor * store.drawn_kwh[:today])
    assert out.drawn_kwh[today:] == pytest.approx(store.drawn_kwh[today:])  # tomorrow: the profile
    assert np.asarray(out.draw_spread)[:today] == pytest.approx(left)
    assert np.asarray(out.draw_spread)[today:] == pytest.approx(s)
    # the guard of today's slots: their higher draw at the narrower spread
    high = math.exp(DRAW_QUANTILE_Z * left - left * left / 2) - 1.0
    assert guard_k(out)[today - 1] == pytest.approx(
        high * out.drawn_kwh[today - 4 : today].sum() / store.capacity_kwh_per_k
    )
    # nothing seen, nothing measured, or told the draws are exact: the profile as it is
    exact = thermal_store(_water().model_copy(update={"draw_spread": 0.0}), h.starts, h.ends, h.tz)
    for before, args in (
        (store, (0.0, 0.0, rest, today)),
        (store, (0.0, seen, seen + rest, today)),
        (exact, (1.5 * seen, seen, seen + rest, today)),
    ):
        assert seen_today(before, *args) is before
    # a whole day seen: the factor is what was drawn, known
    whole = seen_today(store, 0.8 * seen, seen, seen, today)
    assert whole.drawn_kwh[:today] == pytest.approx(0.8 * store.drawn_kwh[:today])
    assert np.asarray(whole.draw_spread)[:today] == pytest.approx(0.0)


def test_a_store_held_at_its_floor_takes_just_the_heat_it_loses() -> None:
    """At one price all along and the heat it needs known (no spread), the house is held at its
    minimum: each slot the pump runs for just the share that ends it there, not a level's step
    above it, with what its run loses beyond the loss at the slot's start (it warms the house
    first, which then cools to the minimum)."""
    cfg = config('[[loads]]\nname = "hp"\ntype = "heat_pump"\ndraw_spread = 0.0\nheat_demand_w = [4000]\n')
    hp = cfg.loads[0]
    assert isinstance(hp, HeatPumpConfig)
    _, h = marginal_of(cfg)
    store = thermal_store(hp, h.starts, h.ends, h.tz)
    shares = levels(store.dt_h)[1:]
    run_cost = 0.3 * shares[:, None] * (store.electric_w * store.dt_h / 1000.0)[None, :]
    run = place(store, hp.min_c, run_cost, 0.3)
    assert run.temp_c == pytest.approx(np.full(len(h.starts) + 1, hp.min_c), abs=1e-9)
    heat = run.power_w * store.dt_h / 1000.0 * store.cop
    over = store.overshoot_kwh(np.arange(heat.size), heat)
    assert (over > 0).all()
    assert heat - over == pytest.approx(store.drawn_kwh + store.lost_kwh(0, hp.min_c), rel=1e-9)
    assert not np.isin(run.power_w / store.electric_w, shares).all()  # a share between the levels


def test_a_store_runs_at_least_its_minimum_time_or_not_at_all() -> None:
    """A tank that loses less than MIN_RUN_MIN of its element's heat in a slot is not switched
    on for less: the control loop would keep it on that long anyway."""
    cfg = config('[[loads]]\nname = "boiler"\ntype = "water_heater"\ndraw_spread = 0.0\n')
    boiler = cfg.loads[0]
    assert isinstance(boiler, WaterHeaterConfig)
    _, h = marginal_of(cfg)
    store = thermal_store(boiler, h.starts, h.ends, h.tz)
    shares = levels(store.dt_h)[1:]
    run_cost = 0.3 * shares[:, None] * (store.electric_w * store.dt_h / 1000.0)[None, :]
    run = place(store, boiler.min_c, run_cost, 0.3)
    minutes = run.power_w / store.electric_w * store.dt_h * 60.0
    assert (minutes > 0).any()
    assert ((minutes == 0) | (minutes >= MIN_RUN_MIN - 1e-9)).all()
    assert run.temp_c.min() >= boiler.min_c - 1e-9


def test_the_temperature_grid_has_a_point_at_the_minimum() -> None:
    cfg = config(
        '[[loads]]\nname = "hp"\ntype = "heat_pump"\n[[loads]]\nname = "boiler"\ntype = "water_heater"\n'
    )
    _, h = marginal_of(cfg)
    for load in cfg.loads:
        assert isinstance(load, HeatPumpConfig | WaterHeaterConfig)
        grid = temperature_grid(thermal_store(load, h.starts, h.ends, h.tz))
        assert np.min(np.abs(grid - load.min_c)) < 1e-9
        assert grid[0] < load.min_c
        assert grid[-1] >= load.max_c - 1e-9
        assert np.diff(grid) == pytest.approx(np.full(grid.size - 1, grid[1] - grid[0]))


def test_a_heat_pump_is_blocked_where_its_plan_falls_into_its_thermostat_s_band_unheated() -> None:
    """Left ``normal``, the pump's own thermostat starts once the house falls below
    ``setpoint_c - hysteresis_k`` (20.5 degC) and runs on to 21: a slot the plan heats nothing
    in while the house falls below that within it is one its thermostat would heat in."""
    config = HeatPumpConfig(name="hp")
    starts = tuple(datetime(2026, 1, 8, h, tzinfo=UTC) for h in range(4))
    ends = tuple(s + timedelta(hours=1) for s in starts)
    store = thermal_store(config, starts, ends, UTC)
    temps = np.array([20.9, 20.7, 20.4, 20.2, 20.0])
    wants = _thermostat_wants(store, temps, np.zeros(4))
    assert wants.tolist() == [False, True, True, True]


def test_a_heat_pump_heated_in_the_slot_before_is_blocked_where_no_heat_is_planned_under_its_setpoint() -> (
    None
):
    """A pump heating when let back to its thermostat runs on to its setpoint (21 degC): a slot
    the plan heats nothing in after one it heats in (or, for the first slot, a pump heating
    now) is one its thermostat would heat in while the house is under 21 degC."""
    config = HeatPumpConfig(name="hp")
    starts = tuple(datetime(2026, 1, 8, h, tzinfo=UTC) for h in range(4))
    ends = tuple(s + timedelta(hours=1) for s in starts)
    store = thermal_store(config, starts, ends, UTC)
    temps = np.array([20.6, 20.8, 20.7, 21.2, 21.0])
    heated = np.array([2500.0, 0.0, 2500.0, 0.0])
    assert _thermostat_wants(store, temps, heated).tolist() == [False, True, False, False]
    unheated = np.zeros(4)
    assert _thermostat_wants(store, temps, unheated).tolist() == [False, False, False, False]
    assert _thermostat_wants(store, temps, unheated, ran=True).tolist() == [True, False, False, False]


def test_a_store_guarded_against_a_quarter_hour_of_draw_counts_that_part_of_an_hourly_slot() -> None:
    """``guard_h``: the draw guarded against is that of these hours before each slot's end; of a
    slot it reaches into, only the part within them."""
    starts = tuple(datetime(2026, 1, 8, h, tzinfo=UTC) for h in range(6))
    ends = tuple(s + timedelta(hours=1) for s in starts)
    store = replace(thermal_store(_water(), starts, ends, UTC), draw_spread=0.3)
    high = math.exp(DRAW_QUANTILE_Z * 0.3 - 0.3**2 / 2) - 1.0
    hourly = guard_k(store)
    assert hourly == pytest.approx(high * store.drawn_kwh / store.capacity_kwh_per_k)
    assert guard_k(replace(store, guard_h=0.25)) == pytest.approx(hourly / 4)
    two = guard_k(replace(store, guard_h=1.5))
    assert two[1:] == pytest.approx(
        high * (store.drawn_kwh[1:] + store.drawn_kwh[:-1] / 2) / store.capacity_kwh_per_k
    )


@pytest.mark.parametrize(("share", "pieces"), [(0.3, 3), (0.5, 4), (0.1, 1), (0.95, 1)])
def test_a_store_run_in_pieces_loses_what_the_plan_counts(share: float, pieces: int) -> None:
    """An hourly slot's share run in its pieces at full power (as the control loop runs it),
    simulated every 10 s with the loss at each moment's temperature, ends where the plan's model
    says: the loss at the slot's start plus the pieces' overshoot."""
    hp = config('[[loads]]\nname = "hp"\ntype = "heat_pump"\nelectric_w = 2500\n').loads[0]
    assert isinstance(hp, HeatPumpConfig)
    start = datetime(2026, 1, 10, 6, 0, tzinfo=UTC)
    store = thermal_store(hp, [start], [start + timedelta(hours=1)], UTC)
    assert pieces_count(60.0, share) == pieces
    heat = share * float(store.heat_max_kwh()[0])
    drawn = heat - float(store.lost_kwh(0, hp.min_c))  # an even heat would hold it at min_c
    store = replace(store, drawn_kwh=np.array([drawn]))
    over = float(store.overshoot_kwh(0, heat))
    assert over > 0
    temp, steps = hp.min_c, 360
    part, on = steps // pieces, round(share * steps / pieces)
    for k in range(steps):
        given = heat / (share * steps) if k % part < on else 0.0
        lost = hp.loss_w_per_k * (temp - hp.setpoint_c) / 1000.0 / steps
        temp += (given - drawn / steps - lost) / store.capacity_kwh_per_k
    modelled = float(store.after(0, hp.min_c, heat)) - over / store.capacity_kwh_per_k
    assert hp.min_c - temp == pytest.approx(over / store.capacity_kwh_per_k, rel=0.05)
    assert temp == pytest.approx(modelled, abs=0.05 * over / store.capacity_kwh_per_k)
