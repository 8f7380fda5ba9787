"""The vectorised closed form of an interval agrees with the step-by-step model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.physics import (
    BatteryParams,
    GridLimits,
    charge_limit_w_array,
    interval_cost,
    interval_outcome,
    step,
)

finite = {"allow_nan": False, "allow_infinity": False}


@st.composite
def batteries(draw: st.DrawFn) -> BatteryParams:
    low = draw(st.floats(0, 40, **finite))
    return BatteryParams(
        capacity_kwh=draw(st.floats(1, 30, **finite)),
        min_soc_pct=low,
        max_soc_pct=draw(st.floats(low + 5, 100, **finite)),
        max_charge_w=draw(st.floats(100, 10000, **finite)),
        max_discharge_w=draw(st.floats(100, 10000, **finite)),
        charge_efficiency=draw(st.floats(0.7, 1, **finite)),
        discharge_efficiency=draw(st.floats(0.7, 1, **finite)),
        wear_cost_per_kwh=draw(st.floats(0, 0.2, **finite)),
    )


@settings(max_examples=300, deadline=None)
@given(
    params=batteries(),
    soc=st.floats(0, 1, **finite),
    power_share=st.floats(-1, 1, **finite),
    dt=st.sampled_from([0.25, 0.5, 1.0]),
    pv=st.floats(0, 9000, **finite),
    load=st.floats(0, 6000, **finite),
    import_price=st.floats(0, 2, **finite),
    export_price=st.floats(-0.5, 1, **finite),
    export_cap=st.sampled_from([math.inf, 3000.0]),
)
def test_closed_form_matches_step(
    params: BatteryParams,
    soc: float,
    power_share: float,
    dt: float,
    pv: float,
    load: float,
    import_price: float,
    export_price: float,
    export_cap: float,
) -> None:
    limits = GridLimits(max_export_w=export_cap)
    e = params.e_min_kwh + soc * (params.e_max_kwh - params.e_min_kwh)
    request = power_share * (params.max_discharge_w if power_share > 0 else params.max_charge_w)
    r = step(params, e, request, pv, load, dt, limits, curtail_export=export_price < 0)
    change = r.e_kwh - e
    out = interval_outcome(params, limits, change, dt, pv, load, import_price, export_price)
    scalar = interval_cost(params, limits, change, dt, pv, load, import_price, export_price)
    if not math.isfinite(float(out.cost)):  # the battery pushed export past the cap
        assert -r.grid_w > export_cap - 1e-6
        assert math.isinf(scalar)
        return
    assert float(out.battery_w) == pytest.approx(r.battery_w, abs=1e-6)
    assert float(out.grid_w) == pytest.approx(r.grid_w, abs=1e-6)
    assert float(out.pv_used_w) == pytest.approx(r.pv_used_w, abs=1e-6)
    expected = r.cost(import_price, export_price, params.wear_cost_per_kwh)
    assert float(out.cost) == pytest.approx(expected, abs=1e-9)
    assert scalar == pytest.approx(expected, abs=1e-9)


def test_power_beyond_the_limits_is_infeasible() -> None:
    params = BatteryParams(max_charge_w=2000, max_discharge_w=3000)
    too_much = [2000 * 1.0 * 0.95 / 1000 + 0.01, -3000 * 1.0 / 0.95 / 1000 - 0.01]
    out = interval_outcome(params, GridLimits(), np.array(too_much), 1.0, 0.0, 500.0, 0.3, 0.1)
    assert np.all(np.isinf(out.cost))
    edge = [2000 * 0.95 / 1000, -3000 / 0.95 / 1000]
    assert np.all(
        np.isfinite(interval_outcome(params, GridLimits(), np.array(edge), 1.0, 0.0, 500.0, 0.3, 0.1).cost)
    )


def test_battery_may_not_raise_import_above_the_fuse() -> None:
    params = BatteryParams(max_charge_w=5000)
    limits = GridLimits(max_import_w=4000)
    # House takes 1 kW: charging 3 kW reaches the fuse, 3.5 kW would pass it.
    ok, over = interval_outcome(params, limits, np.array([3.0, 3.5]) * 0.95, 1.0, 0.0, 1000.0, 0.3, 0.1).cost
    assert math.isfinite(ok)
    assert math.isinf(over)


def test_policy_limits() -> None:
    params = BatteryParams()
    # 1 kW PV surplus; storing 2 kW needs 1 kW from the grid.
    change = np.array([0.95, 1.9])
    out = interval_outcome(
        params, GridLimits(), change, 1.0, 2000.0, 1000.0, 0.3, 0.1, allow_grid_charge=False
    )
    assert math.isfinite(out.cost[0])
    assert math.isinf(out.cost[1])
    # 1 kW deficit; discharging 2 kW exports 1 kW from the battery.
    change = -np.array([1.0, 2.0]) / 0.95
    out = interval_outcome(
        params, GridLimits(), change, 1.0, 0.0, 1000.0, 0.3, 0.1, allow_battery_export=False
    )
    assert math.isfinite(out.cost[0])
    assert math.isinf(out.cost[1])


def test_negative_export_price_curtails_pv() -> None:
    out = interval_outcome(BatteryParams(), GridLimits(), np.array([0.0]), 1.0, 5000.0, 1000.0, 0.3, -0.05)
    assert float(out.grid_w[0]) == pytest.approx(0.0)
    assert float(out.pv_used_w[0]) == pytest.approx(1000.0)
    assert float(out.cost[0]) == pytest.approx(0.0)


@given(st.floats(0, 100, **finite), st.floats(0, 99, **finite))
def test_charge_limit_array_matches_scalar(soc: float, start: float) -> None:
    params = BatteryParams(taper_start_soc_pct=start, taper_end_fraction=0.3)
    assert float(charge_limit_w_array(params, np.array([soc]))[0]) == pytest.approx(
        params.charge_limit_w(soc)
    )
