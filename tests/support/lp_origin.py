"""The LP optimum with the origin of stored energy tracked (scipy HiGHS): a bench dependency only.

An export rule may let the battery export only the PV energy it stored (``pv_only``). The
planners do not track origin: with grid charging allowed they read the rule as "no battery
export at all" (:meth:`controller.settlement.schemes.ExportRules.planner_flags`). This LP keeps
two pools of stored energy, PV and grid, so that the cost of that reading can be measured: the
optimum under ``pv_only`` against the optimum under ``never``.

Per step the variables are charge from the PV surplus, charge from the grid, discharge from each
pool (AC kWh), import, export, curtailed PV and each pool's energy after the step. Energy stored
before the first step counts as the grid's (the rule's strict reading). Battery export is grid
export beyond the step's PV surplus: under ``pv_only`` at most what the PV pool gives out in the
step, under ``never`` none.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from controller.physics import BatteryParams

FloatArray = npt.NDArray[np.float64]
BatteryExport = Literal["allowed", "pv_only", "never"]
N_VARS = (
    9  # charge PV, charge grid, discharge PV, discharge grid, import, export, curtailed, PV pool, grid pool
)


def origin_optimum(
    params: BatteryParams,
    e0_kwh: float,
    dt_h: float,
    pv_w: FloatArray,
    load_w: FloatArray,
    import_price: FloatArray,
    export_price: FloatArray,
    battery_export: BatteryExport,
    grid_charging: bool = True,
) -> float:
    """The least energy cost of the steps (stored energy left at the end worth nothing)."""
    n = pv_w.size
    pv = np.maximum(pv_w, 0.0) * dt_h / 1000.0
    load = load_w * dt_h / 1000.0
    surplus = np.maximum(pv - load, 0.0)
    idx = np.arange(n) * N_VARS
    cp, cg, dp, dg, imp, exp, cut, ep, eg = (idx + k for k in range(N_VARS))
    size = n * N_VARS
    wear = params.wear_cost_per_kwh
    objective = np.zeros(size)
    for var in (cp, cg, dp, dg):
        objective[var] = wear
    objective[imp] = import_price
    objective[exp] = -export_price

    rows, cols, vals = [], [], []

    def put(row: npt.NDArray[np.intp], col: npt.NDArray[np.intp], value: float) -> None:
        rows.append(row)
        cols.append(col)
        vals.append(np.full(row.size, value))

    t = np.arange(n)
    # balance: import - export - curtailed - charge + discharge = load - PV
    for var, sign in ((imp, 1.0), (exp, -1.0), (cut, -1.0), (cp, -1.0), (cg, -1.0), (dp, 1.0), (dg, 1.0)):
        put(t, var, sign)
    # each pool: after - before - eta_c charge + discharge / eta_d = 0 (before the first: e0 or 0)
    for k, (pool, charge, discharge) in enumerate(((ep, cp, dp), (eg, cg, dg))):
        r = (1 + k) * n + t
        put(r, pool, 1.0)
        put(r[1:], pool[:-1], -1.0)
        put(r, charge, -params.charge_efficiency)
        put(r, discharge, 1.0 / params.discharge_efficiency)
    a_eq = coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(3 * n, size)
    ).tocsr()
    b_eq = np.concatenate([load - pv, np.zeros(2 * n)])
    e0 = min(max(e0_kwh, params.e_min_kwh), params.e_max_kwh)
    b_eq[2 * n] = e0

    rows, cols, vals = [], [], []
    b_ub: list[FloatArray] = []
    for block, (a, b, bound) in enumerate(
        (
            (cp, cg, params.max_charge_w * dt_h / 1000.0),
            (dp, dg, params.max_discharge_w * dt_h / 1000.0),
        )
    ):
        put(block * n + t, a, 1.0)
        put(block * n + t, b, 1.0)
        b_ub.append(np.full(n, bound))
    put(2 * n + t, ep, -1.0)  # stored energy at least e_min
    put(2 * n + t, eg, -1.0)
    b_ub.append(np.full(n, -params.e_min_kwh))
    put(3 * n + t, ep, 1.0)  # and at most e_max
    put(3 * n + t, eg, 1.0)
    b_ub.append(np.full(n, params.e_max_kwh))
    blocks = 4
    if battery_export == "pv_only":  # export - PV discharge <= surplus
        put(4 * n + t, exp, 1.0)
        put(4 * n + t, dp, -1.0)
        b_ub.append(surplus)
        blocks = 5
    a_ub = coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(blocks * n, size)
    ).tocsr()

    lower = np.zeros(size)
    upper = np.full(size, np.inf)
    upper[cp] = surplus
    if not grid_charging:
        upper[cg] = 0.0
    upper[cut] = pv
    if battery_export == "never":
        upper[exp] = surplus
    res = linprog(
        objective,
        A_ub=a_ub,
        b_ub=np.concatenate(b_ub),
        A_eq=a_eq,
        b_eq=b_eq,
        bounds=np.column_stack([lower, upper]),
        method="highs",
    )
    if res.status != 0:
        raise RuntimeError(f"origin LP failed: {res.message}")
    return float(res.fun)
