"""The recourse planner (controller.planner.recourse) and the error spread it is fed (controller.forecast.errors)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import test_closed_loop as closed_loop
from hypothesis import given, settings
from hypothesis import strategies as st
from support.forecaster_fixtures import SettableClock, data_manager, record_quarters, utc
from test_backtest import make_scenario, run
from test_optimizer import cases, slots

from controller.config.loading import load_config_text
from controller.config.models import ForecastConfig
from controller.control.executor import SafetyGuard
from controller.control.intents import intent_of_slot, live_intent
from controller.forecast.errors import MIN_SAMPLES, QUANTILES, DayErrors, ErrorTable, hindcast_day
from controller.forecast.service import Forecaster
from controller.physics import BatteryParams, GridLimits, step
from controller.planner import recourse
from controller.planner.deterministic import is_convex, solve
from controller.planner.inputs import PricedSlot, make_plan, slot_errors_w
from controller.planner.plan import ACTIONS, Horizon
from controller.sim import backtest
from controller.sim.baselines import self_consumption
from controller.sim.forecasts import Forecasts
from controller.sim.scenario import load_scenario
from controller.sim.settings import PlannerSettings
from drivers.inverter.types import CommandKind, Snapshot

Case = tuple[BatteryParams, GridLimits, float, Horizon, float]
finite = {"allow_nan": False, "allow_infinity": False}


@st.composite
def uncertain(draw: st.DrawFn, convex: bool = False) -> tuple[Case, np.ndarray]:
    case = draw(cases(convex=convex))
    n = case[3].dt_h.size
    k = draw(st.integers(1, 4))
    errors = draw(st.lists(st.floats(-3000, 3000, **finite), min_size=n * k, max_size=n * k))
    return case, np.array(errors).reshape(n, k)


@settings(max_examples=60, deadline=None)
@given(uncertain())
def test_plans_respect_soc_and_power_limits(drawn: tuple[Case, np.ndarray]) -> None:
    (params, limits, e0, h, end_value), errors = drawn
    sol, actions, _ = recourse.solve_recourse(params, limits, e0, h, errors, end_value)
    assert set(actions) <= set(ACTIONS)
    assert np.all(sol.e_kwh >= params.e_min_kwh - 1e-9)
    assert np.all(sol.e_kwh <= params.e_max_kwh + 1e-9)
    assert np.all(sol.battery_w <= params.max_discharge_w + 1e-6)
    charge_limit = [params.charge_limit_w(params.soc_pct(e)) for e in sol.e_kwh[:-1]]
    assert np.all(-sol.battery_w <= np.array(charge_limit) + 1e-6)
    assert np.all(np.isfinite(sol.cost))
    # The plan is what the model does with the planned power when the forecast comes true.
    e = float(sol.e_kwh[0])
    for t in range(h.dt_h.size):
        pv, load = float(h.pv_w[t]), float(h.load_w[t])
        request = load - pv if actions[t] in ("self_use", "export_limit") else float(sol.battery_w[t])
        r = step(params, e, request, pv, load, float(h.dt_h[t]), limits, bool(h.export_price[t] < 0))
        assert r.e_kwh == pytest.approx(float(sol.e_kwh[t + 1]), abs=1e-6)
        e = r.e_kwh
    first = recourse.decide(params, limits, e0, h, errors, end_value)
    assert first.action == ("self_use" if actions[0] == "export_limit" else actions[0])
    assert math.isfinite(first.expected_cost)


@settings(max_examples=60, deadline=None)
@given(uncertain(convex=True))
def test_without_errors_it_costs_no_less_than_the_exact_optimum(drawn: tuple[Case, np.ndarray]) -> None:
    (params, _, e0, h, end_value), _ = drawn
    assert is_convex(params, h)
    known = np.zeros((h.dt_h.size, 1))
    exact = solve(params, GridLimits(), e0, h, end_value)
    decision = recourse.decide(params, GridLimits(), e0, h, known, end_value)
    scale = float(np.sum((h.pv_w + h.load_w) * h.dt_h / 1000.0 * (h.import_price + np.abs(h.export_price))))
    # the grid's value interpolates a convex function from above: never below the exact optimum
    assert decision.expected_cost + end_value * exact.e_kwh[0] >= exact.objective - 1e-6 * (1.0 + scale)


@settings(max_examples=30, deadline=None)
@given(uncertain())
def test_identical_inputs_give_identical_plans(drawn: tuple[Case, np.ndarray]) -> None:
    (params, limits, e0, h, _), errors = drawn
    prices = slots(h.dt_h.tolist(), h.import_price.tolist(), h.export_price.tolist())
    kwargs = {
        "soc_pct": params.soc_pct(e0),
        "params": params,
        "prices": prices,
        "pv_w": h.pv_w.tolist(),
        "load_w": h.load_w.tolist(),
        "errors_w": errors,
        "limits": limits,
        "created_at": datetime(2026, 3, 1, tzinfo=UTC),
    }
    first, second = recourse.plan(**kwargs), recourse.plan(**kwargs)  # type: ignore[arg-type]
    assert first.to_dict() | {"solve_ms": 0} == second.to_dict() | {"solve_ms": 0}
    assert len(first.slots) == len(prices)


def test_it_leaves_room_for_pv_that_may_come() -> None:
    """Night: grid power is cheap, the morning's is dear; the morning's PV is forecast at zero
    but came as a 4 kW surplus half the time. Charging fully overnight would export that
    surplus for nothing; the recourse plan charges less than the deterministic one."""
    params = BatteryParams(capacity_kwh=10.0, min_soc_pct=0.0)
    h = Horizon(
        dt_h=np.array([1.0, 1.0, 1.0]),
        pv_w=np.zeros(3),
        load_w=np.array([0.0, 2000.0, 2000.0]),
        import_price=np.array([0.10, 0.40, 0.40]),
        export_price=np.zeros(3),
    )
    departures = np.array([[0.0, 0.0], [-6000.0, 0.0], [-6000.0, 0.0]])
    e0 = 2.0
    deterministic = recourse.decide(params, GridLimits(), e0, h, np.zeros((3, 1)), 0.0)
    hedged = recourse.decide(params, GridLimits(), e0, h, departures, 0.0)
    assert deterministic.action == "charge"
    assert hedged.battery_w > deterministic.battery_w + 500.0  # charges at least 0.5 kW less


def test_error_table_quantiles_by_lead_and_hour() -> None:
    spd = 24
    days = [
        DayErrors(d, np.tile(np.array([[100.0 * d, -50.0, 0.0]]), (spd, 1)))
        for d in range(1, 1 + MIN_SAMPLES)
    ]
    table = ErrorTable.from_days(days, spd, k=1)
    # lead 0 of the issues at 09:00 targets 09:00: the median of 100, 200, .. 500
    assert table.spread_w(np.array([0.0]), np.array([9]))[0, 0] == pytest.approx(300.0)
    assert table.spread_w(np.array([1.0]), np.array([9]))[0, 0] == pytest.approx(-50.0)
    assert table.spread_w(np.array([5.0]), np.array([9]))[0, 0] == 0.0  # no sample at that lead
    few = ErrorTable.from_days(days[: MIN_SAMPLES - 1], spd, k=1)
    assert not np.any(few.quantiles_w)


def test_hindcasts_see_only_what_was_measured() -> None:
    rng = np.random.default_rng(3)
    spd = 24
    pv, load = rng.uniform(0, 3000, 5 * spd), rng.uniform(200, 900, 5 * spd)
    measured = 3 * spd + 5
    errors = hindcast_day(pv, load, spd, 2, 12, measured).error_w
    later = pv.copy(), load.copy()
    later[0][measured:] += 1000.0
    later[1][measured:] -= 100.0
    again = hindcast_day(later[0], later[1], spd, 2, 12, measured).error_w
    np.testing.assert_array_equal(errors, again)
    target = 2 * spd + np.arange(spd)[:, None] + np.arange(12)[None, :]
    assert np.all(np.isnan(errors[target >= measured]))
    assert np.all(np.isfinite(errors[target < measured]))


def test_hindcasts_of_parts_taken_as_measured() -> None:
    rng = np.random.default_rng(4)
    spd = 24
    pv, load = rng.uniform(0, 3000, 5 * spd), rng.uniform(200, 900, 5 * spd)
    measured = 4 * spd
    both = hindcast_day(pv, load, spd, 2, 12, measured, frozenset({"pv", "load"})).error_w
    assert np.all(both[np.isfinite(both)] == 0.0)
    # with the PV as measured only the load's error is left, and the other way round
    no_pv = np.zeros_like(pv)
    load_only = hindcast_day(no_pv, load, spd, 2, 12, measured).error_w
    np.testing.assert_allclose(
        hindcast_day(pv, load, spd, 2, 12, measured, frozenset({"pv"})).error_w, load_only
    )
    flat = np.full_like(load, 500.0)
    pv_only = hindcast_day(pv, flat, spd, 2, 12, measured).error_w
    np.testing.assert_allclose(
        hindcast_day(pv, load, spd, 2, 12, measured, frozenset({"load"})).error_w, pv_only
    )
    with pytest.raises(ValueError, match="sun"):
        hindcast_day(pv, load, spd, 2, 12, measured, frozenset({"sun"}))


def test_backtest_with_parts_of_the_forecast_as_measured(tmp_path: Path) -> None:
    scenario = load_scenario(make_scenario(tmp_path, days=6))
    params = BatteryParams()
    realistic = PlannerSettings(forecast="realistic", planner="recourse")
    with pytest.raises(ValueError, match=r"exact.*sun"):
        replace(realistic, exact=frozenset({"sun"}))
    i = 2 * scenario.steps_per_day + 5
    for parts in (frozenset({"pv"}), frozenset({"load"})):
        forecasts = Forecasts(scenario, params, replace(realistic, exact=parts))
        h, _ = forecasts.horizon(i)
        stop = i + h.pv_w.size
        pv_measured = np.array_equal(h.pv_w, scenario.pv_w[i:stop])
        load_measured = np.array_equal(h.load_w, scenario.load_w[i:stop])
        assert (pv_measured, load_measured) == ("pv" in parts, "load" in parts)
    costs = {
        parts: backtest.hemsd(
            scenario, params, 50.0, settings=replace(realistic, exact=frozenset(parts))
        ).cost
        for parts in ((), ("pv", "load"))
    }
    # knowing both does no worse here than forecasting both, and both known leaves no departure
    assert costs[("pv", "load")] <= costs[()] + 1e-9
    both = Forecasts(scenario, params, replace(realistic, exact=frozenset({"pv", "load"})))
    departures, _ = both.departures(i, 24)
    assert not np.any(departures)


def test_backtest_runs_the_recourse_planner(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = load_scenario(make_scenario(tmp_path, days=8))
    params = BatteryParams()
    settings_ = PlannerSettings(forecast="realistic", planner="recourse")
    replayed = backtest.hemsd(scenario, params, 50.0, settings=settings_)
    assert len(replayed.solve_ms) == len(scenario) - 24
    assert replayed.cost < self_consumption(scenario, params, 50.0).cost
    path = make_scenario(tmp_path, days=8, name="cli_eur.csv")
    assert run([str(path), "--forecast", "realistic", "--json"]) == 0  # the default planner
    printed = json.loads(capsys.readouterr().out)["strategies"]["hemsd"]["cost"]
    assert printed == pytest.approx(replayed.cost, abs=1e-4)
    perfect = backtest.hemsd(scenario, params, 50.0, settings=PlannerSettings(planner="recourse"))
    exact = backtest.hemsd(scenario, params, 50.0)
    # with the future known the recourse planner is the exact one on a 0.1 kWh grid
    assert perfect.cost == pytest.approx(exact.cost, rel=0.02)


def test_the_daemon_plans_with_the_configured_planner() -> None:
    spd = 96
    rng = np.random.default_rng(5)
    days = [DayErrors(d, rng.normal(0.0, 800.0, (spd, 8))) for d in range(1, 8)]
    table = ErrorTable.from_days(days, spd)
    now = datetime(2026, 3, 2, 10, 7, tzinfo=UTC)
    start = now.replace(minute=0)
    priced = [
        PricedSlot(
            max(start + k * timedelta(minutes=15), now), start + (k + 1) * timedelta(minutes=15), pi, 0.05
        )
        for k, pi in enumerate([0.30] * 8 + [0.10] * 8 + [0.45] * 8)
    ]
    pv = [3000.0] * 8 + [500.0] * 16
    load = [600.0] * 24
    errors, transitions = slot_errors_w(table, priced, now)
    assert errors.shape == (24, QUANTILES)
    assert np.any(errors)
    assert transitions is not None
    assert transitions.shape == (24, QUANTILES, QUANTILES)
    np.testing.assert_allclose(transitions.sum(axis=2), 1.0)
    deterministic = load_config_text("[planner]\nkind = 'deterministic'\n")
    uncertain = load_config_text("[planner]\nkind = 'recourse'\n")
    first = make_plan(deterministic, 40.0, priced, pv, load, now, table)
    second = make_plan(uncertain, 40.0, priced, pv, load, now, table)
    assert second.slots[0].action in ACTIONS
    assert len(second.slots) == len(first.slots) == 24
    assert second.inputs_digest != first.inputs_digest
    assert second == make_plan(uncertain, 40.0, priced, pv, load, now, table)  # solve_ms not compared


async def test_the_forecaster_hindcasts_the_sites_history(tmp_path: Path) -> None:
    clock = SettableClock(utc(6, 8, 12))

    def measured_pv(quarter: datetime) -> float:
        sunny = 1.0 if quarter.day % 2 else 0.3
        return 4000.0 * sunny if 6 <= quarter.hour < 18 else 0.0

    async with data_manager(tmp_path, clock) as data:
        await record_quarters(data, utc(6, 1), clock.now, measured_pv, 500.0)
        forecaster = Forecaster(ForecastConfig(history_days=7), data, UTC)
        table = await forecaster.errors(12.0)
        assert table is not None
        assert await forecaster.errors(12.0) is table  # once a day
    by_hour = np.abs(table.quantiles_w).max(axis=(0, 2))
    assert np.all(by_hour[:6] < 1.0)  # night: constant load, no PV, nothing to miss
    assert by_hour[12] > 500.0  # noon: sunny and cloudy days alternate


async def test_the_daemon_follows_a_deterministic_plan_slot_by_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default planner is the recourse one (test_closed_loop); the deterministic one is
    followed slot by slot, its commands changing only with the slot."""
    monkeypatch.setattr(
        closed_loop,
        "CONFIG",
        closed_loop.CONFIG.replace("[battery]", "[planner]\nkind = 'deterministic'\n[battery]"),
    )
    app = await closed_loop.run_site(tmp_path, hours=2.0, begin_h=6)
    assert app.config.planner.kind == "deterministic"
    assert len(app.replans) >= 8  # the start, then every 15 minutes
    followed = [t for t in app.ticks if t.source == "plan" and not t.held_back and t.plan_action is not None]
    assert len(followed) > 0.8 * len(app.ticks)
    assert all(closed_loop.MODE_OF_ACTION[t.plan_action] == t.emulator_mode for t in followed)  # type: ignore[index]


