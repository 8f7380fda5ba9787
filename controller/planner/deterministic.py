"""Least-cost battery plan by dynamic programming over the stored energy.

Actions are changes of stored energy per slot. The cost of a change comes in closed form from
the model (:func:`controller.physics.interval_outcome`: battery AC power, then grid power with PV
curtailment, then money), and is piecewise linear between a handful of breakpoints (exact
self-use, power limits, curtailment and grid-limit edges), all precomputed for every slot at
once. Two ways through the Bellman recursion, by the shape of the step costs:

- convex (no charge taper, export price <= import price: the usual case): the value function
  is convex and piecewise linear and is kept exactly as its segments; each backward step is
  a merge of segments by slope. No discretisation: the plan is the LP optimum.
- general: the value function on a uniform grid of stored energy (step ``soc_step_kwh``),
  candidates every grid offset within the power band plus the breakpoints (read by linear
  interpolation), vectorised over states and actions, one numpy pass per slot.

Either way the forward pass follows the exact stored energy from the real start. A pure
function: same inputs, same plan, no I/O.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from controller.physics import (
    Action,
    BatteryParams,
    GridLimits,
    charge_limit_w_array,
    interval_outcome,
)
from controller.planner.goals import NO_GOALS, Floors, SocGoals, annotate, floors, outcomes
from controller.planner.plan import (
    EndValue,
    Horizon,
    Plan,
    PlanConstraints,
    PlanSlot,
    PriceLike,
    SlotValues,
    classify,
    explain,
    horizon_from_slots,
    inputs_digest,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# An infeasible action's cost: finite, so that interpolation weights never meet inf * 0, and
# small enough that subtracting it back out (breakpoint rows) keeps 1e-9 precision.
SOFT = 1e7
# np.interp's compiled core, without the Python-level checks that cost more than the work here.
_interp: Callable[..., FloatArray] = getattr(
    importlib.import_module("numpy._core.multiarray"), "interp", np.interp
)
NO_LIMITS = GridLimits()
NO_CONSTRAINTS = PlanConstraints()
DEFAULT_END_VALUE = EndValue()
TIE_BREAK = 1e-6  # relative nudge of export prices, see _tie_broken
COMPACT_EVERY = 8  # steps between dropping the value function's empty segments
DEFAULT_CELLS_PER_CAPACITY = 200  # general path: grid step = capacity / 200 (0.05 kWh for 10 kWh)


@dataclass(frozen=True)
class Solution:
    """The optimal trajectory: stored energy at each slot boundary and each slot's flows."""

    e_kwh: FloatArray  # n + 1 values, e_kwh[0] the (clamped) start
    battery_w: FloatArray
    grid_w: FloatArray
    pv_used_w: FloatArray
    cost: FloatArray
    end_value_per_kwh: float
    soc_step_kwh: float  # the general path's grid step; 0 for the exact convex path

    @property
    def energy_cost(self) -> float:
        return float(self.cost.sum())

    @property
    def objective(self) -> float:
        return self.energy_cost - self.end_value_per_kwh * (float(self.e_kwh[-1]) - float(self.e_kwh[0]))


def default_soc_step_kwh(params: BatteryParams) -> float:
    return params.capacity_kwh / DEFAULT_CELLS_PER_CAPACITY


@dataclass(frozen=True)
class SocGrid:
    """Uniform grid of stored energy over the SoC window (shared with controller.planner.recourse)."""

    e: FloatArray  # stored energy of each grid state, e[0] = e_min, e[-1] = e_max
    delta: float

    @property
    def cells(self) -> int:
        return self.e.size - 1


def make_soc_grid(params: BatteryParams, step_kwh: float) -> SocGrid:
    if not step_kwh > 0:
        raise ValueError(f"soc_step_kwh must be > 0, got {step_kwh!r}")
    e_min, e_max = params.e_min_kwh, params.e_max_kwh
    cells = max(1, round((e_max - e_min) / step_kwh))
    delta = (e_max - e_min) / cells
    return SocGrid(e=e_min + delta * np.arange(cells + 1, dtype=np.float64), delta=delta)


