"""The recourse planner's Bellman step as first written, for the tests that the vectorised
recursion (controller.planner.recourse_values) and the one-state decision
(controller.planner.recourse._best) give what it gives: every state scored on its own, every
mode at every power on the grid's step (``landing``: at the powers that land on grid points)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.physics import Action, BatteryParams, GridLimits, charge_limit_w_array, unexpected_surplus
from controller.planner import recourse
from controller.planner.deterministic import NO_CONSTRAINTS, SocGrid
from controller.planner.plan import PlanConstraints
from controller.planner.recourse_values import Slot, money

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Scores:
    """Expected cost-to-go of every mode and power from each state, for each case of the slot
    before: self-use (cases before, S), charge/hold (cases before, S, J), discharge (..., S, D)."""

    self_use: FloatArray
    charge: FloatArray
    discharge: FloatArray
    charge_kwh: FloatArray  # AC energy each charge/hold column plans (first is hold)
    discharge_kwh: FloatArray  # AC energy each discharge column delivers


def _energies(first: int, last: int, unit: float) -> FloatArray:
    return np.arange(first, last + 1, dtype=np.float64) * unit


def _money(
    params: BatteryParams,
    limits: GridLimits,
    slot: Slot,
    grid_kwh: FloatArray,
    battery_kwh: FloatArray,
    throughput_kwh: FloatArray,
) -> FloatArray:
    return money(
        params,
        limits,
        slot.dt_h,
        slot.load_kwh,
        slot.import_price,
        slot.export_price,
        grid_kwh,
        battery_kwh,
        throughput_kwh,
    )


def _scores(
    params: BatteryParams,
    limits: GridLimits,
    grid: SocGrid,
    e: FloatArray,
    value_next: FloatArray,
    slot: Slot,
    landing: bool = False,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> _Scores:
    """Expected cost plus next value of every action from the states ``e`` (one Bellman step),
    given the previous slot's case: ``value_next`` is (K, S), the value after the slot in each of
    its K cases; ``slot.weights`` (cases before, K) the chances of its cases.

    Columns: self-use, then charge/hold at each planned AC energy on the grid's step (0 first),
    then discharge at each AC energy on the step. ``landing`` (one state): the energies instead
    land the stored energy on the grid's points, and the power limits and the energies at which
    the grid flow meets the fuse or the export cap are scored too. The value is linear between
    points and a known slot's cost linear in the power but where the battery meets the house
    (self-use) or the grid meets its limits, so the best of these is the best power.
    ``rules``: no charge column beyond the forecast surplus without grid charging, no discharge
    beyond the forecast deficit without battery export.
    """
    ec, ed = params.charge_efficiency, params.discharge_efficiency
    w = slot.weights
    charge_max = charge_limit_w_array(params, 100.0 * e / params.capacity_kwh) * slot.dt_h / 1000.0
    discharge_max = params.max_discharge_w * slot.dt_h / 1000.0
    room_c = np.minimum(np.maximum(params.e_max_kwh - e, 0.0) / ec, charge_max)[:, None]  # (S, 1)
    room_d = np.minimum(np.maximum(e - params.e_min_kwh, 0.0) * ed, discharge_max)[:, None]
    r = slot.realised_kwh[None, :]  # (1, K)
    fuse = max(limits.max_import_w * slot.dt_h / 1000.0, slot.net_kwh)
    cap = limits.max_export_w * slot.dt_h / 1000.0

    out = np.minimum(np.maximum(r, 0.0), room_d)
    into = np.minimum(np.maximum(-r, 0.0), room_c)
    cost = _money(params, limits, slot, r - out + into, out - into, out + into)
    e_next = e[:, None] - out / ed + into * ec
    q_self = w @ (cost + recourse._value_at(value_next, grid, e_next)).T  # (cases before, S)

    top = params.max_charge_w * slot.dt_h / 1000.0
    if landing:
        planned, delivered = recourse._landing(grid, float(e[0]), top, discharge_max, ec, ed)
        # where the grid flow meets the fuse or the export cap: a kink of the cost or a bound
        at_fuse, at_cap = fuse - slot.net_kwh, slot.net_kwh + cap
        charges = [c for c in (at_fuse, -at_cap) if 0.0 < c < top and c not in planned]
        planned = np.concatenate([planned, charges])
        delivered = np.concatenate(
            [delivered, [d for d in (at_cap,) if 0.0 < d < discharge_max and d not in delivered]]
        )
    else:
        planned = _energies(0, math.floor(top * ec / grid.delta + 1e-9), grid.delta / ec)  # (J,)
        delivered = _energies(1, math.floor(discharge_max / ed / grid.delta + 1e-9), grid.delta * ed)
    surplus = unexpected_surplus(slot.net_kwh, slot.realised_kwh)  # (K,)
    into3 = np.minimum(planned[None, :, None] + surplus[None, None, :], room_c[:, :, None])
    cost3 = _money(params, limits, slot, r[:, None, :] + into3, -into3, into3)
    e_next3 = e[:, None, None] + into3 * ec
    total3 = cost3 + recourse._value_at(value_next, grid, e_next3)  # (S, J, K)
    q_charge = (w @ total3.reshape(-1, r.size).T).reshape(w.shape[0], *total3.shape[:2])
    q_charge[:, :, planned + slot.net_kwh > fuse + 1e-9] = np.inf
    if not rules.allow_grid_charge:
        q_charge[:, :, planned > max(-slot.net_kwh, 0.0) + 1e-9] = np.inf

    cost_d = _money(params, limits, slot, r.T - delivered[None, :], delivered[None, :], delivered[None, :])
    e_next_d = (e[:, None] - delivered[None, :] / ed)[:, :, None]
    if value_next.shape[0] > 1:
        e_next_d = np.broadcast_to(e_next_d, (*e_next_d.shape[:2], value_next.shape[0]))
        kept = recourse._value_at(value_next, grid, e_next_d)
        kept = (w @ kept.reshape(-1, kept.shape[2]).T).reshape(w.shape[0], *kept.shape[:2])
    else:
        kept = recourse._value_at(value_next, grid, e_next_d)[None, :, :, 0]  # the same in every case
    q_discharge = (w @ cost_d)[:, None, :] + kept  # (cases before, S, D)
    blocked = (delivered[None, :] > room_d + 1e-9) | (delivered[None, :] - slot.net_kwh > cap + 1e-9)
    if not rules.allow_battery_export:
        blocked |= delivered[None, :] > max(slot.net_kwh, 0.0) + 1e-9
    q_discharge[:, blocked] = np.inf

    return _Scores(q_self, q_charge, q_discharge, planned, delivered)


def reference_values(
    params: BatteryParams,
    limits: GridLimits,
    grid: SocGrid,
    slots: Sequence[Slot],
    end_value_per_kwh: float,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> list[FloatArray]:
    """V[t] on the grid for t = 1..n, as :func:`controller.planner.recourse_values.values`."""
    value = (-end_value_per_kwh * grid.e)[None, :]
    values = [value]
    for t in range(len(slots) - 1, 0, -1):
        scores = _scores(params, limits, grid, grid.e, value, slots[t], rules=rules)
        value = np.minimum(scores.self_use, scores.charge.min(axis=2))
        if scores.discharge.shape[2]:
            np.minimum(value, scores.discharge.min(axis=2), out=value)
        values.append(value)
    values.reverse()
    return values


def reference_best(
    params: BatteryParams,
    limits: GridLimits,
    grid: SocGrid,
    e_kwh: float,
    value_next: FloatArray,
    slot: Slot,
    before: int = 0,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> tuple[Action, float, float, float]:
    """As :func:`controller.planner.recourse._best`: (action, battery W, expected cost), and how
    much more the next best column costs (a decision closer than rounding may go either way)."""
    e = np.array([min(max(e_kwh, params.e_min_kwh), params.e_max_kwh)])
    scores = _scores(params, limits, grid, e, value_next, slot, landing=True, rules=rules)
    row = np.concatenate([scores.self_use[before, :1], scores.charge[before, 0], scores.discharge[before, 0]])
    k = int(row.argmin())
    if row[0] <= row[k] + recourse.TIE_TOLERANCE * max(1.0, abs(float(row[k]))):
        k = 0
    margin = float(np.partition(row, 1)[1] - row.min()) if row.size > 1 else math.inf
    to_w = 1000.0 / slot.dt_h
    n_charge = scores.charge_kwh.size
    if k == 0:
        return Action.SELF_USE, slot.net_kwh * to_w, float(row[k]), margin
    if k <= n_charge:
        energy = float(scores.charge_kwh[k - 1])
        return (Action.HOLD if energy == 0 else Action.CHARGE), -energy * to_w, float(row[k]), margin
    return Action.DISCHARGE, float(scores.discharge_kwh[k - 1 - n_charge]) * to_w, float(row[k]), margin
