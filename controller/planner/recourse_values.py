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
  limit, the same for every column that reaches it. One product per slot weighs the shifted
  reads over the cases each column leaves below the limit and adds the column's expected cost
  (against a row of ones); a strided view reads column j at s + j. The cases at the limit are
  those with the largest surpluses, so from the first column that has one on, a second product
  weighs the reads at the limit. Nearer the top than the limit, a case that fills the battery
  lands on the top, where both reads stop too: only the cost then depends on the state, and
  what it adds is added there. Long slots span many charge columns (an hour at the 0.5 % step:
  96) but few sets of cases at the limit: from ``GROUPED_FROM`` columns on the reads are
  weighed once per run of columns that take the same cases there, each column reading its
  run's row shifted;
- self-use (and, under a charge taper, every column from a state the taper limits) is scored
  state by state: where each lands and what it costs are computed in advance, and the value is
  interpolated at all of them with one gather.

Every candidate's expected cost is written into one block (self-use, the discharge columns,
the charge columns copied out of the shifted product's diagonal) and the least taken in one
pass over it: a pass over contiguous memory is quicker than one per group over strided views.

Costs, landing points and interpolation weights do not depend on the value, so they are
prepared for up to ``CHUNK`` slots at once, every cost in one call (fewer where a slot's tables
are large: long slots have many columns and many states near the top); what only the slot's
length sets (the room from each state, where the limit lands) once per length. The result equals the
straightforward recursion's up to rounding (the sums are taken in another order).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from controller.physics import BatteryParams, GridLimits, charge_limit_w_array, unexpected_surplus
from controller.planner.deterministic import NO_CONSTRAINTS, SocGrid
from controller.planner.plan import PlanConstraints

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
CHUNK = 16  # slots prepared at once: few numpy calls per slot, memory within a few MiB
CHUNK_CELLS = CHUNK * 7 * 48 * 48  # and at most this many cells (cases x columns x states near the top)
# From this many charge columns on (a slot's band: how many grid steps its charge limit spans)
# the columns are weighted run by run; below it, in one product for all of them (measured).
GROUPED_FROM = 64


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
    elif (negative := np.asarray(export_price) < 0).any():
        g = np.where(negative, np.maximum(g, np.minimum(0.0, load_kwh - battery_kwh)), g)
    cost: FloatArray = export_price * g + (import_price - export_price) * np.maximum(g, 0.0)
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
    columns: int  # usable charge columns (the fuse may stop the largest)
    charge: _Columns | _Runs  # how the charge columns' reads are weighted
    near_cost: FloatArray | None  # (J, B, S_sp) near the top, what each column costs beyond its
    # expected cost from a free state (no taper; under one those columns are scored one by one)
    discharge_cost: FloatArray  # (D, B, 1) expected cost of each usable discharge, largest first


@dataclass(slots=True)
class _Columns:
    """A narrow band of charge columns (short slots): one product weighs every column's reads."""

    # (J * B, K + 1) the chances of the cases each charge column leaves below the limit, and
    # the column's expected cost from a free state
    uncapped: FloatArray
    first_capped: int  # the first charge column that takes a case to the limit (J: none)
    capped: FloatArray  # (J * B, K) the chances of the cases each column takes to the limit


@dataclass(slots=True)
class _Runs:
    """A wide band of charge columns (long slots) in runs that take the same cases to the limit:
    the cases' reads are weighted once per run rather than once per column."""

    bounds: list[tuple[int, int]]  # first and end column of each run
    uncapped: FloatArray  # (R * B, K) the chances of the cases each run leaves below the limit
    capped: FloatArray  # ((R - free) * B, K) the chances of those it takes to the limit
    free: int  # the runs that take none to the limit (0 or 1, the first)
    cost: FloatArray  # (J, B, 1) each column's expected cost from a free state