def _breakpoints(params: BatteryParams, limits: GridLimits, h: Horizon, extra: FloatArray) -> FloatArray:
    """Changes of stored energy where a step's cost bends or stops being feasible, (n, 9), sorted
    (10 with a peak cap);
    ``extra`` is one more per step.

    Between two breakpoints the cost is linear in the change, so these and the grid points
    are the only candidates a piecewise-linear minimisation needs.
    """
    dt = h.dt_h
    net = (h.load_w - np.maximum(h.pv_w, 0.0)) * dt / 1000.0
    pv = np.maximum(h.pv_w, 0.0) * dt / 1000.0
    cap_export = limits.max_export_w * dt / 1000.0
    target_export = np.where(h.export_price < 0, 0.0, cap_export)
    cap_import = np.maximum(limits.max_import_w * dt / 1000.0, net)
    charge_max = params.max_charge_w * dt * params.charge_efficiency / 1000.0
    discharge_max = params.max_discharge_w * dt / params.discharge_efficiency / 1000.0
    bends = [np.zeros_like(net), -target_export, -target_export - pv, -cap_export - pv, cap_import]
    if math.isfinite(limits.peak_w):  # a capacity charge's cap (controller.planner.peak)
        bends.append(np.full_like(net, limits.peak_w) * dt / 1000.0)
    grid_bends = np.column_stack(bends)
    above = grid_bends >= net[:, None]
    change = np.where(
        above,
        (grid_bends - net[:, None]) * params.charge_efficiency,
        (grid_bends - net[:, None]) / params.discharge_efficiency,
    )
    change = np.nan_to_num(change, nan=0.0, posinf=np.inf, neginf=-np.inf)
    points = np.column_stack([change, np.zeros_like(net), -discharge_max, charge_max, extra])
    points = np.clip(points, -discharge_max[:, None], charge_max[:, None])
    points.sort(axis=1)
    # Strictly increasing for interpolation; the nudge is far below any meaningful energy.
    nudged: FloatArray = points + 1e-12 * np.arange(points.shape[1])
    return nudged


def _outcome_cost(
    params: BatteryParams,
    limits: GridLimits,
    h: Horizon,
    change: FloatArray,
    constraints: PlanConstraints,
    self_use: FloatArray,
) -> FloatArray:
    """Cost of each (step, change) pair with the self-use margin, ``SOFT`` where infeasible."""
    col = (slice(None), None)
    cost = interval_outcome(
        params,
        limits,
        change,
        h.dt_h[col],
        h.pv_w[col],
        h.load_w[col],
        h.import_price[col],
        h.export_price[col],
        constraints.allow_grid_charge,
        constraints.allow_battery_export,
    ).cost
    # The margin applies to the first slot's departure from self-use (SoC-aware there).
    cost[0] = cost[0] + constraints.self_use_margin_per_kwh * np.abs(change[0] - self_use[0])
    return np.where(np.isfinite(cost), cost, SOFT)


def is_convex(params: BatteryParams, h: Horizon) -> bool:
    """Whether every step's cost is convex in the change of stored energy (the fast path applies)."""
    return (
        params.taper_start_soc_pct is None
        and bool(np.all(h.export_price <= h.import_price))
        and bool(np.all(h.load_w >= 0))
    )


def _tie_broken(h: Horizon) -> Horizon:
    """The horizon with positive export prices lowered by a relative 1e-6 that fades over time.

    When storing PV surplus now or exporting it now and storing later's cost the same (the
    battery fills either way), the plan then stores now: what self-use would do, so following
    the house keeps to the plan. The plan's costs are computed with the real prices.
    """
    fade = 1.0 - TIE_BREAK * (1.0 - np.arange(h.dt_h.size) / h.dt_h.size)
    export = np.where(h.export_price > 0, h.export_price * fade, h.export_price)
    return Horizon(h.dt_h, h.pv_w, h.load_w, h.import_price, export)


