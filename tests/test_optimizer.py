"""The planner's properties: within limits, never worse than self-consumption, deterministic."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.lp_reference import solve_lp

from controller.physics import BatteryParams, GridLimits, mode_request_w, step
from controller.planner.deterministic import is_convex, plan, solve
from controller.planner.plan import EndValue, Horizon, PlanConstraints

finite = {"allow_nan": False, "allow_infinity": False}
START = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Slot:
    start: datetime
    end: datetime
    import_price: float
    export_price: float


def slots(dt_h: list[float], import_price: list[float], export_price: list[float]) -> list[Slot]:
    out, t = [], START
    for dt, pi, pe in zip(dt_h, import_price, export_price, strict=True):
        out.append(Slot(t, t + timedelta(hours=dt), pi, pe))
        t += timedelta(hours=dt)
    return out


@st.composite
def cases(draw: st.DrawFn, convex: bool = False) -> tuple[BatteryParams, GridLimits, float, Horizon, float]:
    low = draw(st.floats(0, 40, **finite))
    taper = None if convex else draw(st.none() | st.floats(50, 95, **finite))
    params = BatteryParams(
        capacity_kwh=draw(st.floats(2, 20, **finite)),
        min_soc_pct=low,
        max_soc_pct=draw(st.floats(low + 10, 100, **finite)),
        max_charge_w=draw(st.floats(500, 8000, **finite)),
        max_discharge_w=draw(st.floats(500, 8000, **finite)),
        charge_efficiency=draw(st.floats(0.8, 1, **finite)),
        discharge_efficiency=draw(st.floats(0.8, 1, **finite)),
        wear_cost_per_kwh=draw(st.floats(0, 0.1, **finite)),
        taper_start_soc_pct=taper,
    )
    n = draw(st.integers(1, 40))
    dt = draw(st.lists(st.sampled_from([0.25, 0.5, 1.0]), min_size=n, max_size=n))
    pv = draw(st.lists(st.floats(0, 8000, **finite), min_size=n, max_size=n))
    load = draw(st.lists(st.floats(0, 5000, **finite), min_size=n, max_size=n))
    pi = draw(st.lists(st.floats(0, 2, **finite), min_size=n, max_size=n))
    if convex:
        pe = [p * draw(st.floats(-0.5, 1, **finite)) for p in pi]
    else:
        pe = draw(st.lists(st.floats(-0.5, 2, **finite), min_size=n, max_size=n))
    limits = GridLimits(max_export_w=draw(st.sampled_from([math.inf, 4000.0])))
    soc = draw(st.floats(params.min_soc_pct, params.max_soc_pct, **finite))
    h = Horizon(np.array(dt), np.array(pv), np.array(load), np.array(pi), np.array(pe))
    return params, limits, params.energy_kwh(soc), h, draw(st.floats(0, 1, **finite))


@settings(max_examples=100, deadline=None)
@given(cases())
def test_plans_respect_soc_and_power_limits(
    case: tuple[BatteryParams, GridLimits, float, Horizon, float],
) -> None:
    params, limits, e0, h, end_value = case
    sol = solve(params, limits, e0, h, end_value)
    assert np.all(sol.e_kwh >= params.e_min_kwh - 1e-9)
    assert np.all(sol.e_kwh <= params.e_max_kwh + 1e-9)
    assert np.all(sol.battery_w <= params.max_discharge_w + 1e-6)
    charge_limit = [params.charge_limit_w(params.soc_pct(e)) for e in sol.e_kwh[:-1]]
    assert np.all(-sol.battery_w <= np.array(charge_limit) + 1e-6)
    assert np.all(sol.pv_used_w <= h.pv_w + 1e-6)
    assert np.all(np.isfinite(sol.cost))
    # The plan is what the model does with the planned battery power.
    e = float(sol.e_kwh[0])
    for t in range(h.dt_h.size):
        r = step(
            params,
            e,
            float(sol.battery_w[t]),
            float(h.pv_w[t]),
            float(h.load_w[t]),
            float(h.dt_h[t]),
            limits,
            curtail_export=bool(h.export_price[t] < 0),
        )
        assert r.e_kwh == pytest.approx(float(sol.e_kwh[t + 1]), abs=1e-6)
        assert r.grid_w == pytest.approx(float(sol.grid_w[t]), abs=1e-3)
        e = r.e_kwh


def self_consumption_objective(params: BatteryParams, e0: float, h: Horizon, end_value: float) -> float:
    e, cost = e0, 0.0
    for t in range(h.dt_h.size):
        pv, load, dt = float(h.pv_w[t]), float(h.load_w[t]), float(h.dt_h[t])
        r = step(params, e, mode_request_w("self_use", params, e, pv, load), pv, load, dt)
        cost += r.cost(float(h.import_price[t]), float(h.export_price[t]), params.wear_cost_per_kwh)
        e = r.e_kwh
    return cost - end_value * (e - e0)


@settings(max_examples=100, deadline=None)
@given(cases(convex=True))
def test_plan_never_costs_more_than_self_consumption(
    case: tuple[BatteryParams, GridLimits, float, Horizon, float],
) -> None:
    params, _, e0, h, end_value = case
    assert is_convex(params, h)
    sol = solve(params, GridLimits(), e0, h, end_value)
    baseline = self_consumption_objective(params, sol.e_kwh[0], h, end_value)
    scale = float(
        np.sum((h.pv_w + h.load_w) * h.dt_h / 1000.0 * (np.abs(h.import_price) + np.abs(h.export_price)))
    )
    assert sol.objective <= baseline + 1e-6 * (1.0 + scale)


@settings(max_examples=40, deadline=None)
@given(cases())
def test_identical_inputs_give_identical_plans(
    case: tuple[BatteryParams, GridLimits, float, Horizon, float],
) -> None:
    params, limits, e0, h, end_value = case
    prices = slots(h.dt_h.tolist(), h.import_price.tolist(), h.export_price.tolist())
    kwargs = {
        "soc_pct": params.soc_pct(e0),
        "params": params,
        "prices": prices,
        "pv_w": h.pv_w.tolist(),
        "load_w": h.load_w.tolist(),
        "limits": limits,
        "end_value": EndValue(price_per_kwh=end_value, import_percentile=None),
    }
    first, second = plan(**kwargs), plan(**kwargs)  # type: ignore[arg-type]
    assert first == second
    a, b = first.to_dict(), second.to_dict()
    a.pop("solve_ms")
    b.pop("solve_ms")
    assert a == b


def evening_peak() -> tuple[list[Slot], list[float], list[float]]:
    """Cheap 15-min slots at night, a PV-covered hourly day, a dear 18:00-21:00 peak."""
    dt = [0.25] * 8 + [1.0] * 16 + [0.25] * 12 + [1.0] * 3
    hours = np.concatenate([[0.0], np.cumsum(dt)[:-1]])
    pi = [0.41 if h < 2 else (1.12 if 18 <= h < 21 else 0.6) for h in hours]
    load = [3000.0 if 18 <= h < 21 else 500.0 for h in hours]
    pv = [500.0 if 2 <= h < 18 else 0.0 for h in hours]
    return slots(dt, pi, [p - 0.3 for p in pi]), pv, load


def test_plan_charges_cheaply_for_the_peak_and_explains_it() -> None:
    prices, pv, load = evening_peak()
    params = BatteryParams(min_soc_pct=10, max_charge_w=3000)
    p = plan(
        soc_pct=10.0,
        params=params,
        prices=prices,
        pv_w=pv,
        load_w=load,
        end_value=EndValue(price_per_kwh=0.0, import_percentile=None),
    )
    first = p.slots[0]
    assert first.action == "charge"
    assert first.grid_charge_w == pytest.approx(3000.0, rel=1e-6)
    assert first.explanation == "charging 3.0 kW now at 0.41/kWh for the 18:00-21:00 peak at 1.12/kWh"
    peak = [s for s in p.slots if s.start.hour in (18, 19, 20)]
    assert all(s.battery_w > 0 for s in peak)
    assert all(s.action in ("self_use", "discharge") for s in peak)
    assert p.energy_cost < sum(
        500 / 1000 * (s.end - s.start).total_seconds() / 3600 * s.import_price for s in p.slots
    )
    assert len(p.inputs_digest) == 16
    json.dumps(p.to_dict())  # publishable as is


def test_negative_export_price_curtails_pv_in_the_plan() -> None:
    prices = slots([1.0] * 3, [0.2, 0.2, 0.2], [-0.05, -0.05, -0.05])
    params = BatteryParams(min_soc_pct=10, max_soc_pct=11)  # nearly full: no room for the surplus
    p = plan(
        soc_pct=11,
        params=params,
        prices=prices,
        pv_w=[6000.0] * 3,
        load_w=[1000.0] * 3,
        end_value=EndValue(price_per_kwh=0.0, import_percentile=None),
    )
    assert [s.action for s in p.slots] == ["export_limit"] * 3
    assert all(s.grid_w == pytest.approx(0.0, abs=1e-6) for s in p.slots)
    assert "curtailing" in p.slots[0].explanation


def test_margin_keeps_the_acted_on_slot_at_self_use() -> None:
    prices, pv, load = evening_peak()
    params = BatteryParams(min_soc_pct=10, max_charge_w=3000)
    p = plan(
        soc_pct=10.0,
        params=params,
        prices=prices,
        pv_w=pv,
        load_w=load,
        end_value=EndValue(price_per_kwh=0.0, import_percentile=None),
        constraints=PlanConstraints(self_use_margin_per_kwh=5.0),
    )
    assert p.slots[0].action in ("self_use", "hold")
    assert p.slots[0].battery_w == pytest.approx(0.0, abs=1e-6)  # empty battery: self-use does nothing


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s[:1] + s[2:], r"prices\[1\]: starts at"),
        (lambda s: [Slot(s[0].start.replace(tzinfo=None), s[0].end, 0.1, 0.0), *s[1:]], "timezone-aware"),
        (lambda s: [Slot(s[0].start, s[0].start, 0.1, 0.0), *s[1:]], "not after start"),
        (lambda s: [Slot(s[0].start, s[0].end, math.nan, 0.0), *s[1:]], r"import_price\[0\] is not finite"),
        (lambda s: [], "no slots"),
    ],
)
def test_bad_inputs_name_the_field(mutate: object, message: str) -> None:
    prices = slots([1.0] * 3, [0.2] * 3, [0.1] * 3)
    bad = mutate(prices)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        plan(soc_pct=50, params=BatteryParams(), prices=bad, pv_w=[0.0] * len(bad), load_w=[500.0] * len(bad))


def test_forecast_length_must_match_the_prices() -> None:
    with pytest.raises(ValueError, match="pv_w: 2 values for 3 price slots"):
        plan(
            soc_pct=50,
            params=BatteryParams(),
            prices=slots([1.0] * 3, [0.2] * 3, [0.1] * 3),
            pv_w=[0.0] * 2,
            load_w=[500.0] * 3,
        )


def test_no_profit_from_charging_and_discharging_at_once() -> None:
    """Paid to import, a model with separate charge and discharge flows burns energy through
    the battery's losses within one slot; one battery power per slot cannot."""
    params = BatteryParams()
    h = Horizon(np.array([1.0]), np.array([0.0]), np.array([800.0]), np.array([-0.2]), np.array([-0.3]))
    full = params.e_max_kwh
    sol = solve(params, GridLimits(), full, h, 0.0)
    assert sol.battery_w[0] == pytest.approx(0.0, abs=1e-9)  # full: discharging would import less
    assert sol.energy_cost == pytest.approx(0.8 * -0.2)
    separate_flows = solve_lp(
        params, GridLimits(), full, h.dt_h, h.pv_w, h.load_w, h.import_price, h.export_price
    )
    assert separate_flows.energy_cost < sol.energy_cost - 0.05  # what the single power rules out


def test_the_first_slot_may_empty_the_battery_to_its_floor_exactly() -> None:
    """e0 + (e_min - e0) rounds below e_min for this battery and SoC (5.15 - 4.05 in floats):
    the floor must still be reachable, not scored infeasible (the plan used to keep it all)."""
    params = BatteryParams(capacity_kwh=10.0, min_soc_pct=11.0, max_soc_pct=100.0)
    e0 = params.energy_kwh(51.5)
    assert (params.e_min_kwh - e0) + e0 < params.e_min_kwh
    h = Horizon(np.ones(4), np.zeros(4), np.zeros(4), np.array([1.0, 0, 0, 0]), np.array([1.0, 0, 0, 0]))
    sol = solve(params, GridLimits(), e0, h, 0.0)
    assert sol.e_kwh[1] == pytest.approx(params.e_min_kwh)
    assert sol.objective == pytest.approx(-(e0 - params.e_min_kwh) * params.discharge_efficiency)