@settings(max_examples=80, deadline=None)
@given(
    uncertain(convex=True),
    st.floats(-4000, 4000, **finite),
    st.floats(0, 4000, **finite),
    st.sampled_from([math.inf, 0.0, 1500.0, 4000.0]),
)
def test_a_slot_decided_on_the_real_house_is_its_best_choice(
    drawn: tuple[Case, np.ndarray], departure_w: float, real_load_w: float, fuse_w: float
) -> None:
    """Once the slot's load and PV are known, the mode chosen costs no more, with the value of
    what it leaves stored, than any battery power the model allows (up to the grid's step),
    with or without a main fuse that stops the largest charges."""
    (params, limits, e0, h, end_value), errors = drawn
    limits = replace(limits, max_import_w=fuse_w)
    values = recourse.slot_values(params, limits, h, errors, end_value)
    dt, pi, pe = float(h.dt_h[0]), float(h.import_price[0]), float(h.export_price[0])
    real_pv_w = max(0.0, real_load_w - (float(h.load_w[0] - h.pv_w[0]) + departure_w))
    net_w = real_load_w - real_pv_w
    decision = recourse.decide_known(params, limits, values, 0, e0, net_w, real_load_w, dt, pi, pe)
    grid_e = values.e_min_kwh + values.step_kwh * np.arange(values.after_slot.shape[2])

    def total(battery_w: float) -> float:
        r = step(params, e0, battery_w, real_pv_w, real_load_w, dt, limits, curtail_export=pe < 0)
        return r.cost(pi, pe, params.wear_cost_per_kwh) + float(
            np.interp(r.e_kwh, grid_e, values.after_slot[0, 0])
        )

    request = net_w if decision.action == "self_use" else decision.battery_w
    assert total(request) == pytest.approx(decision.expected_cost, abs=1e-6)  # what it does is what it scored
    # the optimum of a piecewise-linear cost lies at a power limit, at rest, where the battery
    # meets the house (net_w) or where the stored energy lands on a grid point
    to_w = 1000.0 / dt
    onto_grid = np.where(
        grid_e > e0, -(grid_e - e0) / params.charge_efficiency, (e0 - grid_e) * params.discharge_efficiency
    )
    powers = np.concatenate([[-params.max_charge_w, 0.0, params.max_discharge_w, net_w], onto_grid * to_w])
    # the grid's limits bound the powers the decision may choose, and add their own kinks
    at_limits = [w for w in (net_w + limits.max_export_w, net_w - limits.max_import_w) if math.isfinite(w)]
    powers = np.concatenate([powers, at_limits])
    # beyond the grid's limits a discharge or a charge is refused
    exported, imported = powers - net_w, net_w - powers
    allowed = ~((powers > 0) & (exported > limits.max_export_w + 1e-9))
    allowed &= ~((powers < 0) & (imported > max(limits.max_import_w, net_w) + 1e-9))
    best = min(total(float(w)) for w in powers[allowed])
    # it scores these very powers, those at the grid's limits too: the best of all
    assert best - 1e-6 <= decision.expected_cost <= best + 1e-6


