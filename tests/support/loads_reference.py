"""The joint optimum of a scenario with flexible loads: a mixed-integer program (scipy ``milp``, HiGHS).

Perfect foresight over the whole period, the battery as in :mod:`support.lp_reference`, and:

- each thermal store: its element's energy per step (continuous, up to its power: a relaxation
  of the planner's on/off slots) and its temperature, within ``min_c`` and ``max_c``, by the
  same model as :mod:`controller.loads.thermal` with the heat really drawn;
- each appliance: one run in every window that lies within the period (a binary per start on
  the scenario's steps).

Windows open at the period's start or closing after its end are left out, as the backtest's
strategies leave them (:mod:`controller.sim.loads_backtest`). A test and bench dependency only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from controller.config.loads import ApplianceConfig
from controller.loads.appliance import run_power, windows
from controller.physics import BatteryParams
from controller.sim.loads_backtest import LoadSpec, _Site
from controller.sim.scenario import Scenario

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class JointOptimum:
    cost: float
    solve_ms: float
    load_kwh: dict[str, float]
    # per step: each load's electricity (kWh), each store's temperature at the step's end,
    # the battery's charge and discharge and the grid's import and export (kWh)
    steps: dict[str, FloatArray] = field(default_factory=dict, compare=False, repr=False)


class _Columns:
    """Variables by name, each a block of columns."""

    def __init__(self) -> None:
        self.size = 0
        self.lower: list[FloatArray] = []
        self.upper: list[FloatArray] = []
        self.integer: list[FloatArray] = []

    def add(
        self, count: int, lower: FloatArray | float, upper: FloatArray | float, integer: bool = False
    ) -> npt.NDArray[np.intp]:
        cols = np.arange(self.size, self.size + count)
        self.size += count
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (count,)).copy())
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (count,)).copy())
        self.integer.append(np.full(count, 1.0 if integer else 0.0))
        return cols


class _Rows:
    def __init__(self) -> None:
        self.count = 0
        self.r: list[npt.NDArray[np.intp]] = []
        self.c: list[npt.NDArray[np.intp]] = []
        self.v: list[FloatArray] = []
        self.lo: list[FloatArray] = []
        self.hi: list[FloatArray] = []

    def new(self, count: int, lo: FloatArray | float, hi: FloatArray | float) -> npt.NDArray[np.intp]:
        rows = np.arange(self.count, self.count + count)
        self.count += count
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=np.float64), (count,)).copy())
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=np.float64), (count,)).copy())
        return rows

    def put(self, rows: npt.ArrayLike, cols: npt.ArrayLike, values: npt.ArrayLike) -> None:
        r, c = np.broadcast_arrays(np.asarray(rows), np.asarray(cols))
        self.r.append(r.ravel())
        self.c.append(c.ravel())
        self.v.append(np.broadcast_to(np.asarray(values, dtype=np.float64), r.shape).ravel())


def joint_optimum(
    scenario: Scenario,
    spec: LoadSpec,
    params: BatteryParams,
    initial_soc_pct: float,
    tz: object,
    min_run_min: float = 0.0,
) -> JointOptimum:
    """The least cost of the scenario with its loads (stored energy and heat worth nothing at the
    end); ``min_run_min`` > 0: a store's element runs in each step not at all or at least that
    many minutes (a binary per step), as hemsd's plans do."""
    site = _Site(scenario, spec, tz)  # type: ignore[arg-type]  # a ZoneInfo
    n, dt = len(scenario), scenario.step_h
    kwh = dt / 1000.0
    cols, rows = _Columns(), _Rows()
    ec, ed = params.charge_efficiency, params.discharge_efficiency
    c = cols.add(n, 0.0, params.max_charge_w * kwh)
    d = cols.add(n, 0.0, params.max_discharge_w * kwh)
    imp = cols.add(n, 0.0, np.inf)
    exp = cols.add(n, 0.0, np.inf)
    u = cols.add(n, 0.0, np.maximum(scenario.pv_w, 0.0) * kwh)
    e = cols.add(n, params.e_min_kwh, params.e_max_kwh)
    objective_parts: list[tuple[npt.NDArray[np.intp], FloatArray]] = [
        (imp, scenario.import_price),
        (exp, -scenario.export_price),
        (c, np.full(n, params.wear_cost_per_kwh)),
        (d, np.full(n, params.wear_cost_per_kwh)),
    ]
    balance = rows.new(
        n,
        (scenario.load_w - np.maximum(scenario.pv_w, 0.0)) * kwh,
        (scenario.load_w - np.maximum(scenario.pv_w, 0.0)) * kwh,
    )
    for col, sign in ((imp, 1.0), (exp, -1.0), (u, -1.0), (c, -1.0), (d, 1.0)):
        rows.put(balance, col, sign)
    energy_rhs = np.zeros(n)
    energy_rhs[0] = params.energy_kwh(initial_soc_pct)
    energy = rows.new(n, energy_rhs, energy_rhs)
    rows.put(energy, e, 1.0)
    rows.put(energy, c, -ec)
    rows.put(energy, d, 1.0 / ed)
    rows.put(energy[1:], e[:-1], -1.0)
    load_cols: dict[str, list[tuple[npt.NDArray[np.intp], FloatArray]]] = {}
    temp_cols: dict[str, npt.NDArray[np.intp]] = {}
    for name, store in site.stores.items():
        h = cols.add(n, 0.0, store.heat_max_kwh() / store.cop)
        if min_run_min > 0:
            on = cols.add(n, 0.0, 1.0, integer=True)
            full = store.heat_max_kwh() / store.cop
            least = np.minimum(min_run_min / 60.0 / store.dt_h, 1.0) * full
            upper = rows.new(n, -np.inf, 0.0)  # h <= on * full
            rows.put(upper, h, 1.0)
            rows.put(upper, on, -full)
            lower = rows.new(n, 0.0, np.inf)  # h >= on * least
            rows.put(lower, h, 1.0)
            rows.put(lower, on, -least)
        temp = temp_cols[name] = cols.add(n, store.min_c, store.max_c)
        cap, ua = store.capacity_kwh_per_k, store.loss_w_per_k * store.dt_h / 1000.0
        rhs = -site.true_drawn[name] + ua * store.ref_c
        rhs = rhs.copy()
        rhs[0] += (cap - ua[0]) * site.temp[name]
        heat = rows.new(n, rhs, rhs)
        rows.put(heat, temp, cap)
        rows.put(heat[1:], temp[:-1], -(cap - ua[1:]))
        rows.put(heat, h, -store.cop)
        rows.put(balance, h, -1.0)
        load_cols[name] = [(h, np.ones(n))]
    for name, config in site.configs.items():
        if not isinstance(config, ApplianceConfig):
            continue
        load_cols[name] = []
        duration = timedelta(minutes=config.duration_w_min())
        for w in windows(config, scenario.start, scenario.time(n), site.tz):
            if w.start < scenario.start or w.end > scenario.time(n):
                continue
            starts = [
                k for k in range(n) if w.start <= scenario.time(k) and scenario.time(k) + duration <= w.end
            ]
            z = cols.add(len(starts), 0.0, 1.0, integer=True)
            one = rows.new(1, 1.0, 1.0)
            rows.put(one, z, 1.0)
            for col, k in zip(z.tolist(), starts, strict=True):
                power = run_power(config.profile(), scenario.time(k), site.starts, site.ends)
                on = np.flatnonzero(power)
                rows.put(balance[on], col, -power[on] * kwh)
                load_cols[name].append((np.array([col]), power * kwh))
    objective = np.zeros(cols.size)
    for col, value in objective_parts:
        objective[col] = value
    a = coo_matrix(
        (np.concatenate(rows.v), (np.concatenate(rows.r), np.concatenate(rows.c))),
        shape=(rows.count, cols.size),
    ).tocsr()
    started = time.perf_counter()
    res = milp(
        objective,
        constraints=LinearConstraint(a, np.concatenate(rows.lo), np.concatenate(rows.hi)),
        bounds=Bounds(np.concatenate(cols.lower), np.concatenate(cols.upper)),
        integrality=np.concatenate(cols.integer),
        options={"mip_rel_gap": 1e-6},
    )
    solve_ms = (time.perf_counter() - started) * 1000.0
    if res.status != 0 or res.x is None:
        raise RuntimeError(f"joint MILP failed: {res.message}")
    x = res.x
    energies = {}
    steps = {"charge": x[c], "discharge": x[d], "import": x[imp], "export": x[exp]}
    for name, parts in load_cols.items():
        per_step = np.zeros(n)
        for col, per in parts:
            if col.size == 1:  # an appliance's start: its run's energy per step
                per_step += float(x[col].sum()) * per
            else:  # a store's energy per step
                per_step += x[col] * per
        energies[name] = float(per_step.sum())
        steps[name] = per_step
    for name, col in temp_cols.items():
        steps[f"{name}_c"] = x[col]
    return JointOptimum(float(res.fun), solve_ms, energies, steps)


def on_off_overshoot(scenario: Scenario, spec: LoadSpec, optimum: JointOptimum, tz: object) -> float:
    """What the optimum's own heat costs more run by on/off devices: each store's share of a
    step at full power in its pieces (:meth:`controller.loads.thermal.ThermalStore.overshoot_kwh`,
    as hemsd's control loop runs it), which warms it first and loses more than the even heat
    the optimum holds it with, made up in the same step at its price (import where the optimum
    imports, else export). The optimum of on/off devices costs no less than the optimum and, to
    this first order, no more than the two together (a mixed-integer program of the stores'
    minutes did not solve in minutes for a day)."""
    site = _Site(scenario, spec, tz)  # type: ignore[arg-type]  # a ZoneInfo
    steps = optimum.steps
    price = np.where(steps["import"] > 1e-9, scenario.import_price, scenario.export_price)
    total = 0.0
    for name, store in site.stores.items():
        heat = steps[name] * store.cop
        extra = store.overshoot_kwh(np.arange(heat.size), heat) / store.cop
        total += float(extra @ price)
    return total