@dataclass(frozen=True)
class SlotTable:
    """The slots' inputs stacked (axis 0: slot), as :class:`Slot` has them one by one."""

    dt_h: FloatArray
    net_kwh: FloatArray
    realised_kwh: FloatArray  # (n, K)
    load_kwh: FloatArray
    import_price: FloatArray
    export_price: FloatArray
    weights: FloatArray  # (n, B, K); the first slot's are not read (its value is not needed)

    @classmethod
    def of(cls, slots: Sequence[Slot]) -> SlotTable:
        later = [s.weights for s in slots[1:]]
        if any(w.shape != later[0].shape for w in later):
            raise ValueError("slots: the chances of the slots after the first differ in shape")
        return cls(
            np.array([s.dt_h for s in slots]),
            np.array([s.net_kwh for s in slots]),
            np.array([s.realised_kwh for s in slots]),  # quicker than np.stack for many small rows
            np.array([s.load_kwh for s in slots]),
            np.array([s.import_price for s in slots]),
            np.array([s.export_price for s in slots]),
            np.array([later[0] if later else slots[0].weights, *later]),
        )


@dataclass(frozen=True)
class _Reach:
    """What the slot's length alone sets: the power limits in kWh and the room from each state."""

    top: float
    discharge_max: float
    room_c: FloatArray  # (S,) AC energy that charging can store from each state
    room_d: FloatArray  # (S,) AC energy that discharging can deliver
    free: int  # states 0..free-1 have the full charge limit to spare
    at_limit: IntArray  # (S,) the point below where charging at the limit lands from each state
    frac_limit: FloatArray  # (S,) how far past

    @classmethod
    def of(cls, params: BatteryParams, grid: SocGrid, dt_h: float) -> _Reach:
        e = grid.e
        top = params.max_charge_w * dt_h / 1000.0
        discharge_max = params.max_discharge_w * dt_h / 1000.0
        charge_max = charge_limit_w_array(params, 100.0 * e / params.capacity_kwh) * dt_h / 1000.0
        room_c = np.minimum(np.maximum(params.e_max_kwh - e, 0.0) / params.charge_efficiency, charge_max)
        room_d = np.minimum(
            np.maximum(e - params.e_min_kwh, 0.0) * params.discharge_efficiency, discharge_max
        )
        free = int(np.argmin(np.append(room_c >= top, False)))
        n_states = e.size
        position = np.arange(n_states, dtype=np.float64) + top * params.charge_efficiency / grid.delta
        np.minimum(position, n_states - 1, out=position)
        at = position.astype(np.intp)
        np.minimum(at, n_states - 2, out=at)
        return cls(top, discharge_max, room_c, room_d, free, at, position - at)


def _sizes(params: BatteryParams, grid: SocGrid, dt_h: float) -> _Sizes:
    """The shapes for the longest slot, ``dt_h`` hours."""
    top = params.max_charge_w * dt_h / 1000.0
    discharge_max = params.max_discharge_w * dt_h / 1000.0
    charge = math.floor(top * params.charge_efficiency / grid.delta + 1e-9) + 1
    discharge = math.floor(discharge_max / params.discharge_efficiency / grid.delta + 1e-9)
    return _Sizes(grid.e.size, charge, discharge)


