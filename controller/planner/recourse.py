"""Battery plan under forecast uncertainty: a stochastic dynamic program with recourse.

The executor picks a mode for a slot before the slot's PV and load are known, and the outcome
depends on what they turn out to be (the executor's rules, as :func:`controller.physics.followed_request_w`
applies them):

- ``self_use`` follows the real house: it stores the real surplus and covers the real deficit;
- ``discharge`` holds its power; the grid takes the house's departure from the forecast;
- ``charge`` (``hold`` at zero power) holds its power and also stores a PV surplus beyond the
  forecast.

Each slot's net load (load - PV) is the forecast plus one of K departures, its cases (the
quantiles of past forecast errors, :mod:`controller.forecast.errors`). Errors persist: a cloudy
hour is likely followed by another. So a slot's cases have chances that depend on the case of
the slot before (``transitions``, counted from consecutive hindcast errors; the first slot's
are equally likely), and the value of stored energy after a slot is kept for each of its cases.
The backward recursion runs over a uniform grid of stored energy; from each state and case of
the slot before, every mode at every power on the grid's step is scored by its expected cost
over the slot's cases plus the interpolated value of the stored energy each case leads to, in
that case (:mod:`controller.planner.recourse_values`, vectorised). A plan that does so values
flexibility: room kept for PV that may come, energy kept
for PV that may not, and more of either once the day has shown which way it goes.

The plan's slots follow the policy along the forecast itself (each slot in the case nearest no
departure); the first slot's mode is the decision. The executor, which sees the house during a
slot, values what the slot leaves stored over the slot's cases, each weighed by its chance after
the case the slot before was in and by how likely what the house does is in it; not knowing the
slot before's case, in the case nearest what the house does (:func:`decide_known`,
:func:`case_weights`). Grid limits: the export cap curtails PV, planned flows keep to the
export cap and the main fuse as forecast (a departure beyond them is the executor guard's to
clamp). The decision also scores the powers at which the grid flow meets a finite limit, so it
is the best power the model allows; the recursion's columns stay on the grid's step (a power at
a limit would land every state between points, a read of its own per slot), so the values near
a limit are within one step of it.

The export rules (:class:`controller.planner.plan.PlanConstraints`) bound the planned powers:
without grid charging a charge plans at most the slot's PV surplus, without battery export a
discharge at most its deficit (self-use meets either exactly). The recursion bounds them by the
forecast; the executor's decision, on the house as measured, by what the house does.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

import numpy as np
import numpy.typing as npt

from controller.physics import (
    Action,
    BatteryParams,
    GridLimits,
    interval_outcome,
    step,
)
from controller.planner.deterministic import (
    DEFAULT_END_VALUE,
    NO_CONSTRAINTS,
    NO_LIMITS,
    SocGrid,
    Solution,
    goal_floors,
    make_soc_grid,
    plan_from_solution,
)
from controller.planner.goals import NO_GOALS, Floors, SocGoals
from controller.planner.plan import (
    EndValue,
    Horizon,
    Plan,
    PlanConstraints,
    PriceLike,
    SlotValues,
    horizon_from_slots,
    inputs_digest,
)
from controller.planner.recourse_values import Slot, SlotTable, money, value_table

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
PV_CURTAILED_W = 1.0  # forecast PV left unused beyond this makes a self-use slot an export limit
CELLS_PER_CAPACITY = 100  # default grid step: capacity / 100 (0.1 kWh for 10 kWh)
TIE_TOLERANCE = 1e-9  # relative: expected costs closer than this are the same
# The likelihood of what the house does in each case of a slot: a Gaussian this share of the
# slot's departures' standard deviation wide (measured on the houses' backtests: 0.25 and 1.0
# did less well).
CASE_WIDTH = 0.5


@dataclass(frozen=True, slots=True)
class ModeChoice:
    """A slot's mode and the battery power it holds (+ discharge / - charge; for self-use the
    forecast's), and the expected cost from there to the horizon's end less the end value."""

    action: Action
    battery_w: float
    expected_cost: float


def default_step_kwh(params: BatteryParams) -> float:
    return params.capacity_kwh / CELLS_PER_CAPACITY


def _value_at(value: FloatArray, grid: SocGrid, e: FloatArray) -> FloatArray:
    """Linear interpolation on the grid (clamped to the SoC window) of the value in each case:
    ``value`` is (cases, grid points); with more than one case ``e``'s last axis runs over them."""
    cases, points = value.shape
    pos: FloatArray = e - grid.e[0]
    pos /= grid.delta
    np.maximum(pos, 0.0, out=pos)
    np.minimum(pos, points - 1, out=pos)
    below = np.floor(pos)
    np.minimum(below, points - 2, out=below)  # the grid has at least two points
    pos -= below
    low = below.astype(np.intp)
    if cases > 1:
        low += _row_starts(cases, points)  # into the flattened rows
    flat = value.ravel()
    there = flat.take(low)
    slope = np.subtract(flat[1:], flat[:-1]).take(low)  # low stops one short of its row's end
    pos *= slope
    pos += there
    return pos