@pytest.mark.parametrize(
    ("limits", "net_w", "export_price", "per_kwh", "expected_w"),
    [
        (GridLimits(max_import_w=3700.0), 3000.0, 0.05, 0.5, -700.0),  # charge up to the fuse
        (GridLimits(max_export_w=600.0), 500.0, 0.25, 0.1, 1100.0),  # cover the house, export the cap
        (GridLimits(max_export_w=2100.0), -3000.0, 0.25, 0.2, -900.0),  # store what the cap curtails
        (GridLimits(max_export_w=0.0), -3000.0, 0.25, 0.2, -3000.0),  # zero export: store it all
    ],
)
def test_at_the_grid_limits_the_executor_picks_the_power_exactly_at_the_limit(
    limits: GridLimits, net_w: float, export_price: float, per_kwh: float, expected_w: float
) -> None:
    """Stored energy worth a flat price: the best power is where the grid flow meets its limit,
    which lands the stored energy between the grid's points, and is chosen all the same."""
    config = load_config_text('[site]\nid = "cap"\ntimezone = "UTC"\n[planner]\nkind = "recourse"\n')
    prices = slots([1.0] * 4, [0.3] * 4, [export_price] * 4)
    made = make_plan(config, 50.0, prices, [0.0] * 4, [500.0] * 4, prices[0].start, None)
    assert made.values is not None
    grid_e = made.values.e_min_kwh + made.values.step_kwh * np.arange(made.values.after_slot.shape[2])
    flat = replace(made.values, after_slot=np.tile(-per_kwh * grid_e, (4, 1, 1)))
    params = config.battery.params()
    e = params.energy_kwh(50.0)
    load_w = max(net_w, 0.0)
    best = recourse.decide_known(params, limits, flat, 0, e, net_w, load_w, 1.0, 0.3, export_price)
    assert best.battery_w == pytest.approx(expected_w)
    unlimited = recourse.decide_known(params, GridLimits(), flat, 0, e, net_w, load_w, 1.0, 0.3, export_price)
    assert unlimited.expected_cost <= best.expected_cost  # the limit binds