def _self_use_changes(params: BatteryParams, h: Horizon, e0: float) -> FloatArray:
    """The change of stored energy self-use makes in each slot within the power limits; in
    the first slot also within the SoC window from ``e0``."""
    net = h.load_w - np.maximum(h.pv_w, 0.0)
    change = np.where(
        net >= 0,
        -np.minimum(net, params.max_discharge_w) * h.dt_h / params.discharge_efficiency / 1000.0,
        np.minimum(-net, params.max_charge_w) * h.dt_h * params.charge_efficiency / 1000.0,
    )
    change[0] = min(max(change[0], params.e_min_kwh - e0), params.e_max_kwh - e0)
    return change


def solve(
    params: BatteryParams,
    limits: GridLimits,
    e0_kwh: float,
    horizon: Horizon,
    end_value_per_kwh: float,
    constraints: PlanConstraints = NO_CONSTRAINTS,
    soc_step_kwh: float | None = None,
    floors: Floors | None = None,
) -> Solution:
    """The least-cost trajectory of stored energy over the horizon.

    ``soc_step_kwh`` is the grid step of the general path; the convex path needs none (the
    solution reports step 0 then). ``floors``: the goals' bounds at the boundaries
    (:mod:`controller.planner.goals`), a cost on the grid states below them, so the general path.
    """
    grid = make_soc_grid(params, default_soc_step_kwh(params) if soc_step_kwh is None else soc_step_kwh)
    h = _tie_broken(horizon)
    e0 = min(max(e0_kwh, params.e_min_kwh), params.e_max_kwh)
    self_use = _self_use_changes(params, h, e0)
    bends = _breakpoints(params, limits, h, self_use)
    bend_cost = _outcome_cost(params, limits, h, bends, constraints, self_use)
    step_used = 0.0
    if floors is None and is_convex(params, h):
        changes = _convex_plan(params, h, bends, bend_cost, end_value_per_kwh, e0)
    else:
        step_used = grid.delta
        shortfall = None if floors is None else floors.cost(grid.e)
        value = _backward_general(
            params, limits, h, grid, bends, bend_cost, end_value_per_kwh, constraints, self_use, shortfall
        )
        changes = _forward(params, h, grid, e0, value, bends, bend_cost)
    e_path = np.empty(changes.size + 1)
    e_path[0] = e0
    np.cumsum(changes, out=e_path[1:])
    e_path[1:] += e0
    np.clip(e_path, params.e_min_kwh, params.e_max_kwh, out=e_path)
    h = horizon
    out = interval_outcome(
        params,
        limits,
        np.diff(e_path),
        h.dt_h,
        h.pv_w,
        h.load_w,
        h.import_price,
        h.export_price,
        constraints.allow_grid_charge,
        constraints.allow_battery_export,
    )
    return Solution(
        e_kwh=e_path,
        battery_w=out.battery_w,
        grid_w=out.grid_w,
        pv_used_w=out.pv_used_w,
        cost=out.cost,
        end_value_per_kwh=end_value_per_kwh,
        soc_step_kwh=step_used,
    )


