"""The recourse planner under the settlement's export rules: no grid charging, no battery export
(controller.planner.recourse, controller.planner.recourse_values), against the straightforward
recursion (tests/support/recourse_reference.py) and the LP optimum (tests/support/lp_reference.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.emulator_fixtures import driver_for, running_emulator
from support.lp_reference import LpResult, solve_lp
from support.recourse_reference import reference_best, reference_values
from test_optimizer import slots
from test_recourse import Case, uncertain
from test_recourse_values import with_chances

from controller.config.loading import load_config_text
from controller.control.executor import SafetyGuard
from controller.control.intents import live_intent
from controller.physics import Action, BatteryParams, GridLimits
from controller.planner import recourse
from controller.planner.deterministic import make_soc_grid
from controller.planner.inputs import make_plan
from controller.planner.plan import Horizon, PlanConstraints
from controller.planner.recourse_values import values
from controller.settlement.config import SettlementConfig
from controller.sim import backtest
from controller.sim.scenario import Scenario
from controller.sim.settings import PlannerSettings
from controller.sim.totals import StrategyTotals
from drivers.inverter.types import Command, CommandKind, Snapshot

RULES = (PlanConstraints(False, True), PlanConstraints(True, False), PlanConstraints(False, False))
rules_drawn = st.sampled_from(RULES)


@settings(max_examples=60, deadline=None)
@given(with_chances(), rules_drawn)
def test_the_vectorised_recursion_under_the_rules_gives_the_straightforward_values(
    drawn: tuple[Case, np.ndarray, np.ndarray | None, float], rules: PlanConstraints
) -> None:
    (params, limits, _, h, end_value), errors, chances, step = drawn
    grid = make_soc_grid(params, step)
    slots = recourse._slots(h, errors, chances)
    fast = values(params, limits, grid, slots, end_value, rules=rules)
    slow = reference_values(params, limits, grid, slots, end_value, rules)
    scale = 1.0 + max(float(np.abs(v).max()) for v in slow)
    for got, want in zip(fast, slow, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * scale)


@settings(max_examples=40, deadline=None)
@given(with_chances(), rules_drawn, st.lists(st.floats(0, 1), min_size=1, max_size=3))
def test_a_states_decision_under_the_rules_is_the_straightforward_one(
    drawn: tuple[Case, np.ndarray, np.ndarray | None, float], rules: PlanConstraints, where: list[float]
) -> None:
    (params, limits, _, h, end_value), errors, chances, step = drawn
    grid = make_soc_grid(params, step)
    slots = recourse._slots(h, errors, chances)
    after = values(params, limits, grid, slots, end_value, rules=rules)
    for t, slot in enumerate(slots):
        for at in where:
            e = params.e_min_kwh + at * (params.e_max_kwh - params.e_min_kwh)
            action, power, cost = recourse._best(params, limits, grid, e, after[t], slot, 0, rules)
            want_action, want_power, want_cost, margin = reference_best(
                params, limits, grid, e, after[t], slot, 0, rules
            )
            tolerance = 1e-9 * (1.0 + abs(want_cost))
            assert cost == pytest.approx(want_cost, abs=tolerance)
            if margin > tolerance:
                assert (action, power) == (want_action, pytest.approx(want_power, abs=1e-6))


@settings(max_examples=60, deadline=None)
@given(uncertain(), rules_drawn)
def test_plans_keep_to_the_rules(drawn: tuple[Case, np.ndarray], rules: PlanConstraints) -> None:
    (params, limits, e0, h, end_value), errors = drawn
    sol, _, _ = recourse.solve_recourse(params, limits, e0, h, errors, end_value, rules=rules)
    surplus = np.maximum(h.pv_w - h.load_w, 0.0)
    deficit = np.maximum(h.load_w - np.maximum(h.pv_w, 0.0), 0.0)
    if not rules.allow_grid_charge:
        assert np.all(-sol.battery_w <= surplus + 1e-6)
    if not rules.allow_battery_export:
        assert np.all(sol.battery_w <= deficit + 1e-6)


@settings(max_examples=60, deadline=None)
@given(uncertain(convex=True), rules_drawn)
def test_with_the_future_known_it_costs_no_less_than_the_lp_under_the_rules(
    drawn: tuple[Case, np.ndarray], rules: PlanConstraints
) -> None:
    (params, _, e0, h, end_value), _ = drawn
    known = np.zeros((h.dt_h.size, 1))
    lp = _lp(params, e0, h, rules, end_value)
    decision = recourse.decide(params, GridLimits(), e0, h, known, end_value, rules=rules)
    scale = float(np.sum((h.pv_w + h.load_w) * h.dt_h / 1000.0 * (h.import_price + np.abs(h.export_price))))
    # the rules bound the powers as the LP bounds them: the grid's value lies above the optimum
    assert decision.expected_cost + end_value * min(max(e0, params.e_min_kwh), params.e_max_kwh) >= (
        lp.objective - 1e-6 * (1.0 + scale)
    )


def _lp(
    params: BatteryParams, e0: float, h: Horizon, rules: PlanConstraints, end_value: float = 0.0
) -> LpResult:
    """The whole horizon's optimum under ``rules``, without grid limits."""
    return solve_lp(
        params,
        GridLimits(),
        e0,
        h.dt_h,
        h.pv_w,
        h.load_w,
        h.import_price,
        h.export_price,
        end_value,
        allow_grid_charge=rules.allow_grid_charge,
        allow_battery_export=rules.allow_battery_export,
    )