def test_the_executor_weighs_what_the_house_does_against_the_value_of_stored_energy() -> None:
    """Forecast: load and PV balance until an evening at 1.2 that the stored energy cannot cover
    alone. Measured instead: a surplus, which is worth storing rather than exporting at 0.05, or
    a deficit, which is bought at 0.3 rather than taken from the evening's energy."""
    config = load_config_text(
        '[site]\nid = "live"\ntimezone = "UTC"\n[planner]\nkind = "recourse"\n'
        "[battery]\ncapacity_kwh = 10\nmin_soc_pct = 15\nmax_soc_pct = 100\n"
    )
    prices = slots([1.0] * 8, [0.3] * 4 + [1.2] * 4, [0.05] * 8)
    made = make_plan(config, 30.0, prices, [500.0] * 4 + [0.0] * 4, [500.0] * 8, prices[0].start, None)
    assert made.values is not None
    at = prices[0].start + timedelta(minutes=10)

    def reading(pv_w: float, load_w: float) -> Snapshot:
        return Snapshot(at, pv_w=pv_w, load_w=load_w, grid_w=load_w - pv_w, battery_w=0.0, soc_pct=30.0)

    as_forecast = live_intent(config, made, made.slots[0], reading(500.0, 500.0), at)
    assert as_forecast is not None
    assert as_forecast.action == made.slots[0].action
    sunny = live_intent(config, made, made.slots[0], reading(3500.0, 500.0), at)
    assert sunny is not None
    assert sunny.action in ("self_use", "charge")
    assert sunny.action == "self_use" or sunny.power_w >= 3000.0  # the whole surplus goes in
    cloudy = live_intent(config, made, made.slots[0], reading(0.0, 2000.0), at)
    assert cloudy is not None
    assert cloudy.action in ("hold", "charge")
    if cloudy.action != made.slots[0].action:
        assert "load-PV is 2000 W, the plan expected 0 W" in cloudy.reason
    stored = replace(made, values=None)  # a plan read back from storage carries no values
    assert live_intent(config, stored, stored.slots[0], reading(3500.0, 500.0), at) is None


