"""Linear-programming reference of the battery problem (scipy HiGHS): a test and bench dependency only.

Per step the variables are AC charge, AC discharge, grid import, grid export, curtailed PV (kWh)
and the stored energy at the end of the step. The problem is the optimizer's on convex
instances (no taper, wear >= 0, import price >= export price, import price >= 0).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from controller.physics import BatteryParams, GridLimits
from controller.planner.periods import netting_period_s, periods_of
from controller.settlement.engine import Metered, local_fields, settle
from controller.settlement.prices import planning_prices
from controller.settlement.schemes import Scheme, days_in_month
from controller.sim.scenario import Scenario

FloatArray = npt.NDArray[np.float64]
N_VARS = 6  # charge, discharge, import, export, curtailed, stored energy after the step


@dataclass(frozen=True)
class LpResult:
    objective: float  # energy cost minus the value of the change of stored energy
    energy_cost: float
    e_kwh: FloatArray  # stored energy after each step
    grid_kwh: FloatArray
    solve_ms: float
    peak_kw: float = 0.0  # with a peak price: the peak the optimum holds (the highest of its groups')
    peaks_kw: FloatArray | None = None  # with peak groups: each group's peak


def solve_lp(
    params: BatteryParams,
    limits: GridLimits,
    e0_kwh: float,
    dt_h: npt.ArrayLike,
    pv_w: npt.ArrayLike,
    load_w: npt.ArrayLike,
    import_price: npt.ArrayLike,
    export_price: npt.ArrayLike,
    end_value_per_kwh: float = 0.0,
    peak_price_per_kw: float = 0.0,
    peak_min_kw: float = 0.0,
    peak_groups: npt.NDArray[np.intp] | None = None,
    peak_weights: FloatArray | None = None,
    allow_grid_charge: bool = True,
    allow_battery_export: bool = True,
    net_periods: npt.NDArray[np.intp] | None = None,
) -> LpResult:
    """Least cost of the horizon; ``end_value_per_kwh`` values the stored energy left at the end.

    With ``peak_price_per_kw`` one more variable, the peak import power (kW, at least
    ``peak_min_kw``, at least every step's mean import power), is charged at that price: a
    capacity charge on one month's peak. With ``peak_groups`` (each step's group, e.g. its month)
    and ``peak_weights`` instead, one peak per group, each charged at its weight. Without
    ``allow_grid_charge`` the battery charges at most the step's PV surplus, without
    ``allow_battery_export`` it discharges at most the step's deficit. With ``net_periods``
    (each step's settlement period, 0, 1, ...) import and export net out within a period: two
    more variables per period, its net import and net export, are priced at the period's mean
    prices over time, and the steps' own flows are not priced."""
    dt = np.asarray(dt_h, dtype=np.float64)
    n = dt.size
    pv = np.maximum(np.asarray(pv_w, dtype=np.float64), 0.0) * dt / 1000.0
    load = np.asarray(load_w, dtype=np.float64) * dt / 1000.0
    pi = np.asarray(import_price, dtype=np.float64) * np.ones(n)
    pe = np.asarray(export_price, dtype=np.float64) * np.ones(n)
    e0 = min(max(e0_kwh, params.e_min_kwh), params.e_max_kwh)

    idx = np.arange(n) * N_VARS
    c_var, d_var, imp_var, exp_var, u_var, e_var = (idx + k for k in range(N_VARS))
    wear = params.wear_cost_per_kwh
    objective = np.zeros(n * N_VARS)
    objective[c_var] = wear
    objective[d_var] = wear
    objective[imp_var] = pi
    objective[exp_var] = -pe
    objective[e_var[-1]] = -end_value_per_kwh

    rows = np.arange(n)
    balance = [(imp_var, 1.0), (exp_var, -1.0), (u_var, -1.0), (c_var, -1.0), (d_var, 1.0)]
    energy = [
        (e_var, 1.0),
        (c_var, -params.charge_efficiency),
        (d_var, 1.0 / params.discharge_efficiency),
    ]
    r_list = [rows for _ in balance] + [n + rows for _ in energy] + [n + rows[1:]]
    c_list = [v for v, _ in balance] + [v for v, _ in energy] + [e_var[:-1]]
    v_list = [np.full(n, w) for _, w in balance] + [np.full(n, w) for _, w in energy] + [np.full(n - 1, -1.0)]
    a_eq = coo_matrix(
        (np.concatenate(v_list), (np.concatenate(r_list), np.concatenate(c_list))),
        shape=(2 * n, n * N_VARS),
    ).tocsr()
    b_eq = np.concatenate([load - pv, np.zeros(n)])
    b_eq[n] = e0

    lower = np.zeros(n * N_VARS)
    upper = np.empty(n * N_VARS)
    upper[c_var] = params.max_charge_w * dt / 1000.0
    upper[d_var] = params.max_discharge_w * dt / 1000.0
    if not allow_grid_charge:
        upper[c_var] = np.minimum(upper[c_var], np.maximum(pv - load, 0.0))
    if not allow_battery_export:
        upper[d_var] = np.minimum(upper[d_var], np.maximum(load - pv, 0.0))
    upper[imp_var] = np.maximum(limits.max_import_w * dt / 1000.0, load - pv)
    upper[exp_var] = limits.max_export_w * dt / 1000.0
    upper[u_var] = pv
    lower[e_var] = params.e_min_kwh
    upper[e_var] = params.e_max_kwh
    bounds = np.column_stack([lower, np.where(np.isfinite(upper), upper, np.inf)])
    a_ub = b_ub = None
    if net_periods is not None:
        if peak_groups is not None or peak_price_per_kw:
            raise ValueError("solve_lp: netting and a peak charge together are not modelled")
        objective, a_eq, b_eq, bounds = _netted(objective, a_eq, b_eq, bounds, net_periods, dt, pi, pe)
    if peak_groups is None and peak_price_per_kw:
        peak_groups, peak_weights = np.zeros(n, dtype=np.intp), np.array([peak_price_per_kw])
    groups = 0
    if peak_groups is not None and peak_weights is not None:
        groups = peak_weights.size
        objective = np.append(objective, peak_weights)
        a_eq = coo_matrix(
            (a_eq.data, (a_eq.tocoo().row, a_eq.tocoo().col)), shape=(2 * n, n * N_VARS + groups)
        ).tocsr()
        bounds = np.vstack([bounds, np.tile([peak_min_kw, np.inf], (groups, 1))])
        # import / dt - its group's peak <= 0 for every step
        a_ub = coo_matrix(
            (
                np.concatenate([1.0 / dt, np.full(n, -1.0)]),
                (np.concatenate([rows, rows]), np.concatenate([imp_var, n * N_VARS + peak_groups])),
            ),
            shape=(n, n * N_VARS + groups),
        ).tocsr()
        b_ub = np.zeros(n)

    started = time.perf_counter()
    res = linprog(objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    solve_ms = (time.perf_counter() - started) * 1000.0
    if res.status != 0:
        raise RuntimeError(f"LP reference failed: {res.message}")
    x = res.x
    priced = objective.size - groups  # the energy: every variable but the peaks
    energy_cost = float(objective[:priced] @ x[:priced] + end_value_per_kwh * x[e_var[-1]])
    return LpResult(
        objective=float(res.fun) + end_value_per_kwh * e0,
        peak_kw=float(x[n * N_VARS :].max()) if groups else 0.0,
        peaks_kw=x[n * N_VARS :] if groups else None,
        energy_cost=energy_cost,
        e_kwh=x[e_var],
        grid_kwh=x[imp_var] - x[exp_var],
        solve_ms=solve_ms,
    )


def _netted(
    objective: FloatArray,
    a_eq: Any,
    b_eq: FloatArray,
    bounds: FloatArray,
    periods: npt.NDArray[np.intp],
    dt: FloatArray,
    pi: FloatArray,
    pe: FloatArray,
) -> tuple[FloatArray, Any, FloatArray, FloatArray]:
    """The LP with each period's net import and export (after the steps' variables) priced in
    place of the steps' flows: sum(import - export) over the period = net import - net export."""
    n = dt.size
    m = int(periods.max()) + 1
    size = n * N_VARS
    length = np.bincount(periods, weights=dt, minlength=m)
    mean_i = np.bincount(periods, weights=pi * dt, minlength=m) / length
    mean_e = np.bincount(periods, weights=pe * dt, minlength=m) / length
    steps = np.arange(n) * N_VARS
    priced = objective.copy()
    priced[steps + 2] = 0.0  # the steps' import and export
    priced[steps + 3] = 0.0
    priced = np.concatenate([priced, mean_i, -mean_e])
    rows_eq = a_eq.shape[0]
    old = a_eq.tocoo()
    period_rows = rows_eq + periods
    added = coo_matrix(
        (
            np.concatenate([old.data, np.ones(n), np.full(n, -1.0), np.full(m, -1.0), np.ones(m)]),
            (
                np.concatenate(
                    [old.row, period_rows, period_rows, rows_eq + np.arange(m), rows_eq + np.arange(m)]
                ),
                np.concatenate([old.col, steps + 2, steps + 3, size + np.arange(m), size + m + np.arange(m)]),
            ),
        ),
        shape=(rows_eq + m, size + 2 * m),
    ).tocsr()
    bounds = np.vstack([bounds, np.tile([0.0, np.inf], (2 * m, 1))])
    return priced, added, np.concatenate([b_eq, np.zeros(m)]), bounds


def scenario_optimum(params: BatteryParams, scenario: Scenario, initial_soc_pct: float = 50.0) -> LpResult:
    """The perfect-foresight optimum of a whole scenario (no grid limits, stored energy worth nothing at the end)."""
    return _scenario_lp(params, scenario, initial_soc_pct, scenario.import_price, scenario.export_price)


def _scenario_lp(
    params: BatteryParams,
    scenario: Scenario,
    initial_soc_pct: float,
    import_price: FloatArray,
    export_price: FloatArray,
    **peak: Any,
) -> LpResult:
    """The LP of a whole scenario at the given prices, ``peak`` passed to :func:`solve_lp`."""
    return solve_lp(
        params,
        GridLimits(),
        params.energy_kwh(initial_soc_pct),
        np.full(len(scenario), scenario.step_h),
        scenario.pv_w,
        scenario.load_w,
        import_price,
        export_price,
        **peak,
    )


def _settled_lp(
    params: BatteryParams,
    scenario: Scenario,
    scheme: Scheme,
    tz: ZoneInfo,
    initial_soc_pct: float,
    **peak: Any,
) -> LpResult:
    """The LP of a scenario at the per-slot prices a scheme plans with, its rules on grid
    charging and battery export and its netting within a period, ``peak`` passed to
    :func:`solve_lp` (its peak charge's arguments)."""
    grid_charge, battery_export = scheme.rules.planner_flags()
    netting = netting_period_s(scheme, scenario.step.total_seconds())
    if netting is not None:
        peak = {**peak, "net_periods": periods_of(scenario.epoch_s(), netting).runs.astype(np.intp)}
    ip, ep = planning_prices(
        scheme,
        scenario.epoch_s(),
        int(scenario.step.total_seconds()),
        scenario.import_price,
        scenario.export_price,
        tz,
    )
    return _scenario_lp(
        params,
        scenario,
        initial_soc_pct,
        ip,
        ep,
        allow_grid_charge=grid_charge,
        allow_battery_export=battery_export,
        **peak,
    )


def settled_optimum(
    params: BatteryParams,
    scenario: Scenario,
    scheme: Scheme,
    tz: ZoneInfo,
    peak_price_per_kw: float = 0.0,
    peak_min_kw: float = 0.0,
    initial_soc_pct: float = 50.0,
) -> tuple[float, LpResult]:
    """The perfect-foresight optimum of a scenario settled under a scheme an LP reproduces: its
    per-slot prices (controller.settlement.prices), its export rules, and a month's peak charge;
    (the bill, the LP). Under netting within a period the LP prices each period's net at the
    period's mean prices, and the bill is the settlement engine's of the LP's flows (the same
    where the prices do not vary within a period; the engine weights them by the slots' import)."""
    lp = _settled_lp(
        params,
        scenario,
        scheme,
        tz,
        initial_soc_pct,
        peak_price_per_kw=peak_price_per_kw,
        peak_min_kw=peak_min_kw,
    )
    if netting_period_s(scheme, scenario.step.total_seconds()) is not None:
        return _bill_of(params, scenario, scheme, tz, lp, initial_soc_pct), lp
    return lp.energy_cost + peak_price_per_kw * lp.peak_kw, lp


def _bill_of(
    params: BatteryParams,
    scenario: Scenario,
    scheme: Scheme,
    tz: ZoneInfo,
    lp: LpResult,
    initial_soc_pct: float,
) -> float:
    """The settlement engine's bill of the LP's flows, plus battery wear."""
    g = lp.grid_kwh
    metered = Metered(
        scenario.epoch_s(),
        int(scenario.step.total_seconds()),
        np.maximum(g, 0.0),
        np.maximum(-g, 0.0),
        scenario.import_price,
        scenario.export_price,
    )
    change = np.diff(np.concatenate([[params.energy_kwh(initial_soc_pct)], lp.e_kwh]))
    throughput = np.maximum(change, 0.0) / params.charge_efficiency + np.maximum(-change, 0.0) * (
        params.discharge_efficiency
    )
    return settle(metered, scheme, tz).total + params.wear_cost_per_kwh * float(throughput.sum())


def monthly_capacity(
    scenario: Scenario, scheme: Scheme, tz: ZoneInfo
) -> tuple[npt.NDArray[np.intp], FloatArray, float]:
    """A scheme's capacity charge over the scenario's local months as the bill counts it: each
    step's month, each month's peak's weight (currency per kW: in every bill whose averaging
    window holds it, its share of the mean, pro rata for the part of that month covered, VAT in)
    and the part the configured earlier peaks add. The month's minimum applies to each peak
    (``minimum_on = "month"``; the LP's lower bound)."""
    c = scheme.capacity
    if c is None:
        raise ValueError("monthly_capacity: the scheme has no capacity charge")
    if c.minimum_on != "month":
        raise ValueError(f"monthly_capacity: minimum_on {c.minimum_on!r} is not linear here")
    local = local_fields(scenario.epoch_s(), tz)
    keys, inverse = np.unique(local.month, return_inverse=True)
    steps = np.bincount(inverse, minlength=keys.size)
    step_s = scenario.step.total_seconds()
    covered = [
        min(
            1.0,
            float(k) * step_s / (days_in_month(f"{int(key) // 12:04d}-{int(key) % 12 + 1:02d}") * 86400.0),
        )
        for key, k in zip(keys.tolist(), steps.tolist(), strict=True)
    ]
    earlier = [max(p, c.minimum_kw) for p in c.previous_peaks_kw]
    price = c.price_per_kw_month * (1.0 + scheme.vat)
    weights = np.zeros(keys.size)
    constant = 0.0
    for m in range(keys.size):
        window = min(len(earlier) + m + 1, c.average_months)  # peaks the month's bill averages
        share = price * covered[m] / window
        weights[max(0, m - window + 1) : m + 1] += share
        from_earlier = window - min(m + 1, window)
        constant += share * sum(earlier[len(earlier) - from_earlier :]) if from_earlier else 0.0
    return inverse.astype(np.intp), weights, constant


def capacity_optimum(
    params: BatteryParams, scenario: Scenario, scheme: Scheme, tz: ZoneInfo, initial_soc_pct: float = 50.0
) -> tuple[float, LpResult]:
    """The perfect-foresight optimum of a scenario under a scheme with a monthly capacity charge,
    one peak per local month (:func:`monthly_capacity`); (the bill, the LP)."""
    c = scheme.capacity
    if c is None:
        raise ValueError("capacity_optimum: the scheme has no capacity charge")
    groups, weights, constant = monthly_capacity(scenario, scheme, tz)
    lp = _settled_lp(
        params,
        scenario,
        scheme,
        tz,
        initial_soc_pct,
        peak_min_kw=c.minimum_kw,
        peak_groups=groups,
        peak_weights=weights,
    )
    assert lp.peaks_kw is not None
    return lp.energy_cost + float(weights @ lp.peaks_kw) + constant, lp