def _days(n_days: int) -> Horizon:
    """Hourly days: PV at noon, a dear evening that pays to export, cheap nights."""
    hour = np.arange(24 * n_days) % 24
    pv = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * 1500.0
    load = 400.0 + 1500.0 * ((hour >= 17) & (hour < 21))
    imp = np.where(hour < 6, 0.10, np.where((hour >= 17) & (hour < 21), 0.45, 0.30))
    exp = np.where((hour >= 18) & (hour < 21), 0.40, 0.05)
    return Horizon(np.ones(hour.size), pv, load, imp, exp)


@pytest.mark.parametrize("rules", RULES, ids=["no_grid_charge", "no_battery_export", "neither"])
def test_with_the_future_known_it_reaches_the_lp_optimum_under_the_rules(rules: PlanConstraints) -> None:
    params, h = BatteryParams(capacity_kwh=10.0, min_soc_pct=10.0), _days(3)
    e0 = params.energy_kwh(50.0)
    known = np.zeros((h.dt_h.size, 1))
    sol, _, _ = recourse.solve_recourse(params, GridLimits(), e0, h, known, 0.0, rules=rules)
    lp = _lp(params, e0, h, rules)
    free = _lp(params, e0, h, PlanConstraints())
    assert lp.energy_cost > free.energy_cost + 0.1  # each rule costs money here
    net = (h.load_w - h.pv_w) / 1000.0
    base = float(np.sum(np.where(net > 0, net * h.import_price, net * h.export_price)))
    assert (base - sol.energy_cost) / (base - lp.energy_cost) >= 0.995