def test_a_hold_with_a_surplus_is_followed_as_an_idle_battery_exporting_it() -> None:
    """Stored energy worth what the export pays, losses aside: the surplus is best exported with
    the battery idle. The inverter's hold would store it, so the executor discharges at one power
    step instead; a hold without a surplus stays a hold."""
    config = load_config_text('[site]\nid = "idle"\ntimezone = "UTC"\n[planner]\nkind = "recourse"\n')
    prices = slots([1.0] * 4, [0.3] * 4, [0.25] * 4)
    made = make_plan(config, 50.0, prices, [500.0] * 4, [500.0] * 4, prices[0].start, None)
    assert made.values is not None
    grid_e = made.values.e_min_kwh + made.values.step_kwh * np.arange(made.values.after_slot.shape[2])
    flat = replace(made.values, after_slot=np.tile(-0.25 * grid_e, (4, 1, 1)))  # 0.25 per stored kWh
    idle = replace(made, values=flat)
    at = prices[0].start + timedelta(minutes=5)

    def reading(pv_w: float, load_w: float) -> Snapshot:
        return Snapshot(at, pv_w=pv_w, load_w=load_w, grid_w=load_w - pv_w, battery_w=0.0, soc_pct=50.0)

    params = config.battery.params()
    e = params.energy_kwh(50.0)
    best = recourse.decide_known(params, GridLimits(), flat, 0, e, -3000.0, 500.0, 1.0, 0.3, 0.25)
    assert best.action == "hold"
    exporting = live_intent(config, idle, idle.slots[0], reading(3500.0, 500.0), at)
    assert exporting is not None
    assert exporting.action == "discharge"
    assert exporting.power_w == config.executor.power_step_w
    assert "3000 W PV surplus exported" in exporting.reason
    assert exporting.export_limit_w is None  # the export pays: nothing curtailed
    assert recourse.followable(best, 800.0, 0.25, 100.0) == best  # a deficit: hold buys it
    for other in ("self_use", "charge", "discharge"):
        decision = recourse.ModeChoice(other, 500.0, 0.0)
        assert recourse.followable(decision, -3000.0, 0.25, 100.0) == decision
        assert recourse.followable(decision, -3000.0, -0.25, 100.0) == decision