def _backward_general(
    params: BatteryParams,
    limits: GridLimits,
    h: Horizon,
    grid: SocGrid,
    bends: FloatArray,
    bend_cost: FloatArray,
    end_value_per_kwh: float,
    constraints: PlanConstraints,
    self_use: FloatArray,
    shortfall: FloatArray | None = None,
) -> FloatArray:
    """Value function V[t, s]: least cost from grid state s at the start of step t to the end
    (``shortfall``: a cost of being in state s at boundary t, added as the recursion passes it).

    Candidates from state s: every grid offset k within the widest power band (cost
    precomputed for all steps), and every breakpoint of the step's cost, whose target lies
    between two grid points and whose value is the linear interpolation of V[t + 1]. The
    interpolation is a fixed linear map of the rows already computed for the offsets
    (candidate row = V[t+1] shifted + cost), so it is one small matrix product per step.
    """
    n_steps, cells, delta = h.dt_h.size, grid.cells, grid.delta
    reach_up = params.max_charge_w * h.dt_h * params.charge_efficiency / 1000.0
    reach_down = params.max_discharge_w * h.dt_h / params.discharge_efficiency / 1000.0
    k_up = np.minimum(np.floor(reach_up / delta + 1e-9).astype(np.intp), cells)
    k_down = np.minimum(np.floor(reach_down / delta + 1e-9).astype(np.intp), cells)
    kc, kd = int(k_up.max()), int(k_down.max())
    rows = kd + kc + 3  # offsets -kd-1 .. kc+1; the outer two only feed the interpolation
    offsets = np.arange(rows) - kd - 1
    changes = (offsets * delta).astype(np.float64)[None, :]
    row_cost = _outcome_cost(params, limits, h, changes, constraints, self_use)
    row_cost[:, [0, -1]] = SOFT
    row_lo = kd - k_down  # first row of step t's band (its offset -k_down - 1)
    row_hi = kd + k_up + 3

    position = bends / delta
    lower = np.floor(position)
    weight = position - lower
    lo_row = (lower + kd + 1).astype(np.intp)
    lo_row = np.clip(lo_row, row_lo[:, None], row_hi[:, None] - 2)
    weight = np.clip(position - (lo_row - kd - 1), 0.0, 1.0)
    n_bends = bends.shape[1]
    mix = np.zeros((n_steps, n_bends, rows))
    t_idx, j_idx = np.indices(lo_row.shape)
    mix[t_idx, j_idx, lo_row] = 1.0 - weight
    mix[t_idx, j_idx, lo_row + 1] += weight
    bend_const = (bend_cost - np.einsum("tjr,tr->tj", mix, row_cost))[:, :, None]

    width = grid.e.size + rows - 1
    value = np.full((n_steps + 1, width), SOFT)
    states = slice(kd + 1, kd + 1 + grid.e.size)
    value[n_steps, states] = -end_value_per_kwh * grid.e
    if shortfall is not None:
        value[n_steps, states] += shortfall[n_steps]
    stride = value.strides
    shifted = as_strided(
        value, shape=(n_steps + 1, rows, grid.e.size), strides=(stride[0], stride[1], stride[1])
    )
    buffer = np.empty((rows + n_bends, grid.e.size))
    taper = (
        _taper_penalty(params, h, grid, offsets, bends) if params.taper_start_soc_pct is not None else None
    )
    row_cost3 = row_cost[:, :, None]
    for t in range(n_steps - 1, -1, -1):
        lo, hi = int(row_lo[t]), int(row_hi[t])
        q = buffer[lo:hi]
        np.add(shifted[t + 1, lo:hi], row_cost3[t, lo:hi], q)
        qb = buffer[hi : hi + n_bends]
        np.matmul(mix[t, :, lo:hi], q, qb)
        np.add(qb, bend_const[t], qb)
        if taper is not None:
            q += taper[0][t, lo:hi]
            qb += taper[1][t]
        np.minimum.reduce(buffer[lo : hi + n_bends], axis=0, out=value[t, states])
        if shortfall is not None:
            value[t, states] += shortfall[t]
    return value[:, states]