def test_the_executor_keeps_to_the_rules_on_the_house_as_measured() -> None:
    params, h = BatteryParams(capacity_kwh=10.0, min_soc_pct=10.0), _days(2)
    errors = np.zeros((h.dt_h.size, 1))
    evening = 20  # export at 0.40, the night cheap: a full battery sells
    full = params.e_max_kwh

    def decided(rules: PlanConstraints, index: int, e_kwh: float, net_w: float) -> recourse.ModeChoice:
        values = recourse.slot_values(params, GridLimits(), h, errors, 0.0, rules=rules)
        price_i, price_e = float(h.import_price[index]), float(h.export_price[index])
        load = max(net_w, 0.0) + 200.0
        return recourse.decide_known(
            params, GridLimits(), values, index, e_kwh, net_w, load, 1.0, price_i, price_e, rules
        )

    free = PlanConstraints()
    assert decided(free, evening, full, 600.0).battery_w > 600.0 + 1.0  # sells beyond the house
    kept = decided(PlanConstraints(True, False), evening, full, 600.0)
    assert kept.battery_w <= 600.0 + 1e-6
    # at night (0.10) with the evening ahead a battery charges from the grid, unless it may not
    assert decided(free, 5, params.e_min_kwh, 400.0).action == Action.CHARGE
    no_grid = decided(PlanConstraints(False, True), 5, params.e_min_kwh, 400.0)
    assert no_grid.battery_w >= -1e-6
    # with a surplus it charges at most the surplus
    assert decided(PlanConstraints(False, True), 11, params.e_min_kwh, -800.0).battery_w >= -800.0 - 1e-6
    # a hold with a surplus, where the battery may not export, leaves it idle (the inverter's
    # battery standby) instead of exporting a step with the surplus; below a zero export price
    # the surplus is stored
    hold = recourse.ModeChoice(Action.HOLD, 0.0, 0.0)
    kept_rules = PlanConstraints(True, False)
    assert recourse.followable(hold, -500.0, 0.05, 50.0).action == Action.DISCHARGE
    assert recourse.followable(hold, -500.0, 0.05, 50.0, kept_rules) == recourse.ModeChoice(
        Action.IDLE, 0.0, 0.0
    )
    assert recourse.followable(hold, -500.0, -0.05, 50.0, kept_rules).action == Action.SELF_USE
    assert recourse.followable(hold, 500.0, 0.05, 50.0, kept_rules) == hold  # a deficit: hold buys it


def test_a_realistic_backtest_with_the_recourse_planner_keeps_to_the_rules() -> None:
    h = _days(8)
    rng = np.random.default_rng(5)
    scenario = Scenario(
        name="house",
        currency="EUR",
        start=datetime(2025, 3, 3, tzinfo=UTC),
        step=timedelta(hours=1),
        filled_intervals=0,
        import_price=h.import_price,
        export_price=h.export_price,
        pv_w=h.pv_w * rng.uniform(0.3, 1.3, h.pv_w.size),  # clouds the forecast does not know
        load_w=h.load_w * rng.uniform(0.7, 1.3, h.load_w.size),
    )
    params = BatteryParams()
    settings_ = PlannerSettings(forecast="realistic", planner="recourse")
    ruled = SettlementConfig.model_validate(
        {"rules": {"battery_to_grid": "never", "grid_charging": False}}
    ).build()

    def moved(totals: StrategyTotals) -> tuple[float, float]:
        trace = totals.trace
        assert trace is not None
        out = np.minimum(np.maximum(trace.battery_w, 0.0), np.maximum(-trace.grid_w, 0.0))
        into = np.minimum(np.maximum(-trace.battery_w, 0.0), np.maximum(trace.grid_w, 0.0))
        return float(out.sum()) / 1000.0, float(into.sum()) / 1000.0

    free = backtest.run_backtest(scenario, params, 50.0, settings=settings_, workers=1).strategies
    kept = backtest.run_backtest(
        scenario, params, 50.0, settings=settings_, workers=1, scheme=ruled
    ).strategies
    exported, charged = moved(free["hemsd"])
    assert exported + charged > 1.0  # without the rules the battery trades with the grid
    assert moved(kept["hemsd"]) == (pytest.approx(0.0, abs=1e-6), pytest.approx(0.0, abs=1e-6))
    assert kept["hemsd"].cost < kept["no_battery"].cost


