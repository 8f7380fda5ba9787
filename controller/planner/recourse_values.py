"""The recourse planner's backward recursion, vectorised: the value of stored energy after
each slot on the grid, in each case of the slot (:mod:`controller.planner.recourse` for the
model and one state's decision; tests/support/recourse_reference.py scores every state on its
own, as this module's tests do to check it).

Every state's scores are those of the straightforward scoring; what changes is how they are
summed. The chances of the cases weigh each column's cost and the value it leads to, and both
are linear, so the work that depends on the value after the slot shrinks to a few shifted
reads of it, done once per slot rather than once per state and power:

- discharge lands on grid points: from state s, power m lands on s - m in every case, so its
  expected value is the weighted value read at s - m;
- charge or hold at power j stores j grid steps plus the case's unexpected surplus, up to the
  charge limit: from a state with the full limit to spare (a "free" state) it lands on
  s + j + sigma_k in case k, the value in case k shifted by sigma_k read at s + j, or at the
  limit, the same for every column that reaches it. The cases that reach it at power j are
  those with the largest surpluses, so a run of columns shares one set of them. Nearer the
  top than the limit, a case that fills the battery lands on the top, where the shifted read
  stops too; only the cost then depends on the state, and it does not depend on the value;
- self-use (and, under a charge taper, every column from a state the taper limits) is scored
  state by state: where each lands and what it costs are computed in advance, and the value is
  interpolated at all of them with one gather.

Costs, landing points and interpolation weights do not depend on the value, so they are
prepared for up to ``CHUNK`` slots at once. The result equals the straightforward recursion's
up to rounding (the sums are taken in another order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from controller.physics import BatteryParams, GridLimits, charge_limit_w_array, unexpected_surplus
from controller.planner.deterministic import SocGrid

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
CHUNK = 16  # slots prepared at once: few numpy calls per slot, memory within a few MiB


@dataclass(frozen=True)
class Slot:
    """One slot's inputs in kWh over the slot, for the Bellman step."""

    dt_h: float
    net_kwh: float  # forecast net load
    realised_kwh: FloatArray  # (K,) net load in each case
    load_kwh: float
    import_price: float
    export_price: float
    weights: FloatArray  # (cases of the slot before, K): the chance of each case given the one before


def money(
    params: BatteryParams,
    limits: GridLimits,
    dt_h: FloatArray | float,
    load_kwh: FloatArray | float,
    import_price: FloatArray | float,
    export_price: FloatArray | float,
    grid_kwh: FloatArray,
    battery_kwh: FloatArray,
    throughput_kwh: FloatArray,
) -> FloatArray:
    """What a slot costs for the grid flow before curtailment, with the battery's AC flow
    (+ discharge) and its charge plus discharge energy (for the wear cost); the slot's inputs
    may be arrays that broadcast against the flows."""
    g = grid_kwh
    if math.isfinite(limits.max_export_w):
        g = np.maximum(g, -limits.max_export_w * np.asarray(dt_h) / 1000.0)
    if isinstance(export_price, float):  # one slot's (the forward pass): no array to test
        if export_price < 0:
            g = np.maximum(g, np.minimum(0.0, load_kwh - battery_kwh))
    elif np.any(negative := np.asarray(export_price) < 0):
        g = np.where(negative, np.maximum(g, np.minimum(0.0, load_kwh - battery_kwh)), g)
    cost: FloatArray = export_price * g + (np.subtract(import_price, export_price)) * np.maximum(g, 0.0)
    if params.wear_cost_per_kwh:
        cost += params.wear_cost_per_kwh * throughput_kwh
    if limits.peak_price_per_kwh and math.isfinite(limits.peak_w):
        cost = cost + limits.over_peak_cost(g, dt_h)
    return cost


@dataclass(frozen=True)
class _Sizes:
    """Shapes shared by every slot: states, charge columns (hold first), discharge columns."""

    states: int
    charge: int
    discharge: int

    @property
    def shifted(self) -> int:  # positions s + j a charge column can read
        return self.states + self.charge - 1