def test_below_a_zero_export_price_a_hold_with_a_surplus_stores_it_and_nothing_is_exported() -> None:
    """Room worth more than a free kWh, less than the export costs (stored energy at -0.1 per
    kWh), and no load to cover from the battery: the planner keeps the battery idle and curtails
    PV. The inverter cannot (curtailing hides the PV it curtails), and exporting would cost
    money, so the surplus is stored, with export limited to zero; every mode commanded at that
    price curtails rather than export."""
    config = load_config_text('[site]\nid = "curtail"\ntimezone = "UTC"\n[planner]\nkind = "recourse"\n')
    prices = slots([1.0] * 4, [0.3] * 4, [-0.2] * 4)
    made = make_plan(config, 50.0, prices, [500.0] * 4, [500.0] * 4, prices[0].start, None)
    assert made.values is not None
    grid_e = made.values.e_min_kwh + made.values.step_kwh * np.arange(made.values.after_slot.shape[2])
    room = replace(made, values=replace(made.values, after_slot=np.tile(0.1 * grid_e, (4, 1, 1))))
    at = prices[0].start + timedelta(minutes=5)

    def reading(pv_w: float, load_w: float) -> Snapshot:
        return Snapshot(at, pv_w=pv_w, load_w=load_w, grid_w=load_w - pv_w, battery_w=0.0, soc_pct=50.0)

    params = config.battery.params()
    e = params.energy_kwh(50.0)
    assert room.values is not None
    best = recourse.decide_known(params, GridLimits(), room.values, 0, e, -3000.0, 0.0, 1.0, 0.3, -0.2)
    assert best.action == "hold"
    assert recourse.followable(best, -3000.0, -0.2, 100.0) == recourse.ModeChoice(
        "self_use", -3000.0, best.expected_cost
    )
    stored = live_intent(config, room, room.slots[0], reading(3000.0, 0.0), at)
    assert stored is not None
    assert (stored.action, stored.export_limit_w) == ("export_limit", 0.0)
    assert "3000 W PV surplus stored, not exported at -0.20/kWh" in stored.reason
    command = SafetyGuard(config.executor, config.battery, config.grid).check(
        stored, reading(3000.0, 0.0), at, 0.3
    )
    assert (command.command.kind, command.command.export_limit_w) == (CommandKind.SELF_USE, 0.0)
    deficit = live_intent(config, room, room.slots[0], reading(0.0, 800.0), at)
    assert deficit is not None
    assert deficit.export_limit_w == 0.0  # whatever the mode, nothing is exported at a loss


def test_a_plan_followed_slot_by_slot_never_exports_below_a_zero_export_price() -> None:
    """A deterministic plan, or one read back from storage, is followed slot by slot: at a
    negative export price every slot's intent limits export to zero, elsewhere none does."""
    config = load_config_text('[site]\nid = "slots"\ntimezone = "UTC"\n[planner]\nkind = "deterministic"\n')
    prices = slots([1.0] * 8, [0.1] * 4 + [0.9] * 4, [-0.2] * 4 + [0.05] * 4)
    made = make_plan(config, 20.0, prices, [0.0] * 8, [500.0] * 8, prices[0].start, None)
    cheap = made.slots[0]
    followed = [*made.slots, *(replace(cheap, action=a) for a in ("self_use", "discharge"))]
    assert {slot.action for slot in made.slots} >= {"charge", "self_use"}
    for slot in followed:
        intent = intent_of_slot(slot)
        if slot.export_price < 0:
            assert intent.export_limit_w == 0.0, (slot.action, intent)
            assert intent.action != "self_use"  # self-use becomes self-use with export limited
        elif slot.action != "export_limit":
            assert intent.export_limit_w is None, (slot.action, intent)