def test_the_daemons_recourse_plan_and_executor_keep_to_the_rules() -> None:
    """An evening that pays 0.60 for export and a full battery: without rules the plan and the
    executor sell it; under ``battery_to_grid = "never"`` (the recourse planner, no longer
    replaced by the deterministic one) neither sends more than the house draws."""
    text = (
        '[site]\nid = "live"\ntimezone = "UTC"\n[planner]\nkind = "recourse"\n'
        "[battery]\ncapacity_kwh = 10\nmin_soc_pct = 15\nmax_soc_pct = 100\n"
    )
    free, ruled = (
        load_config_text(text),
        load_config_text(text + '[settlement.rules]\nbattery_to_grid = "never"\n'),
    )
    prices = slots([1.0] * 8, [0.3] * 8, [0.60] * 2 + [0.02] * 6)
    pv, load = [0.0] * 8, [300.0] * 8
    at = prices[0].start + timedelta(minutes=5)
    reading = Snapshot(at, pv_w=0.0, load_w=300.0, grid_w=300.0, battery_w=0.0, soc_pct=95.0)
    sold = make_plan(free, 95.0, prices, pv, load, prices[0].start)
    assert sold.slots[0].battery_w > 1000.0
    assert sold.values is not None
    selling = live_intent(free, sold, sold.slots[0], reading, at)
    assert selling is not None
    assert selling.action == Action.DISCHARGE
    assert selling.power_w > 1000.0
    kept = make_plan(ruled, 95.0, prices, pv, load, prices[0].start)
    assert kept.values is not None  # a recourse plan
    assert all(s.battery_w <= s.load_w - s.pv_w + 1e-6 for s in kept.slots)
    keeping = live_intent(ruled, kept, kept.slots[0], reading, at)
    assert keeping is not None
    assert keeping.action == Action.SELF_USE or keeping.power_w <= 300.0 + 1e-6


async def test_where_the_battery_may_not_export_a_surplus_worth_exporting_leaves_it_idle() -> None:
    """Stored energy worth 0.25 a kWh, export paid 0.30: the best the battery can do with the
    emulated house's late-morning surplus is nothing, while the surplus goes out. Under
    ``battery_to_grid = "never"`` the smallest discharge would send battery energy with it, so
    the executor asks for the inverter's battery standby; through the real goodwe library the
    emulated ET then exports the surplus with the battery neither charging nor discharging."""
    config = load_config_text(
        '[site]\nid = "idle"\ntimezone = "UTC"\n[planner]\nkind = "recourse"\n'
        '[settlement.rules]\nbattery_to_grid = "never"\n'
    )
    prices = slots([1.0] * 4, [0.3] * 4, [0.30] * 4)
    made = make_plan(config, 50.0, prices, [500.0] * 4, [500.0] * 4, prices[0].start, None)
    assert made.values is not None
    grid_e = made.values.e_min_kwh + made.values.step_kwh * np.arange(made.values.after_slot.shape[2])
    idle = replace(made, values=replace(made.values, after_slot=np.tile(-0.25 * grid_e, (4, 1, 1))))
    guard = SafetyGuard(config.executor, config.battery, config.grid)
    async with running_emulator(udp_port=None) as emu:
        driver = driver_for(emu, "tcp")
        emu.set_soc(50.0)
        snap = await driver.read()
        assert snap.pv_w > snap.load_w + 500.0  # a surplus
        intent = live_intent(config, idle, idle.slots[0], snap, prices[0].start)
        assert intent is not None
        assert intent.action == Action.IDLE
        assert "battery idle (standby)" in intent.reason
        guarded = guard.check(intent, snap, snap.time, 0.3)
        assert guarded.command == Command(CommandKind.IDLE, min_soc=config.battery.min_soc_pct)
        assert (await driver.apply(guarded.command)).ok
        after = await driver.read()
        assert emu.behaviour.mode == "standby"
        assert after.battery_w == pytest.approx(0.0, abs=1.0)
        assert after.grid_w == pytest.approx(after.load_w - after.pv_w, abs=2.0)
        assert after.grid_w < -500.0
    free = load_config_text('[site]\nid = "idle"\ntimezone = "UTC"\n[planner]\nkind = "recourse"\n')
    assert (exporting := live_intent(free, idle, idle.slots[0], snap, prices[0].start)) is not None
    assert exporting.action == Action.DISCHARGE  # without the rule: the smallest discharge, as before