@dataclass(slots=True)
class _Step:
    """One slot's tables for the Bellman step, none of which depends on the value after it."""

    weights: FloatArray  # (B, K) chances of the slot's cases given the case before
    at: IntArray  # (K, points): flat index into the value (K, S) of the point below each landing
    frac: FloatArray  # (K, points): how far past; points: self-use, tapered special columns, shifts
    scored_cost: FloatArray  # (K, S [+ S_sp * J]) cost of self-use [and of the tapered special columns]
    free: int  # states 0..free-1 have the full charge limit to spare
    columns: int  # usable charge columns (the fuse may stop the largest)
    charge_cost: FloatArray  # (J, B, 1) expected cost of each charge column from a free state
    runs: list[tuple[int, int, int]]  # (first column, end, run) of each run of charge columns
    uncapped_runs: int  # runs with no case at the limit come first
    uncapped_weights: FloatArray  # (runs [+ 1], B, K): the chances of the cases below the limit
    all_cases: int  # the entry of uncapped_weights that weighs every case (appended if need be)
    near_cost: FloatArray | None  # (J, B, S_sp) expected cost of each column near the top (no taper)
    capped_weights: FloatArray  # (runs with cases at the limit, B, K): the chances of those
    discharge_cost: FloatArray  # (D, B, 1) expected cost of each usable discharge, largest first


def _sizes(params: BatteryParams, grid: SocGrid, slots: Sequence[Slot]) -> _Sizes:
    dt = max(s.dt_h for s in slots)
    top = params.max_charge_w * dt / 1000.0
    discharge_max = params.max_discharge_w * dt / 1000.0
    charge = math.floor(top * params.charge_efficiency / grid.delta + 1e-9) + 1
    discharge = math.floor(discharge_max / params.discharge_efficiency / grid.delta + 1e-9)
    return _Sizes(grid.e.size, charge, discharge)