def _prepare(
    params: BatteryParams,
    limits: GridLimits,
    grid: SocGrid,
    sizes: _Sizes,
    reach: _Reach,
    inputs: SlotTable,
    chunk: IntArray,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> list[_Step]:
    """The tables of a chunk of slots of one length, computed for all of them at once (axis 0:
    slot); ``rules``: whether the battery may charge from the grid and export, as forecast."""
    ec, ed = params.charge_efficiency, params.discharge_efficiency
    n_states, n_charge, n_discharge = sizes.states, sizes.charge, sizes.discharge
    e = grid.e
    dt = float(inputs.dt_h[chunk[0]])
    net = inputs.net_kwh[chunk]
    r = inputs.realised_kwh[chunk]  # (T, K)
    top, room_c, room_d, free = reach.top, reach.room_c, reach.room_d, reach.free

    k, n_t = r.shape[1], chunk.size
    special = slice(free, n_states)
    n_special = n_states - free
    # Below the top a special state is one the room left limits; a case that fills it lands on
    # the top, as it does past the limit, so only its cost differs from a free state's. Under a
    # charge taper the power limit may bind first: every column is scored one by one.
    near_top = params.taper_start_soc_pct is None
    scored_special = 0 if near_top else n_special * n_charge
    weights = inputs.weights[chunk]  # (T, B, K)
    # Where the value is read, in grid steps, and the cost scored there, (T, K, points):
    # self-use (S), the special states' columns (S_sp * J), the shifted reads, the charge limit.
    parts = (0, n_states, n_states + scored_special, n_states + scored_special + sizes.shifted)
    positions = np.empty((n_t, k, parts[3]))
    scored_cost = np.empty((n_t, k, parts[2]))
    part = [positions[:, :, parts[i] : parts[i + 1]] for i in range(3)]

    # The battery's AC flow (+ discharge) in each case of every column costed at once, (T, K, .):
    # self-use from each state (the house's, clamped), each charge column from a free state (a
    # case at the limit stores it), the room left of each special state, each discharge column.
    rr = r[:, :, None]
    planned = np.arange(n_charge) * (grid.delta / ec)
    surplus = unexpected_surplus(net[:, None], r)  # (T, K)
    wanted = planned + surplus[:, :, None]
    capped = wanted >= top
    delivered = np.arange(1, n_discharge + 1) * (grid.delta * ed)
    room = room_c[special]  # (S_sp,)
    ends = list(itertools.accumulate((n_states, n_charge, n_special, n_discharge)))
    flow = np.empty((n_t, k, ends[-1]))
    battery = np.minimum(np.maximum(rr, -room_c), room_d, out=flow[:, :, : ends[0]])
    np.negative(np.where(capped, top, wanted), out=flow[:, :, ends[0] : ends[1]])
    flow[:, :, ends[1] : ends[2]] = -room
    flow[:, :, ends[2] :] = delivered
    cost = money(
        params,
        limits,
        dt,
        inputs.load_kwh[chunk][:, None, None],
        inputs.import_price[chunk][:, None, None],
        inputs.export_price[chunk][:, None, None],
        grid_kwh=rr - flow,
        battery_kwh=flow,
        throughput_kwh=np.abs(flow) if params.wear_cost_per_kwh else flow,  # read only with a wear cost
    )
    free_cost, room_cost = cost[:, :, ends[0] : ends[1]], cost[:, :, ends[1] : ends[2]]

    scored_cost[:, :, : parts[1]] = cost[:, :, : ends[0]]
    drop = np.multiply(battery, ec)
    np.divide(battery, ed, out=drop, where=battery > 0)
    np.subtract(e - e[0], drop, out=part[0])
    part[0] /= grid.delta
    np.maximum(part[0], 0.0, out=part[0])  # the other parts are at or above the bottom

    fuse = np.maximum(limits.max_import_w * dt / 1000.0, net)
    if not rules.allow_grid_charge:  # at most the forecast surplus stored
        fuse = np.maximum(net, 0.0)
    usable = planned[None, :] + net[:, None] <= fuse[:, None] + 1e-9
    n_usable = math.floor(top * ec / grid.delta + 1e-9) + 1  # the band's width at this length
    usable[:, n_usable:] = False
    columns = np.count_nonzero(usable, axis=1).tolist()
    charge_cost = weights @ free_cost  # (T, B, J)

    # Special states: a case that fills the room left stores the room, else what it wanted.
    state = np.arange(n_states, dtype=np.float64)
    near_cost = None
    if near_top:  # (T, J, B, S_sp): what a column costs there beyond its cost from a free state
        # laid out (column, state) so that the product's rows are read in the table's order
        filled = wanted[:, :, :, None] >= room  # (T, K, J, S_sp)
        cost_sp = np.where(filled, room_cost[:, :, None, :], free_cost[:, :, :, None]).reshape(n_t, k, -1)
        weighted = np.empty((n_t, weights.shape[1], cost_sp.shape[2]))
        if weights.shape[1] * k * cost_sp.shape[2] < SINGLE_THREAD_PRODUCT:
            np.matmul(weights, cost_sp, out=weighted)
        else:
            for t in range(n_t):
                _product(weights[t], cost_sp[t], weighted[t])
        near_cost = np.empty((n_t, n_charge, weights.shape[1], n_special))
        np.subtract(
            weighted.reshape(n_t, weights.shape[1], n_charge, n_special).transpose(0, 2, 1, 3),
            charge_cost.transpose(0, 2, 1)[:, :, :, None],
            out=near_cost,
        )
    else:
        filled = wanted[:, :, None, :] >= room[:, None]  # (T, K, S_sp, J)
        scored_cost[:, :, parts[1] : parts[2]] = np.where(
            filled, room_cost[:, :, :, None], free_cost[:, :, None, :]
        ).reshape(n_t, k, -1)
        pos_sp = part[1].reshape(n_t, k, n_special, n_charge)
        np.add(state[special, None], (wanted * (ec / grid.delta))[:, :, None, :], out=pos_sp)
        room_pos = ((e[special] - e[0]) + room * ec) / grid.delta
        np.copyto(pos_sp, np.broadcast_to(room_pos[:, None], pos_sp.shape), where=filled)

    # Free states: case k lands sigma_k steps past s + j, or at the limit (the same every slot).
    np.add(np.arange(sizes.shifted), (surplus * ec / grid.delta)[:, :, None], out=part[2])
    np.minimum(positions, n_states - 1, out=positions)
    below = np.floor(positions)
    np.minimum(below, n_states - 2, out=below)
    frac = np.empty((n_t, k, parts[3] + n_states))
    np.subtract(positions, below, out=frac[:, :, : parts[3]])
    frac[:, :, parts[3] :] = reach.frac_limit
    at = np.empty(frac.shape, dtype=np.intp)
    at[:, :, : parts[3]] = below
    at[:, :, parts[3] :] = reach.at_limit
    at += (np.arange(k) * n_states)[:, None]

    # Discharge: (T, K, D) costs of columns 1..D; usable ones are a prefix.
    cap = limits.max_export_w * dt / 1000.0
    dis_usable = delivered[None, :] - net[:, None] <= cap + 1e-9
    if not rules.allow_battery_export:  # at most the forecast deficit covered
        dis_usable &= delivered[None, :] <= net[:, None] + 1e-9
    dis_usable[:, math.floor(reach.discharge_max / ed / grid.delta + 1e-9) :] = False
    dis_columns = dis_usable.sum(axis=1).tolist()
    weighted_discharge = (weights @ cost[:, :, ends[2] :]).transpose(0, 2, 1)[
        :, ::-1, :, None
    ]  # (T, D, B, 1)

    charge: list[_Columns] | list[_Runs]
    if n_usable >= GROUPED_FROM:
        charge = _runs(weights, capped, columns, charge_cost)
    else:
        # the first column that takes a case to the limit takes the largest surplus there
        below_limit = planned + surplus.max(axis=1)[:, None] < top
        charge = _columns(weights, capped, np.count_nonzero(below_limit, axis=1).tolist(), charge_cost)
    return [
        _Step(
            weights[t],
            at[t],
            frac[t],
            scored_cost[t],
            columns[t],
            charge[t],
            None if near_cost is None else near_cost[t],
            weighted_discharge[t, n_discharge - dis_columns[t] :],
        )
        for t in range(n_t)
    ]


def _columns(
    weights: FloatArray, capped: npt.NDArray[np.bool_], firsts: list[int], charge_cost: FloatArray
) -> list[_Columns]:
    """The one-product tables of a chunk's slots: weights (T, B, K), capped (T, K, J) the cases
    each column takes to the limit, firsts the first column of each slot that takes one there
    (J: none), charge_cost (T, B, J)."""
    n_t, n_before, k = weights.shape
    n_charge = capped.shape[2]
    n_rows = n_charge * n_before
    uncapped = (~capped).transpose(0, 2, 1).astype(np.float64)[:, :, None, :]  # (T, J, 1, K)
    # A column's chances of the cases below the limit, and its expected cost from a free state
    # (read against a row of ones): (T, J * B, K + 1); and of the cases at the limit.
    uncapped_weights = np.empty((n_t, n_charge, n_before, k + 1))
    np.multiply(weights[:, None, :, :], uncapped, out=uncapped_weights[..., :k])
    uncapped_weights[..., k] = charge_cost.transpose(0, 2, 1)
    capped_weights = (weights[:, None, :, :] - uncapped_weights[..., :k]).reshape(n_t, n_rows, k)
    uncapped_weights = uncapped_weights.reshape(n_t, n_rows, k + 1)
    return [_Columns(uncapped_weights[t], firsts[t], capped_weights[t]) for t in range(n_t)]


def _runs(
    weights: FloatArray, capped: npt.NDArray[np.bool_], columns: list[int], charge_cost: FloatArray
) -> list[_Runs]:
    """The runs of a chunk's slots (arguments as for :func:`_columns`; ``columns``: the usable
    ones of each slot)."""
    k = weights.shape[2]
    counts = np.count_nonzero(capped, axis=1)  # (T, J): the cases at the limit grow with the power
    cost = charge_cost.transpose(0, 2, 1)[:, :, :, None]
    out = []
    for t, j in enumerate(columns):
        firsts = np.flatnonzero(np.diff(counts[t, :j], prepend=-1))
        below = ~capped[t][:, firsts].T  # (R, K)
        uncapped = weights[t][None, :, :] * below[:, None, :]  # (R, B, K)
        free = int(j > 0 and counts[t, 0] == 0)
        bounds = list(itertools.pairwise([*firsts.tolist(), j]))
        capped_weights = (weights[t][None, :, :] - uncapped[free:]).reshape(-1, k)
        out.append(_Runs(bounds, uncapped.reshape(-1, k), capped_weights, free, cost[t]))
    return out


def values(
    params: BatteryParams,
    limits: GridLimits,
    grid: SocGrid,
    slots: Sequence[Slot] | SlotTable,
    end_value_per_kwh: float,
    shortfall: FloatArray | None = None,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> list[FloatArray]:
    """V[t] on the grid for t = 1..n (index t - 1): least expected cost to the end, in each case
    of slot t - 1 ((cases, S); one row when the next slot's chances do not depend on it).
    ``shortfall`` ((n + 1, S) or None): a cost of each state at each slot boundary (the goals'
    bounds, :mod:`controller.planner.goals`), added to V as the recursion passes the boundary.
    ``rules``: a charge or hold plans no more than the forecast PV surplus without grid charging,
    a discharge no more than the forecast deficit without battery export (prefixes of the
    columns, as the main fuse and the export cap make them)."""
    after = value_table(params, limits, grid, slots, end_value_per_kwh, shortfall, rules)
    return [*after[:-1], after[-1, :1]]


def value_table(
    params: BatteryParams,
    limits: GridLimits,
    grid: SocGrid,
    slots: Sequence[Slot] | SlotTable,
    end_value_per_kwh: float,
    shortfall: FloatArray | None = None,
    rules: PlanConstraints = NO_CONSTRAINTS,
) -> FloatArray:
    """:func:`values` in one array (n, rows, S), each step written where it is kept; the end
    value (index n - 1) in every row."""
    table = slots if isinstance(slots, SlotTable) else SlotTable.of(slots)
    n = table.dt_h.size
    after = np.empty((n, table.weights.shape[1] if n > 1 else 1, grid.e.size))
    end = -end_value_per_kwh * grid.e
    after[n - 1] = end if shortfall is None else end + shortfall[n]
    if n < 2:
        return after
    lengths = table.dt_h.tolist()
    sizes = _sizes(params, grid, max(lengths))
    space = _Workspace(sizes, table.realised_kwh.shape[1], table.weights.shape[1])
    reaches = {dt: _Reach.of(params, grid, dt) for dt in set(lengths)}
    cases = table.realised_kwh.shape[1]
    # Each slot's tables grow with its charge columns times the states near the top (long
    # slots: both wide); fewer slots are prepared at once where they are large.
    per_chunk = {
        dt: min(CHUNK, max(1, CHUNK_CELLS // (cases * sizes.charge * (grid.e.size - reach.free) + 1)))
        for dt, reach in reaches.items()
    }
    for chunk in _chunks(lengths, per_chunk):
        reach = reaches[lengths[chunk[0]]]
        for t, step in zip(
            chunk, _prepare(params, limits, grid, sizes, reach, table, np.array(chunk), rules), strict=True
        ):
            # the end value is read as one row: its chances weigh nothing
            space.bellman(step, after[t] if t < n - 1 else after[t, :1], reach.free, after[t - 1])
            if shortfall is not None:
                after[t - 1] += shortfall[t]
    return after


def _chunks(lengths: list[float], per_chunk: dict[float, int]) -> list[list[int]]:
    """The slots to step through (the last first, all but the first), in runs of the same
    length (at most ``per_chunk`` of it): within one, every slot has the same power limits in
    kWh, so the same states are free."""
    chunks: list[list[int]] = []
    for t in range(len(lengths) - 1, 0, -1):
        last = chunks[-1] if chunks else []
        if not last or len(last) == per_chunk[lengths[t]] or lengths[last[0]] != lengths[t]:
            chunks.append([])
        chunks[-1].append(t)
    return chunks


# OpenBLAS shares a product among its threads from about this many multiply-adds on; on a busy
# machine waiting for them costs more than the product (tens of times more, measured).
SINGLE_THREAD_PRODUCT = 65536 * 4


def _product(a: FloatArray, b: FloatArray, out: FloatArray) -> None:
    """``a @ b`` (2-d) into ``out`` (C-contiguous), in blocks of rows, or of columns, small enough
    to stay on one thread (``np.dot``: for these small products quicker than ``np.matmul``, with
    the same sums)."""
    inner = max(1, a.shape[1])
    if a.shape[0] * inner * b.shape[1] < SINGLE_THREAD_PRODUCT:
        np.dot(a, b, out=out)
    elif inner * b.shape[1] < SINGLE_THREAD_PRODUCT:
        rows = SINGLE_THREAD_PRODUCT // (inner * b.shape[1])
        for first in range(0, a.shape[0], rows):
            np.dot(a[first : first + rows], b, out=out[first : first + rows])
    else:
        columns = max(1, SINGLE_THREAD_PRODUCT // (a.shape[0] * inner))
        for first in range(0, b.shape[1], columns):
            np.matmul(a, b[:, first : first + columns], out=out[:, first : first + columns])


@dataclass(frozen=True, slots=True)
class _Reads:
    """The value read where a slot's tables name (K, points), with a row of ones below against
    which the charge columns' expected costs are read, and the views the Bellman step takes."""

    read: FloatArray  # (K, points)
    scratch: FloatArray  # (K, points): the interpolation's step
    scored: FloatArray  # (K, scored) the reads scored one by one (self-use, tapered columns)
    scored_cost: FloatArray  # (K, scored): those reads plus their costs
    below: FloatArray  # (K + 1, S + J - 1) the shifted reads and the row of ones
    limit: FloatArray  # (K, span) the reads at the limit


class _Workspace:
    """Buffers reused from slot to slot, with strided views that read them shifted."""

    def __init__(self, sizes: _Sizes, cases: int, rows: int) -> None:
        self.sizes, self.cases, self.rows = sizes, cases, rows
        n_states, n_charge, n_discharge = sizes.states, sizes.charge, sizes.discharge
        item = np.dtype(np.float64).itemsize
        # reads[points]: the value in each case at each point the slot's tables name, and views
        # of them (one set of views for each number of points: slots of one length share it)
        self.reads: dict[tuple[int, int, int], _Reads] = {}
        # shifted[j, b, i]: the value after the slot, weighted over the cases column j leaves
        # below the limit, plus the column's cost, read at s + j through diagonal[j, b, s] (no two
        # of its elements share memory)
        self.shifted = np.empty((n_charge, rows, sizes.shifted))
        self.diagonal = as_strided(
            self.shifted,
            shape=(n_charge, rows, n_states),
            strides=(self.shifted.strides[0] + item, self.shifted.strides[1], item),
            writeable=False,
        )
        self.at_limit = np.empty(n_charge * rows * n_states)
        # landed[b, D + i]: the weighted value at point i (inf below the grid), read at s - m
        # through dropped[D - m, b, s]
        self.landed = np.full((rows, n_discharge + n_states), np.inf)
        self.on_grid = self.landed[:, n_discharge:]
        self.dropped = as_strided(
            self.landed,
            shape=(n_discharge, rows, n_states),
            strides=(item, self.landed.strides[0], item),
            writeable=False,
        )
        # candidates[c, b, s]: the expected cost to the end of each candidate from each state, in
        # one block so that the least is taken in one pass: self-use, the discharge columns, the
        # charge columns (when weighed in one product)
        self.candidates = np.empty((1 + n_discharge + n_charge, rows, n_states))
        self.scratch = np.empty((n_charge, rows, n_states))
        # by_run[r, b, i]: the value weighted over the cases run r leaves below the limit, read
        # at s + j through runs[r, j, b, s]; limit_runs[r, b, s]: over the cases it takes there
        self.by_run = np.empty((cases + 1, rows, sizes.shifted))
        self.runs = as_strided(
            self.by_run,
            shape=(cases + 1, n_charge, rows, n_states),
            strides=(self.by_run.strides[0], item, self.by_run.strides[1], item),
            writeable=False,
        )
        self.limit_runs = np.empty((cases + 1) * rows * n_states)

    def bellman(self, step: _Step, value: FloatArray, free: int, out: FloatArray) -> None:
        """One backward step into ``out`` ((B, S)): the least expected cost from each state in
        each case of the slot before; states 0..free-1 have the full charge limit to spare."""
        w, sizes, b, k = step.weights, self.sizes, self.rows, self.cases
        n_states = sizes.states
        cases = value if value.shape[0] == k else np.repeat(value, k, axis=0)
        flat = cases.ravel()
        slope = np.subtract(flat[1:], flat[:-1])
        n_scored = step.scored_cost.shape[1]
        # under a taper only the free states read the limit (the others are scored one by one)
        span = n_states if step.near_cost is not None else free
        reads = self.reads.get((step.at.shape[1], n_scored, span))
        if reads is None:
            reads = self._reads(step.at.shape[1], n_scored, span)
        read = reads.read
        flat.take(step.at, out=read)
        step_part = slope.take(step.at, out=reads.scratch)
        step_part *= step.frac
        read += step_part
        j, d, charge = step.columns, step.discharge_cost.shape[0], step.charge
        candidates = self.candidates[: 1 + d + (j if isinstance(charge, _Columns) else 0)]

        # Self-use and the special states' columns, scored one by one: (B, S + S_sp * J).
        scored = candidates[0] if n_scored == n_states else np.empty((b, n_scored))
        _product(w, np.add(reads.scored, step.scored_cost, out=reads.scored_cost), scored)
        if n_scored > n_states:
            candidates[0] = scored[:, :n_states]

        # Discharge lands on grid points: the weighted value read m points down.
        if d:
            if value.shape[0] == 1:
                self.on_grid[...] = value
            else:
                np.matmul(w, value, out=self.on_grid)
            np.add(self.dropped[sizes.discharge - d :], step.discharge_cost, out=candidates[1 : 1 + d])

        # Charge: the weighted value of the cases below the limit read at s + j, plus the
        # column's cost from a free state, plus the weighted value of the cases at the limit.
        # Near the top it is the same value read (all land on the top) at another cost.
        if isinstance(charge, _Columns):
            self._columns(step, charge, candidates[1 + d :], reads.below, reads.limit, free, span)
            np.minimum.reduce(candidates, axis=0, out=out)
        else:
            np.minimum.reduce(candidates, axis=0, out=out)
            self._runs(step, charge, out, reads.below[:k], reads.limit, free, span)
        if span < n_states:  # the special states under a taper, scored one by one
            near = scored[:, n_states:].reshape(b, n_states - free, sizes.charge).transpose(2, 0, 1)[:j]
            np.minimum(out[:, free:], np.minimum.reduce(near, axis=0), out=out[:, free:])

    def _reads(self, points: int, n_scored: int, span: int) -> _Reads:
        """The buffers of the reads at ``points`` points, ``n_scored`` of them scored one by one
        and ``span`` states reading the limit, and their views."""
        k, shifted = self.cases, self.sizes.shifted
        with_ones = np.ones((k + 1, points))
        read = with_ones[:k]
        reads = _Reads(
            read,
            np.empty((k, points)),
            read[:, :n_scored],
            np.empty((k, n_scored)),
            with_ones[:, n_scored : n_scored + shifted],
            read[:, n_scored + shifted : n_scored + shifted + span],
        )
        return self.reads.setdefault((points, n_scored, span), reads)

    def _columns(
        self,
        step: _Step,
        charge: _Columns,
        columns: FloatArray,
        below: FloatArray,
        limit: FloatArray,
        free: int,
        span: int,
    ) -> None:
        """The charge columns' expected costs into ``columns`` ((J, B, S); inf where a taper
        leaves them to be scored one by one), one product for all of them: ``below`` the reads
        (K + 1, S + J - 1) with the row of ones, ``limit`` (K, span) at the limit."""
        b, j, shifted = self.rows, step.columns, self.sizes.shifted
        _product(charge.uncapped[: j * b], below, self.shifted[:j].reshape(j * b, shifted))
        diagonal = self.diagonal[:j]
        np.copyto(columns[:, :, :free], diagonal[:, :, :free])
        if step.near_cost is None:
            columns[:, :, free:] = np.inf
        else:
            np.add(diagonal[:, :, free:], step.near_cost[:j], out=columns[:, :, free:])
        first = min(charge.first_capped, j)
        if first < j:
            at_limit = self.at_limit[: (j - first) * b * span].reshape(j - first, b, span)
            _product(charge.capped[first * b : j * b], limit, at_limit.reshape((j - first) * b, span))
            columns[first:, :, :span] += at_limit

    def _runs(
        self,
        step: _Step,
        charge: _Runs,
        least: FloatArray,
        below: FloatArray,
        limit: FloatArray,
        free: int,
        span: int,
    ) -> None:
        """The charge columns into ``least``, run by run (arguments as for :meth:`_columns`,
        ``below`` without the row of ones)."""
        b, shifted, n_runs = self.rows, self.sizes.shifted, len(charge.bounds)
        _product(charge.uncapped, below, self.by_run[:n_runs].reshape(n_runs * b, shifted))
        n_capped = n_runs - charge.free
        at_limit = self.limit_runs[: n_capped * b * span].reshape(n_capped, b, span)
        if n_capped:
            _product(charge.capped, limit, at_limit.reshape(n_capped * b, span))
        near = step.near_cost if free < span else None
        for run, (first, end) in enumerate(charge.bounds):
            columns = np.add(
                self.runs[run, first:end, :, :span],
                charge.cost[first:end],
                out=self.scratch[: end - first, :, :span],
            )
            if run >= charge.free:
                columns += at_limit[run - charge.free]
            if near is not None:
                columns[:, :, free:] += near[first:end]
            np.minimum(least[:, :span], np.minimum.reduce(columns, axis=0), out=least[:, :span])