@functools.cache
def _row_starts(cases: int, points: int) -> IntArray:
    return np.arange(cases) * points


def _landing(
    grid: SocGrid, e: float, top: float, discharge_max: float, ec: float, ed: float
) -> tuple[FloatArray, FloatArray]:
    """AC energies that charge (0 first) or discharge the stored energy ``e`` onto each of the
    grid's points within the power limits, and the limits themselves."""
    # Only the points within reach: each is at least one step beyond the one before.
    above = int(grid.e.searchsorted(e, "right"))  # the points at or below e
    below = above - 1 if above and grid.e[above - 1] == e else above  # those below it
    first = max(below - math.floor(discharge_max / ed / grid.delta) - 2, 0)
    offset = grid.e[first : above + math.floor(top * ec / grid.delta) + 2] - e
    up = offset[above - first :] / ec  # ascending: the ones below the limit come first
    reach = int(up.searchsorted(top, "left"))
    down = offset[: below - first] * -ed  # (e - point) * ed, descending
    down = down[down < discharge_max]
    planned = np.empty(reach + 2)
    planned[0] = 0.0
    planned[1:-1] = up[:reach]
    planned[-1] = top
    delivered = np.empty(down.size + 1)
    delivered[:-1] = down
    delivered[-1] = discharge_max
    return planned, delivered


def _at_limits(
    planned: FloatArray, delivered: FloatArray, net: float, fuse: float, cap: float
) -> tuple[FloatArray, FloatArray]:
    """``planned`` and ``delivered`` (from :func:`_landing`) with the energies at which the grid
    flow over the slot meets the main fuse (``fuse``: a charge of fuse - net) or the export cap
    (``cap``: a charge of -net - cap that stops PV being curtailed, or a discharge of net + cap
    that exports up to it), where they fall strictly inside the power limits; appended, so that
    the energies already there keep their order and win ties."""
    top, discharge_max = float(planned[-1]), float(delivered[-1])
    charges = [c for c in (fuse - net, -net - cap) if 0.0 < c < top and c not in planned]
    discharges = [d for d in (net + cap,) if 0.0 < d < discharge_max and d not in delivered]
    if charges:
        planned = np.append(planned, charges)
    if discharges:
        delivered = np.append(delivered, discharges)
    return planned, delivered


def _table(h: Horizon, errors_w: FloatArray, transitions: FloatArray | None) -> SlotTable:
    """The slots' inputs in kWh over each slot, stacked; the first slot's cases are equally
    likely, and so are every slot's without ``transitions``."""
    kwh = h.dt_h / 1000.0
    net = h.load_w - np.maximum(h.pv_w, 0.0)
    k = errors_w.shape[1]
    if transitions is None:
        weights = np.broadcast_to(np.full((1, k), 1.0 / k), (h.dt_h.size, 1, k))
    else:
        weights = np.concatenate([np.full((1, k, k), 1.0 / k), transitions[1:]])
    return SlotTable(
        h.dt_h,
        net * kwh,
        (net[:, None] + errors_w) * kwh[:, None],
        h.load_w * kwh,
        h.import_price,
        h.export_price,
        weights,
    )


def _slots(h: Horizon, errors_w: FloatArray, transitions: FloatArray | None) -> list[Slot]:
    return _rows(_table(h, errors_w, transitions))