def _prepare(
    params: BatteryParams, limits: GridLimits, grid: SocGrid, sizes: _Sizes, slots: Sequence[Slot]
) -> list[_Step]:
    """The tables of a chunk of slots, computed for all of them at once (axis 0: slot)."""
    ec, ed = params.charge_efficiency, params.discharge_efficiency
    n_states, n_charge, n_discharge = sizes.states, sizes.charge, sizes.discharge
    e = grid.e
    col = (slice(None), None)
    dt = np.array([s.dt_h for s in slots])
    net = np.array([s.net_kwh for s in slots])
    r = np.stack([s.realised_kwh for s in slots])  # (T, K)
    prices = {
        "dt_h": dt[:, None, None],
        "load_kwh": np.array([s.load_kwh for s in slots])[:, None, None],
        "import_price": np.array([s.import_price for s in slots])[:, None, None],
        "export_price": np.array([s.export_price for s in slots])[:, None, None],
    }
    top = params.max_charge_w * dt / 1000.0
    discharge_max = params.max_discharge_w * dt / 1000.0
    charge_max = charge_limit_w_array(params, 100.0 * e / params.capacity_kwh)[None, :] * dt[col] / 1000.0
    room_c = np.minimum(np.maximum(params.e_max_kwh - e, 0.0)[None, :] / ec, charge_max)  # (T, S)
    room_d = np.minimum(np.maximum(e - params.e_min_kwh, 0.0)[None, :] * ed, discharge_max[col])
    free = int(np.argmin(np.append(np.all(room_c >= top[col], axis=0), False)))

    k, n_t = r.shape[1], len(slots)
    special = slice(free, n_states)
    n_special = n_states - free
    # Below the top a special state is one the room left limits; a case that fills it lands on
    # the top, where the shifted reads stop, so only its cost needs scoring one by one. Under a
    # charge taper the power limit may bind first: every column is scored one by one.
    near_top = params.taper_start_soc_pct is None
    scored_special = 0 if near_top else n_special * n_charge
    weights = np.stack([s.weights for s in slots])  # (T, B, K)
    # Where the value is read, in grid steps, and the cost scored there, (T, K, points):
    # self-use (S), the special states' columns (S_sp * J), the shifted reads, the charge limit.
    parts = np.cumsum([0, n_states, scored_special, sizes.shifted, n_states])
    positions = np.empty((n_t, k, parts[-1]))
    scored_cost = np.empty((n_t, k, parts[2]))
    part = [positions[:, :, parts[i] : parts[i + 1]] for i in range(4)]

    # Self-use, as the straightforward scoring has it.
    rr = r[:, :, None]
    battery = np.minimum(np.maximum(rr, -room_c[:, None, :]), room_d[:, None, :])  # the house's, clamped
    scored_cost[:, :, : parts[1]] = money(
        params, limits, **prices, grid_kwh=rr - battery, battery_kwh=battery, throughput_kwh=np.abs(battery)
    )
    drop = np.where(battery > 0, battery / ed, battery * ec)
    np.subtract((e - e[0])[None, None, :], drop, out=part[0])
    part[0] /= grid.delta

    # Charge and hold: planned AC energy per column (J,), the same for every slot; (T, K, J).
    planned = np.arange(n_charge) * (grid.delta / ec)
    surplus = unexpected_surplus(net[col], r)  # (T, K)
    wanted = planned[None, None, :] + surplus[:, :, None]
    fuse = np.maximum(limits.max_import_w * dt / 1000.0, net)
    charge_columns = np.floor(top * ec / grid.delta + 1e-9) + 1
    usable = (np.arange(n_charge)[None, :] < charge_columns[:, None]) & (
        planned[None, :] + net[:, None] <= fuse[:, None] + 1e-9
    )
    columns = usable.sum(axis=1)
    # From a free state a column's cost does not depend on the state; cases at the limit store it.
    capped = wanted >= top[:, None, None]
    into_free = np.where(capped, top[:, None, None], wanted)
    free_cost = money(
        params, limits, **prices, grid_kwh=rr + into_free, battery_kwh=-into_free, throughput_kwh=into_free
    )

    # Special states: a case that fills the room left stores the room, else what it wanted.
    room = room_c[:, None, special]  # (T, 1, S_sp)
    room_cost = money(params, limits, **prices, grid_kwh=rr + room, battery_kwh=-room, throughput_kwh=room)
    filled = wanted[:, :, None, :] >= room[:, :, :, None]  # (T, K, S_sp, J)
    cost_sp = np.where(filled, room_cost[:, :, :, None], free_cost[:, :, None, :]).reshape(n_t, k, -1)
    state = np.arange(n_states, dtype=np.float64)
    near_cost = None
    if near_top:  # (T, J, B, S_sp)
        near_cost = (
            (weights @ cost_sp).reshape(n_t, weights.shape[1], n_special, n_charge).transpose(0, 3, 1, 2)
        )
    else:
        scored_cost[:, :, parts[1] : parts[2]] = cost_sp
        pos_sp = part[1].reshape(n_t, k, n_special, n_charge)
        np.add(state[None, None, special, None], (wanted * (ec / grid.delta))[:, :, None, :], out=pos_sp)
        room_pos = ((e[special] - e[0])[None, None, :] + room * ec) / grid.delta
        np.copyto(pos_sp, np.broadcast_to(room_pos[:, :, :, None], pos_sp.shape), where=filled)

    # Free states: case k lands sigma_k steps past s + j, or at the limit.
    np.add(np.arange(sizes.shifted)[None, None, :], (surplus * ec / grid.delta)[:, :, None], out=part[2])
    np.add(state[None, None, :], (top * ec / grid.delta)[:, None, None], out=part[3])
    np.maximum(positions, 0.0, out=positions)
    np.minimum(positions, n_states - 1, out=positions)
    at = positions.astype(np.intp)
    np.minimum(at, n_states - 2, out=at)
    frac = positions - at
    at += (np.arange(k) * n_states)[None, :, None]

    # Discharge: (T, K, D) costs of columns 1..D; usable ones are a prefix.
    delivered = np.asarray(np.arange(1, n_discharge + 1) * (grid.delta * ed), dtype=np.float64)
    discharge_cost = money(
        params,
        limits,
        **prices,
        grid_kwh=rr - delivered[None, None, :],
        battery_kwh=delivered[None, None, :],
        throughput_kwh=delivered[None, None, :],
    )
    cap = limits.max_export_w * dt / 1000.0
    discharge_columns = np.floor(discharge_max / ed / grid.delta + 1e-9)
    dis_usable = (np.arange(1, n_discharge + 1)[None, :] <= discharge_columns[:, None]) & (
        delivered[None, :] - net[:, None] <= cap[:, None] + 1e-9
    )
    dis_columns = dis_usable.sum(axis=1)

    charge_cost = (weights @ free_cost).transpose(0, 2, 1)[:, :, :, None]  # (T, J, B, 1)
    weighted_discharge = (weights @ discharge_cost).transpose(0, 2, 1)[:, ::-1, :, None]  # (T, D, B, 1)
    uncapped_weights = weights[:, None, :, :] * ~capped.transpose(0, 2, 1)[:, :, None, :]  # (T, J, B, K)
    capped_weights = weights[:, None, :, :] - uncapped_weights
    counts = capped.sum(axis=1).tolist()

    steps = []
    for t in range(n_t):
        j_end, d_end = int(columns[t]), int(dis_columns[t])
        firsts = [j for j in range(j_end) if j == 0 or counts[t][j] != counts[t][j - 1]]
        bounds = [*firsts, j_end]  # a run: columns with the same cases at the limit
        uncapped_runs = sum(counts[t][j] == 0 for j in firsts)
        below = uncapped_weights[t, firsts]
        if near_top and not uncapped_runs:  # the near-top states read every case shifted
            below = np.concatenate([below, weights[t][None]])
        steps.append(
            _Step(
                weights=weights[t],
                at=at[t],
                frac=frac[t],
                scored_cost=scored_cost[t],
                free=free,
                columns=j_end,
                charge_cost=charge_cost[t],
                runs=[(bounds[i], bounds[i + 1], i) for i in range(len(firsts))],
                uncapped_runs=uncapped_runs,
                uncapped_weights=below,
                all_cases=0 if uncapped_runs else len(firsts),
                near_cost=None if near_cost is None else near_cost[t],
                capped_weights=capped_weights[t, firsts[uncapped_runs:]],
                discharge_cost=weighted_discharge[t, n_discharge - d_end :],
            )
        )
    return steps