def _taper_penalty(
    params: BatteryParams, h: Horizon, grid: SocGrid, offsets: IntArray, bends: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """SOFT where the SoC-dependent charge limit forbids a change, for offsets and breakpoints."""
    limit_w = charge_limit_w_array(params, 100.0 * grid.e / params.capacity_kwh)
    reach = limit_w[None, :] * h.dt_h[:, None] * params.charge_efficiency / 1000.0  # (n, S)
    over_offsets = offsets[None, :, None] * grid.delta > reach[:, None, :] + 1e-9
    over_bends = bends[:, :, None] > reach[:, None, :] + 1e-9
    return np.where(over_offsets, SOFT, 0.0), np.where(over_bends, SOFT, 0.0)


def _forward(
    params: BatteryParams,
    h: Horizon,
    grid: SocGrid,
    e0: float,
    value: FloatArray | list[FloatArray],
    bends: FloatArray,
    bend_cost: FloatArray,
    n_steps: int | None = None,
) -> FloatArray:
    """Follow the exact stored energy from ``e0``: at each step the best target against V[t + 1].

    Candidates are the grid points within reach and the step's breakpoints, which are all the
    corners of cost + interpolated V, so the choice is exact for that piecewise-linear function.
    """
    n_steps = h.dt_h.size if n_steps is None else n_steps
    cells, delta = grid.cells, grid.delta
    e_min, e_max = float(grid.e[0]), float(grid.e[-1])
    bends, bend_cost = bends[:n_steps], bend_cost[:n_steps]
    feasible = bend_cost < SOFT
    low = np.where(feasible, bends, np.inf).min(axis=1).tolist()
    high = np.where(feasible, bends, -np.inf).max(axis=1).tolist()
    n_bends = bends.shape[1]
    changes_buf = np.empty((n_steps, n_bends + cells + 1))
    changes_buf[:, :n_bends] = bends
    tapered = params.taper_start_soc_pct is not None
    changes = np.empty(n_steps)
    e = e0
    for t in range(n_steps):
        up = high[t]
        if tapered:
            up = min(
                up, params.charge_limit_w(params.soc_pct(e)) * h.dt_h[t] * params.charge_efficiency / 1000.0
            )
        first = max(0, math.ceil((e + low[t] - e_min) / delta - 1e-9))
        last = min(cells, math.floor((e + up - e_min) / delta + 1e-9))
        m = n_bends + max(0, last - first + 1)
        cand = changes_buf[t, :m]
        np.subtract(grid.e[first : last + 1], e, cand[n_bends:])
        total = _interp(cand, bends[t], bend_cost[t], SOFT, SOFT)
        total += _interp(cand + e, grid.e, value[t + 1], SOFT, SOFT)
        if tapered:
            total[:n_bends] += np.where(cand[:n_bends] > up + 1e-9, SOFT, 0.0)
        change = float(cand[int(total.argmin())])
        changes[t] = change
        e = min(max(e + change, e_min), e_max)
    return changes


def _convex_plan(
    params: BatteryParams,
    h: Horizon,
    bends: FloatArray,
    bend_cost: FloatArray,
    end_value_per_kwh: float,
    e0: float,
) -> FloatArray:
    """Optimal changes when every step's cost is convex in the change (see :func:`is_convex`).

    Then every V[t] is convex and piecewise linear, and V[t] restricted to the SoC window is
    the infimal convolution of V[t + 1] with the step cost: their segments merged in order of
    slope. V is kept exactly as its segments (length, slope), no grid: a sort of the few
    hundred segments per step, and the result is exact. Only V's slopes matter, so V is kept
    up to a constant.
    """
    n_steps = h.dt_h.size
    e_min, e_max = params.e_min_kwh, params.e_max_kwh
    feasible = bend_cost < SOFT
    # Step-cost segments between consecutive bends, walked in decreasing change.
    length = np.diff(bends, axis=1)[:, ::-1]
    increment = -np.diff(bend_cost, axis=1)[:, ::-1]
    usable = (feasible[:, 1:] & feasible[:, :-1])[:, ::-1] & (length > 1e-9)
    length = np.where(usable, length, 0.0)
    slope = np.divide(increment, length, out=np.zeros_like(length), where=usable)
    top_index = np.where(feasible, bends, -np.inf).argmax(axis=1)
    top = bends[np.arange(n_steps), top_index]  # the largest feasible change
    step_rows = np.stack([slope, length, length], axis=1)  # (n, 3, segments): slope, length, step part

    # V[n] as segments over the window, rows: slope, length, step part (zero for V's own). The
    # first column (slope -inf, length 0) sorts first and anchors the cumulated sums at zero.
    value_rows = np.array([[-np.inf, -end_value_per_kwh], [0.0, e_max - e_min], [0.0, 0.0]])
    origin = e_min - top  # where each step's merged function starts
    merged: list[FloatArray] = [np.empty(0)] * n_steps
    for t in range(n_steps - 1, 0, -1):
        rows = np.concatenate((value_rows, step_rows[t]), axis=1)
        rows = rows.take(rows[0].argsort(kind="stable"), axis=1)
        cumulated = np.add.accumulate(rows[1:], axis=1)  # length, step part
        merged[t] = cumulated
        # V[t] is the merged function restricted to the SoC window (segments outside shrink to 0).
        ends = np.minimum(np.maximum(cumulated[0], e_min - origin[t]), e_max - origin[t])
        value_rows = rows  # reused in place: slopes stay, lengths clipped, step part cleared
        np.subtract(ends[1:], ends[:-1], out=value_rows[1, 1:])
        value_rows[2].fill(0.0)
        if t % COMPACT_EVERY == 0:
            value_rows = value_rows[:, (value_rows[1] > 1e-12) | (value_rows[0] == -np.inf)]

    changes = np.empty(n_steps)
    changes[0] = _first_change(e0, bends[0], bend_cost[0], e_min, value_rows[:, 1:])
    e = min(max(e0 + changes[0], e_min), e_max)
    for t in range(1, n_steps):
        # Walking the merged function up to the current state, the step-cost segments passed
        # add up to how far the best change lies below the largest feasible one.
        cumulated = merged[t]
        change = float(top[t]) - float(_interp(e - origin[t], cumulated[0], cumulated[1]))
        changes[t] = change
        e = min(max(e + change, e_min), e_max)
    return changes


def _first_change(
    e0: float, bends: FloatArray, cost: FloatArray, e_min: float, value_rows: FloatArray
) -> float:
    """The first step by enumeration: its cost may carry the non-convex decision margin.

    Candidates are the step's bends and V[1]'s corners within reach: all the corners of
    cost + V[1], both piecewise linear.
    """
    corners = e_min + np.concatenate([[0.0], np.add.accumulate(value_rows[1])])
    values = np.concatenate([[0.0], np.add.accumulate(value_rows[1] * value_rows[0])])
    feasible = cost < SOFT
    low, high = float(bends[feasible].min()), float(bends[feasible].max())
    reach = corners[(corners >= e0 + low - 1e-12) & (corners <= e0 + high + 1e-12)] - e0
    candidates = np.concatenate([bends[feasible], np.clip(reach, low, high)])
    # e0 + (corner - e0) may round just outside the window: within 1e-12 it is the corner
    e_next = e0 + candidates
    inside = (e_next >= corners[0] - 1e-12) & (e_next <= corners[-1] + 1e-12)
    np.clip(e_next, corners[0], corners[-1], out=e_next)
    total = _interp(candidates, bends, cost, SOFT, SOFT) + np.where(
        inside, _interp(e_next, corners, values, SOFT, SOFT), SOFT
    )
    return float(candidates[int(total.argmin())])


def plan(
    *,
    soc_pct: float,
    params: BatteryParams,
    prices: Sequence[PriceLike],
    pv_w: Sequence[float],
    load_w: Sequence[float],
    limits: GridLimits = NO_LIMITS,
    end_value: EndValue = DEFAULT_END_VALUE,
    constraints: PlanConstraints = NO_CONSTRAINTS,
    soc_step_kwh: float | None = None,
    created_at: datetime | None = None,
    display_tz: tzinfo = UTC,
    goals: SocGoals = NO_GOALS,
) -> Plan:
    """The least-cost plan over the priced slots, with the forecast PV and load per slot, and
    the battery ``goals`` (:mod:`controller.planner.goals`)."""
    if not math.isfinite(soc_pct):
        raise ValueError(f"soc_pct is not finite: {soc_pct!r}")
    started = time.perf_counter()
    h = horizon_from_slots(prices, pv_w, load_w)
    value = end_value.per_stored_kwh(params, h.import_price)
    bounds = goal_floors(params, prices, h, goals)
    sol = solve(params, limits, params.energy_kwh(soc_pct), h, value, constraints, soc_step_kwh, bounds)
    actions = classify(params, sol.e_kwh[:-1], h.dt_h, h.pv_w, h.load_w, sol.battery_w, sol.pv_used_w)
    digest = inputs_digest(
        soc_pct,
        params,
        limits,
        end_value,
        constraints,
        soc_step_kwh,
        [s.start for s in prices],
        [s.end for s in prices],
        arrays=(h.pv_w, h.load_w, h.import_price, h.export_price)
        + (() if bounds is None else (bounds.e_kwh,)),
    )
    return plan_from_solution(
        params, prices, h, sol, actions, digest, started, created_at, display_tz, goals=goals
    )


def goal_floors(
    params: BatteryParams, prices: Sequence[PriceLike], h: Horizon, goals: SocGoals
) -> Floors | None:
    """The goals' bounds on this horizon (None without goals that bear on it)."""
    if not goals:
        return None
    boundaries = [s.start for s in prices] + [prices[-1].end]
    return floors(goals, params, boundaries, [*h.import_price.tolist(), *h.export_price.tolist()])


def plan_from_solution(
    params: BatteryParams,
    prices: Sequence[PriceLike],
    h: Horizon,
    sol: Solution,
    actions: list[Action],
    digest: str,
    started: float,
    created_at: datetime | None,
    display_tz: tzinfo,
    values: SlotValues | None = None,
    goals: SocGoals = NO_GOALS,
) -> Plan:
    """The plan of a solved trajectory with each slot's action; ``started``: when solving began
    (``time.perf_counter``)."""
    solve_ms = (time.perf_counter() - started) * 1000.0
    value = sol.end_value_per_kwh
    soc = 100.0 * sol.e_kwh / params.capacity_kwh
    surplus = np.maximum(h.pv_w - h.load_w, 0.0)
    grid_charge = np.clip(np.minimum(-sol.battery_w - surplus, sol.grid_w), 0.0, None)
    starts = [s.start for s in prices]
    ends = [s.end for s in prices]
    lists = {name: getattr(h, name).tolist() for name in ("pv_w", "load_w", "import_price", "export_price")}
    battery, grid, used = sol.battery_w.tolist(), sol.grid_w.tolist(), sol.pv_used_w.tolist()
    lines = explain(
        actions,
        starts,
        ends,
        battery,
        grid,
        lists["pv_w"],
        used,
        lists["load_w"],
        lists["import_price"],
        lists["export_price"],
        soc[1:].tolist(),
        value / params.discharge_efficiency,
        display_tz,
    )
    soc_list = soc.tolist()
    lines = annotate(lines, goals, starts, battery, soc_list[1:], ends[-1], display_tz)
    reached = outcomes(goals, [*starts, ends[-1]], soc_list) if goals else ()
    slots = tuple(
        PlanSlot(
            start=starts[i],
            end=ends[i],
            action=actions[i],
            battery_w=battery[i],
            grid_charge_w=float(grid_charge[i]),
            target_soc_pct=float(soc[i + 1]),
            grid_w=grid[i],
            pv_w=lists["pv_w"][i],
            pv_used_w=used[i],
            load_w=lists["load_w"][i],
            import_price=lists["import_price"][i],
            export_price=lists["export_price"][i],
            cost=float(sol.cost[i]),
            explanation=lines[i],
        )
        for i in range(len(prices))
    )
    kwh = sol.grid_w * h.dt_h / 1000.0
    flow = sol.battery_w * h.dt_h / 1000.0
    return Plan(
        created_at=created_at if created_at is not None else prices[0].start,
        start_soc_pct=float(soc[0]),
        slots=slots,
        energy_cost=sol.energy_cost,
        end_value_per_kwh=value,
        objective=sol.objective,
        import_kwh=float(np.maximum(kwh, 0).sum()),
        export_kwh=float(np.maximum(-kwh, 0).sum()),
        charge_kwh=float(np.maximum(-flow, 0).sum()),
        discharge_kwh=float(np.maximum(flow, 0).sum()),
        soc_step_kwh=sol.soc_step_kwh,
        inputs_digest=digest,
        solve_ms=solve_ms,
        values=values,
        goals=reached,
        goal_notes=tuple(o.text(display_tz) for o in reached),
    )