def _rows(table: SlotTable) -> list[Slot]:
    """The slots one by one (the first slot's chances a single row: its cases are equally likely)."""
    columns = zip(
        table.dt_h.tolist(),
        table.net_kwh.tolist(),
        table.load_kwh.tolist(),
        table.import_price.tolist(),
        table.export_price.tolist(),
        strict=True,
    )
    first = table.weights[0, :1]
    return [
        Slot(
            dt_h,
            net_kwh,
            table.realised_kwh[t],
            load_kwh,
            import_price,
            export_price,
            table.weights[t] if t else first,
        )
        for t, (dt_h, net_kwh, load_kwh, import_price, export_price) in enumerate(columns)
    ]


def _checked_errors(h: Horizon, errors_w: FloatArray) -> FloatArray:
    errors = np.asarray(errors_w, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[0] != h.dt_h.size or errors.shape[1] == 0:
        raise ValueError(f"errors_w: expected ({h.dt_h.size}, K >= 1) values, got shape {errors.shape}")
    if not np.all(np.isfinite(errors)):
        raise ValueError("errors_w: contains values that are not finite")
    return errors


def _checked(
    h: Horizon, errors_w: FloatArray, transitions: FloatArray | None
) -> tuple[FloatArray, FloatArray | None]:
    """The departures and their transitions, validated against the horizon."""
    errors = _checked_errors(h, errors_w)
    if transitions is None:
        return errors, None
    n, k = errors.shape
    chances = np.asarray(transitions, dtype=np.float64)
    if chances.shape != (n, k, k):
        raise ValueError(f"transitions: expected ({n}, {k}, {k}) values, got shape {chances.shape}")
    if not np.all(np.isfinite(chances)) or np.any(chances < 0):
        raise ValueError("transitions: chances must be finite and >= 0")
    if not np.allclose(chances.sum(axis=2), 1.0, atol=1e-9):
        raise ValueError("transitions: each row of chances must sum to 1")
    return errors, chances


def _backward(
    params: BatteryParams,
    limits: GridLimits,
    horizon: Horizon,
    errors_w: FloatArray,
    transitions: FloatArray | None,
    end_value_per_kwh: float,
    soc_step_kwh: float | None,
    floors: Floors | None = None,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> tuple[SocGrid, SlotTable, FloatArray]:
    """The grid, the slots' inputs and the value after each slot (the backward recursion,
    (slots, cases, S)), from departures and transitions already checked (:func:`_checked`);
    ``floors``: the goals' bounds."""
    grid = make_soc_grid(params, default_step_kwh(params) if soc_step_kwh is None else soc_step_kwh)
    table = _table(horizon, errors_w, transitions)
    shortfall = None if floors is None else floors.cost(grid.e)
    return grid, table, value_table(params, limits, grid, table, end_value_per_kwh, shortfall, rules)


def _best(
    params: BatteryParams,
    limits: GridLimits,
    grid: SocGrid,
    e_kwh: float,
    value_next: FloatArray,
    slot: Slot,
    before: int = 0,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> tuple[Action, float, float]:
    """The best mode from the stored energy ``e_kwh`` in case ``before`` of the slot before:
    (action, battery W, expected cost).

    Candidates: self-use, then charge/hold at the AC energies that land the stored energy on the
    grid's points (0 first), at the power limit and where the grid flow meets a finite grid limit
    (:func:`_at_limits`), then discharge likewise. The value is linear between points and a
    known slot's cost linear in the power but where the battery meets the house (self-use) or
    the grid meets its limits, so the best of these is the best power. Each is scored
    by its expected cost over the slot's cases plus the interpolated value of the stored energy
    each case leads to, in that case. ``rules``: the export rules, on the slot's net load."""
    ec, ed = params.charge_efficiency, params.discharge_efficiency
    e = min(max(e_kwh, params.e_min_kwh), params.e_max_kwh)
    kwh = slot.dt_h / 1000.0
    top, discharge_max = params.max_charge_w * kwh, params.max_discharge_w * kwh
    charge_max = params.charge_limit_w(100.0 * e / params.capacity_kwh) * kwh
    room_c = min(max(params.e_max_kwh - e, 0.0) / ec, charge_max)
    room_d = min(max(e - params.e_min_kwh, 0.0) * ed, discharge_max)
    r = slot.realised_kwh
    planned, delivered = _landing(grid, e, top, discharge_max, ec, ed)
    fuse = max(limits.max_import_w * kwh, slot.net_kwh)
    cap = limits.max_export_w * kwh
    if math.isfinite(fuse) or math.isfinite(cap):
        planned, delivered = _at_limits(planned, delivered, slot.net_kwh, fuse, cap)
    n_charge = planned.size

    # Rows: self-use, each charge/hold, each discharge; columns: the slot's cases. Battery AC
    # energy (+ discharge): the house's, clamped; what the column stores (with the surplus the
    # forecast missed), negated; what it delivers.
    battery = np.empty((1 + n_charge + delivered.size, r.size))
    np.minimum(np.maximum(r, -room_c), room_d, out=battery[0])
    stored = battery[1 : 1 + n_charge]
    np.add(planned[:, None], np.maximum(slot.net_kwh - r, 0.0), out=stored)  # the unexpected surplus
    np.minimum(stored, room_c, out=stored)
    np.negative(stored, out=stored)
    battery[1 + n_charge :] = delivered[:, None]
    e_next = np.multiply(battery, ec)
    np.divide(battery, ed, out=e_next, where=battery > 0)
    np.subtract(e, e_next, out=e_next)
    cost = money(
        params,
        limits,
        slot.dt_h,
        slot.load_kwh,
        slot.import_price,
        slot.export_price,
        r - battery,
        battery,
        np.abs(battery) if params.wear_cost_per_kwh else battery,  # read only with a wear cost
    )
    cost += _value_at(value_next, grid, e_next)
    expected = cost @ slot.weights[before]
    if math.isfinite(fuse):
        expected[1 : 1 + n_charge][planned + slot.net_kwh > fuse + 1e-9] = np.inf
    beyond = delivered > room_d + 1e-9
    if math.isfinite(cap):
        beyond |= delivered - slot.net_kwh > cap + 1e-9
    expected[1 + n_charge :][beyond] = np.inf
    if not rules.allow_grid_charge:
        expected[1 : 1 + n_charge][planned > max(-slot.net_kwh, 0.0) + 1e-9] = np.inf
    if not rules.allow_battery_export:
        expected[1 + n_charge :][delivered > max(slot.net_kwh, 0.0) + 1e-9] = np.inf

    k = int(expected.argmin())
    least, own = float(expected[k]), float(expected[0])
    if own <= least + TIE_TOLERANCE * max(1.0, abs(least)):
        k = 0  # a tie goes to self-use: no gain, so no command that departs from the house
    to_w = 1000.0 / slot.dt_h
    if k == 0:
        return Action.SELF_USE, slot.net_kwh * to_w, own
    if k <= n_charge:
        energy = float(planned[k - 1])
        return (Action.HOLD if energy == 0 else Action.CHARGE), -energy * to_w, least
    return Action.DISCHARGE, float(delivered[k - 1 - n_charge]) * to_w, least


def decide(
    params: BatteryParams,
    limits: GridLimits,
    e0_kwh: float,
    horizon: Horizon,
    errors_w: FloatArray,
    end_value_per_kwh: float,
    soc_step_kwh: float | None = None,
    transitions: FloatArray | None = None,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> ModeChoice:
    """The first slot's mode and power, by expected cost over the net-load departures
    ``errors_w`` ((slots, K) W). The first slot's K cases are equally likely; each later one's
    chances follow the case of the slot before: ``transitions[t, i, j]`` is the chance of slot
    t's case j after case i of slot t - 1 (None: every case equally likely, independent).
    ``rules``: whether the battery may charge from the grid and export."""
    errors, chances = _checked(horizon, errors_w, transitions)
    grid, table, values = _backward(
        params, limits, horizon, errors, chances, end_value_per_kwh, soc_step_kwh, rules=rules
    )
    return ModeChoice(*_best(params, limits, grid, e0_kwh, values[0], _rows(table)[0], rules=rules))


def slot_values(
    params: BatteryParams,
    limits: GridLimits,
    horizon: Horizon,
    errors_w: FloatArray,
    end_value_per_kwh: float,
    soc_step_kwh: float | None = None,
    transitions: FloatArray | None = None,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> SlotValues:
    """The value of stored energy at the end of each slot in each of its cases (for
    :func:`decide_known`; the arguments as for :func:`decide`)."""
    errors, chances = _checked(horizon, errors_w, transitions)
    grid, _, values = _backward(
        params, limits, horizon, errors, chances, end_value_per_kwh, soc_step_kwh, rules=rules
    )
    return _slot_values(grid, values, horizon, errors, chances)


def _slot_values(
    grid: SocGrid, after: FloatArray, h: Horizon, errors_w: FloatArray, transitions: FloatArray | None
) -> SlotValues:
    return SlotValues(
        float(grid.e[0]),
        grid.delta,
        after,
        departures_w=errors_w,
        forecast_net_w=h.load_w - np.maximum(h.pv_w, 0.0),
        transitions=transitions,
    )


def _case(departures_w: FloatArray, departure_w: float) -> int:
    """The case whose departure is nearest ``departure_w``."""
    return int(np.abs(departures_w - departure_w).argmin())


def known_case(values: SlotValues, index: int, net_w: float) -> int:
    """The case of slot ``index`` nearest what the house does once its net load (load - PV)
    over the slot is known."""
    if values.after_slot.shape[1] == 1:
        return 0
    return _case(values.departures_w[index], net_w - float(values.forecast_net_w[index]))


def known_value(values: SlotValues, index: int, net_w: float, before: int | None = None) -> FloatArray:
    """The value after slot ``index`` on the grid once the house's net load over it is known:
    its cases weighed by :func:`case_weights`."""
    after: FloatArray = values.after_slot[index]  # (1 or K cases, S)
    weights = case_weights(values, index, net_w, before) if after.shape[0] > 1 else np.ones(1)
    if weights.max() == 1.0:
        row: FloatArray = after[int(weights.argmax())]
        return row
    known: FloatArray = weights @ after
    return known


def case_weights(values: SlotValues, index: int, net_w: float, before: int | None = None) -> FloatArray:
    """How likely each case of slot ``index`` is once the house's net load over it is known, as
    :func:`decide_known` weighs the values after it. Knowing the case of the slot before
    (``before``, :func:`known_case` of it) and the chances that follow it: those chances times
    the likelihood of the house's departure in each case, a Gaussian :data:`CASE_WIDTH` of the
    departures' standard deviation wide. Else (or with no spread of departures) all weight on
    the case nearest what the house does."""
    k = values.after_slot.shape[1]
    weights = np.zeros(k)
    departures = values.departures_w[index]
    spread = float(departures.std())
    if before is None or not 0 <= before < k or values.transitions is None or spread == 0.0:
        weights[known_case(values, index, net_w)] = 1.0
        return weights
    departure = net_w - float(values.forecast_net_w[index])
    log_likelihood = -0.5 * ((departures - departure) / (CASE_WIDTH * spread)) ** 2
    np.exp(log_likelihood - log_likelihood.max(), out=weights)
    weights *= values.transitions[index, before]
    weights /= weights.sum()
    return weights


def decide_known(
    params: BatteryParams,
    limits: GridLimits,
    values: SlotValues,
    index: int,
    e_kwh: float,
    net_w: float,
    load_w: float,
    dt_h: float,
    import_price: float,
    export_price: float,
    rules: PlanConstraints = NO_CONSTRAINTS,
    before: int | None = None,
) -> ModeChoice:
    """Slot ``index``'s best mode once the house's net load (load - PV) over it is known.

    The executor sees the house as the slot goes on: scored against what it does rather than
    against the forecast, each mode is charged its real cost, and the stored energy it leaves is
    valued as the planner valued it (``values``, its cases weighed by how likely each is given
    what the house does and the case of the slot before, ``before``; without that, the case
    nearest what the house does: :func:`case_weights`). A surplus the forecast missed is then
    stored or exported, and a deficit covered or bought, as that value says. ``rules``: the
    export rules, on the house as measured (no charge beyond its PV surplus without grid
    charging, no discharge beyond its deficit without battery export)."""
    if not 0 <= index < values.after_slot.shape[0]:
        raise ValueError(f"index: no slot {index} in values for {values.after_slot.shape[0]} slots")
    for name, number in (("net_w", net_w), ("load_w", load_w), ("e_kwh", e_kwh)):
        if not math.isfinite(number):
            raise ValueError(f"{name} is not finite: {number!r}")
    if not dt_h > 0:
        raise ValueError(f"dt_h must be > 0, got {dt_h!r}")
    value_next = known_value(values, index, net_w, before)[None, :]
    points = np.arange(value_next.shape[1], dtype=np.float64)
    grid = SocGrid(e=values.e_min_kwh + values.step_kwh * points, delta=values.step_kwh)
    kwh = dt_h / 1000.0
    slot = Slot(
        dt_h, net_w * kwh, np.array([net_w * kwh]), load_w * kwh, import_price, export_price, np.ones((1, 1))
    )
    return ModeChoice(*_best(params, limits, grid, e_kwh, value_next, slot, rules=rules))


def followable(
    decision: ModeChoice,
    net_w: float,
    export_price: float,
    step_w: float,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> ModeChoice:
    """``decision`` as an inverter can follow it. The planner's hold leaves the battery idle with
    a PV surplus, exported (curtailed below a zero export price), but the inverter's hold stores
    it. So a hold while there is a surplus becomes:

    - at an export price >= 0, a discharge at the smallest power step (``step_w``): the battery
      all but idle, the surplus exported; where the battery may not export (that step would go
      out with the surplus) the inverter's battery standby, idle with the surplus exported;
    - below zero, self-use: the surplus stored, curtailed only where the battery cannot take it.
      An idle battery with PV curtailed cannot be followed: curtailing hides the PV it
      curtails, and the decision, re-made on every reading, would see no surplus to curtail.

    A charge below the surplus (store part of it, export the rest) needs no such change: the
    inverter stores all of it, and the decision, re-made on every reading, turns to the idle
    export once the stored energy is worth less than the export price."""
    if decision.action == Action.HOLD and net_w < 0:
        if export_price < 0:
            return ModeChoice(Action.SELF_USE, net_w, decision.expected_cost)
        if not rules.allow_battery_export:
            return ModeChoice(Action.IDLE, 0.0, decision.expected_cost)
        return ModeChoice(Action.DISCHARGE, step_w, decision.expected_cost)
    return decision


def decide_followed(
    params: BatteryParams,
    limits: GridLimits,
    values: SlotValues,
    index: int,
    e_kwh: float,
    net_w: float,
    load_w: float,
    dt_h: float,
    import_price: float,
    export_price: float,
    step_w: float,
    rules: PlanConstraints = NO_CONSTRAINTS,
    before: int | None = None,
) -> tuple[ModeChoice, ModeChoice]:
    """The best mode on the house as measured (:func:`decide_known`, the arguments as there) and
    that mode as the inverter can follow it (:func:`followable`, ``step_w`` its smallest step)."""
    best = decide_known(
        params, limits, values, index, e_kwh, net_w, load_w, dt_h, import_price, export_price, rules, before
    )
    return best, followable(best, net_w, export_price, step_w, rules)


@dataclass(frozen=True)
class Policy:
    """The policy followed along the forecast (:func:`policy`)."""

    solution: Solution
    actions: list[Action]
    values: SlotValues
    expected_cost: float  # from the start to the horizon's end, less the end value (the decision's)


def solve_recourse(
    params: BatteryParams,
    limits: GridLimits,
    e0_kwh: float,
    horizon: Horizon,
    errors_w: FloatArray,
    end_value_per_kwh: float,
    soc_step_kwh: float | None = None,
    transitions: FloatArray | None = None,
    floors: Floors | None = None,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> tuple[Solution, list[Action], SlotValues]:
    """The policy followed along the forecast: each slot's flows and mode (first slot: the
    decision), and the value of stored energy per slot and case (the arguments as for
    :func:`decide`; ``floors``: the goals' bounds, :mod:`controller.planner.goals`)."""
    p = policy(
        params, limits, e0_kwh, horizon, errors_w, end_value_per_kwh, soc_step_kwh, transitions, floors, rules
    )
    return p.solution, p.actions, p.values


def policy(
    params: BatteryParams,
    limits: GridLimits,
    e0_kwh: float,
    horizon: Horizon,
    errors_w: FloatArray,
    end_value_per_kwh: float,
    soc_step_kwh: float | None = None,
    transitions: FloatArray | None = None,
    floors: Floors | None = None,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> Policy:
    """As :func:`solve_recourse`, with the first decision's expected cost."""
    h = horizon
    errors_w, transitions = _checked(h, errors_w, transitions)
    grid, table, values = _backward(
        params, limits, h, errors_w, transitions, end_value_per_kwh, soc_step_kwh, floors, rules
    )
    slots = _rows(table)
    e = min(max(e0_kwh, params.e_min_kwh), params.e_max_kwh)
    e_path = [e]
    actions = []
    # The case of the slot before: along the forecast, the one nearest no departure.
    nearest = np.abs(table.realised_kwh - table.net_kwh[:, None]).argmin(axis=1).tolist()
    before = 0
    expected = math.nan
    for t, (slot, pv_w, load_w) in enumerate(zip(slots, h.pv_w.tolist(), h.load_w.tolist(), strict=True)):
        action, battery_w, cost = _best(params, limits, grid, e, values[t], slot, before, rules)
        if t == 0:
            expected = cost
        if values[t].shape[0] > 1:
            before = nearest[t]
        e = step(params, e, battery_w, pv_w, load_w, slot.dt_h, limits).e_kwh
        e_path.append(e)
        actions.append(action)
    path = np.array(e_path)
    out = interval_outcome(
        params, limits, np.diff(path), h.dt_h, h.pv_w, h.load_w, h.import_price, h.export_price
    )
    for t, action in enumerate(actions):
        if action == Action.SELF_USE and out.pv_used_w[t] < max(float(h.pv_w[t]), 0.0) - PV_CURTAILED_W:
            actions[t] = Action.EXPORT_LIMIT
    solution = Solution(
        e_kwh=path,
        battery_w=out.battery_w,
        grid_w=out.grid_w,
        pv_used_w=out.pv_used_w,
        cost=out.cost,
        end_value_per_kwh=end_value_per_kwh,
        soc_step_kwh=grid.delta,
    )
    return Policy(solution, actions, _slot_values(grid, values, h, errors_w, transitions), expected)


def _unruled(rules: PlanConstraints) -> bool:
    return rules.allow_grid_charge and rules.allow_battery_export


def plan(
    *,
    soc_pct: float,
    params: BatteryParams,
    prices: Sequence[PriceLike],
    pv_w: Sequence[float],
    load_w: Sequence[float],
    errors_w: FloatArray,
    transitions: FloatArray | None = None,
    limits: GridLimits = NO_LIMITS,
    end_value: EndValue = DEFAULT_END_VALUE,
    soc_step_kwh: float | None = None,
    created_at: datetime | None = None,
    display_tz: tzinfo = UTC,
    goals: SocGoals = NO_GOALS,
    rules: PlanConstraints = NO_CONSTRAINTS,
    searched: Policy | None = None,
) -> Plan:
    """The plan over the priced slots under the net-load departures ``errors_w`` and their
    ``transitions`` (see :func:`decide`), with the battery ``goals`` and the export ``rules``
    (its ``allow_grid_charge`` and ``allow_battery_export``); ``searched``: the policy of
    exactly these inputs where it was worked out before (the capacity charge's search chose
    it), else None."""
    if not math.isfinite(soc_pct):
        raise ValueError(f"soc_pct is not finite: {soc_pct!r}")
    started = time.perf_counter()
    h = horizon_from_slots(prices, pv_w, load_w)
    errors, chances = _checked(h, errors_w, transitions)
    value = end_value.per_stored_kwh(params, h.import_price)
    bounds = goal_floors(params, prices, h, goals)
    made = (
        searched
        if searched is not None
        else policy(
            params,
            limits,
            params.energy_kwh(soc_pct),
            h,
            errors_w,
            value,
            soc_step_kwh,
            transitions,
            bounds,
            rules,
        )
    )
    sol, actions, values = made.solution, made.actions, made.values
    digest = inputs_digest(
        "recourse",
        soc_pct,
        params,
        limits,
        end_value,
        soc_step_kwh,
        *(() if _unruled(rules) else ((rules.allow_grid_charge, rules.allow_battery_export),)),
        [s.start for s in prices],
        [s.end for s in prices],
        arrays=(h.pv_w, h.load_w, h.import_price, h.export_price, errors)
        + (() if chances is None else (chances,))
        + (() if bounds is None else (bounds.e_kwh,)),
    )
    return plan_from_solution(
        params, prices, h, sol, actions, digest, started, created_at, display_tz, values, goals
    )