def values(
    params: BatteryParams,
    limits: GridLimits,
    grid: SocGrid,
    slots: Sequence[Slot],
    end_value_per_kwh: float,
    shortfall: FloatArray | None = None,
) -> list[FloatArray]:
    """V[t] on the grid for t = 1..n (index t - 1): least expected cost to the end, in each case
    of slot t - 1 ((cases, S); one row when the next slot's chances do not depend on it).
    ``shortfall`` ((n + 1, S) or None): a cost of each state at each slot boundary (the goals'
    bounds, :mod:`controller.planner.goals`), added to V as the recursion passes the boundary."""
    value = (-end_value_per_kwh * grid.e)[None, :]
    if shortfall is not None:
        value = value + shortfall[len(slots)]
    out = [value]
    todo = list(range(len(slots) - 1, 0, -1))
    if not todo:
        return out
    sizes = _sizes(params, grid, slots)
    space = _Workspace(sizes, slots[0].realised_kwh.size, max(s.weights.shape[0] for s in slots[1:]))
    for chunk in _chunks(todo, slots):
        for t, step in zip(
            chunk, _prepare(params, limits, grid, sizes, [slots[t] for t in chunk]), strict=True
        ):
            value = space.bellman(step, value)
            if shortfall is not None:
                value = value + shortfall[t]
            out.append(value)
    out.reverse()
    return out


def _chunks(todo: list[int], slots: Sequence[Slot]) -> list[list[int]]:
    """The slots to step through, in runs of at most ``CHUNK`` of the same length: within one,
    every slot has the same power limits in kWh, so the same states are free."""
    chunks: list[list[int]] = []
    for t in todo:
        if not chunks or len(chunks[-1]) == CHUNK or slots[chunks[-1][0]].dt_h != slots[t].dt_h:
            chunks.append([])
        chunks[-1].append(t)
    return chunks


class _Workspace:
    """Buffers reused from slot to slot, with strided views that read them shifted."""

    def __init__(self, sizes: _Sizes, cases: int, rows: int) -> None:
        self.sizes, self.cases = sizes, cases
        n_states, n_charge, n_discharge = sizes.states, sizes.charge, sizes.discharge
        item = np.dtype(np.float64).itemsize
        # shifted[run, b, i]: the value after the slot, weighted over the run's cases below the
        # limit, read at s + j through windows[run, j, b, s]
        self.shifted = np.empty((cases + 2, rows, sizes.shifted))
        self.windows = as_strided(
            self.shifted,
            shape=(cases + 2, n_charge, rows, n_states),
            strides=(self.shifted.strides[0], item, self.shifted.strides[1], item),
            writeable=False,
        )
        # landed[b, D + i]: the weighted value at point i (inf below the grid), read at s - m
        # through dropped[D - m, b, s]
        self.landed = np.full((rows, n_discharge + n_states), np.inf)
        self.dropped = as_strided(
            self.landed,
            shape=(n_discharge, rows, n_states),
            strides=(item, self.landed.strides[0], item),
            writeable=False,
        )
        self.scratch = np.empty((n_charge + n_discharge + 1, rows, n_states))
        self.columns = np.arange(n_charge)

    def bellman(self, step: _Step, value: FloatArray) -> FloatArray:
        """One backward step: the least expected cost from each state in each case of the slot before."""
        w, sizes = step.weights, self.sizes
        b, n_states, free = w.shape[0], sizes.states, step.free
        cases = value if value.shape[0] == self.cases else np.repeat(value, self.cases, axis=0)
        flat = cases.ravel()
        slope = np.subtract(flat[1:], flat[:-1])
        read = np.take(flat, step.at)
        read += step.frac * np.take(slope, step.at)

        # Self-use and the special states' columns, scored one by one: (B, S + S_sp * J).
        n_scored = step.scored_cost.shape[1]
        scored = w @ (read[:, :n_scored] + step.scored_cost)
        # One row per candidate (charge columns, discharge columns, self-use), least taken at once.
        j, d = step.columns, step.discharge_cost.shape[0]
        rows = self.scratch[: j + d + 1, :b]
        rows[-1] = scored[:, :n_states]

        # Charge from free states: the weighted value of the cases below the limit read at s + j,
        # plus that of the cases at it (the same for every column of a run).
        runs = step.uncapped_weights.shape[0]
        reads = read[:, n_scored : n_scored + sizes.shifted]
        np.matmul(step.uncapped_weights, reads, out=self.shifted[:runs, :b])
        if runs > step.uncapped_runs:
            at_limit = (
                step.capped_weights @ read[:, n_scored + sizes.shifted : n_scored + sizes.shifted + free]
            )
        for first, end, run in step.runs:
            columns = rows[first:end, :, :free]
            np.add(self.windows[run, first:end, :b, :free], step.charge_cost[first:end], out=columns)
            if run >= step.uncapped_runs:
                columns += at_limit[run - step.uncapped_runs]
        if step.near_cost is not None:
            near = self.windows[step.all_cases, :j, :b, free:]
            np.add(near, step.near_cost[:j], out=rows[:j, :, free:])
        elif free < n_states:
            special = scored[:, n_states:].reshape(b, n_states - free, sizes.charge)
            rows[:j, :, free:] = special.transpose(2, 0, 1)[:j]

        # Discharge lands on grid points: the weighted value read m points down.
        if d:
            n_discharge = sizes.discharge
            if value.shape[0] == 1:
                self.landed[:b, n_discharge:] = value
            else:
                np.matmul(w, value, out=self.landed[:b, n_discharge:])
            np.add(self.dropped[n_discharge - d :, :b], step.discharge_cost, out=rows[j : j + d])
        least: FloatArray = np.minimum.reduce(rows, axis=0)
        return least
