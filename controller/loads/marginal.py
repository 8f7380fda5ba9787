"""What one more load costs in each slot of a battery plan, in expectation over the forecast's cases.

The recourse planner values the energy stored at the end of every slot in each of the slot's
cases (:class:`controller.planner.plan.SlotValues`). A load added to slot t changes what the
slot costs and what it leaves stored: with the battery following the house (self-use) it
takes the load from a surplus that would have been stored or exported, or from the battery,
or from the grid; with the battery held at a power (charge, hold, discharge) the grid takes
it. Its cost in a case is the slot's cost plus the value of what it leaves, with the load less
without it; the cases of a slot are quantiles of past errors, so equally likely.

This is the price against which loads are placed (:mod:`controller.loads.joint`), each placed
load added before the next is placed, and the battery re-planned with all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.physics import Action, BatteryParams, GridLimits
from controller.planner.plan import Plan, SlotValues
from controller.planner.recourse_values import money

FloatArray = npt.NDArray[np.float64]
FOLLOWS_HOUSE = (Action.SELF_USE, Action.EXPORT_LIMIT)


@dataclass(frozen=True, eq=False)
class SlotArrays:
    """A plan's slots as arrays (forecast and planned flows), what the placement reads."""

    dt_h: FloatArray
    pv_w: FloatArray
    load_w: FloatArray
    import_price: FloatArray
    export_price: FloatArray
    battery_w: FloatArray
    follows_house: npt.NDArray[np.bool_]
    stores_surplus: npt.NDArray[np.bool_]  # charge or hold: PV beyond the forecast is stored
    e_start_kwh: FloatArray

    @classmethod
    def of(cls, plan: Plan, params: BatteryParams) -> SlotArrays:
        slots = plan.slots
        soc_start = [plan.start_soc_pct] + [s.target_soc_pct for s in slots[:-1]]
        return cls(
            dt_h=np.array([(s.end - s.start).total_seconds() / 3600.0 for s in slots]),
            pv_w=np.array([s.pv_w for s in slots]),
            load_w=np.array([s.load_w for s in slots]),
            import_price=np.array([s.import_price for s in slots]),
            export_price=np.array([s.export_price for s in slots]),
            battery_w=np.array([s.battery_w for s in slots]),
            follows_house=np.array([s.action in FOLLOWS_HOUSE for s in slots]),
            stores_surplus=np.array([s.action in (Action.CHARGE, Action.HOLD) for s in slots]),
            e_start_kwh=np.array([params.energy_kwh(p) for p in soc_start]),
        )


class MarginalCost:
    """The expected cost of adding power to the slots of a plan, with loads already placed
    (:meth:`add`) counted in."""

    def __init__(
        self, params: BatteryParams, limits: GridLimits, slots: SlotArrays, values: SlotValues
    ) -> None:
        n = slots.dt_h.size
        if values.after_slot.shape[0] != n:
            raise ValueError(f"values: {values.after_slot.shape[0]} slots for a plan of {n}")
        self.params, self.limits, self.slots, self.values = params, limits, slots, values
        self.placed_w = np.zeros(n)
        kwh = slots.dt_h / 1000.0
        e = slots.e_start_kwh
        ec, ed = params.charge_efficiency, params.discharge_efficiency
        self._room_charge_w = np.minimum(
            params.max_charge_w, np.maximum(params.e_max_kwh - e, 0.0) / ec / kwh
        )
        self._room_discharge_w = np.minimum(
            params.max_discharge_w, np.maximum(e - params.e_min_kwh, 0.0) * ed / kwh
        )
        self._forecast_net_w = slots.load_w - np.maximum(slots.pv_w, 0.0)
        departures = values.departures_w if values.after_slot.shape[1] > 1 else np.zeros((n, 1))
        self._cases = departures.shape[1]
        self._net_w = self._forecast_net_w[:, None] + departures  # (n, K)
        grid_e = values.e_min_kwh + values.step_kwh * np.arange(values.after_slot.shape[2])
        self._grid_e = grid_e

    def add(self, power_w: FloatArray) -> None:
        """Count a placed load in: later placements see what it takes."""
        self.placed_w = self.placed_w + power_w

    def surplus_w(self) -> FloatArray:
        """The forecast PV surplus left in each slot once the placed loads are counted (>= 0)."""
        return np.maximum(-(self._forecast_net_w + self.placed_w), 0.0)

    def cost(self, extra_w: FloatArray) -> FloatArray:
        """The expected cost, per slot, of adding ``extra_w`` (W over each slot; shape (..., n))."""
        extra = np.asarray(extra_w, dtype=np.float64)
        out: FloatArray = self._slot_total(self.placed_w + extra) - self._slot_total(self.placed_w)
        return out

    def per_kwh(self, power_w: float) -> FloatArray:
        """Each slot's expected cost per kWh of a load of ``power_w`` running through it."""
        if power_w <= 0:
            raise ValueError(f"power_w must be > 0, got {power_w!r}")
        kwh = power_w * self.slots.dt_h / 1000.0
        per: FloatArray = self.cost(np.full(self.slots.dt_h.size, power_w)) / kwh
        return per

    def _slot_total(self, added_w: FloatArray) -> FloatArray:
        """Each slot's expected cost plus the value of what it leaves stored, with ``added_w``
        on top of the forecast load. In each case the battery does as planned (follows the
        house, or holds its power and stores PV beyond the forecast) or, where that is cheaper,
        holds the power planned for the forecast: the executor re-chooses the mode from what
        the house does."""
        s = self.slots
        net = self._net_w + added_w[..., None]  # (..., n, K)
        room_c, room_d = self._room_charge_w[:, None], self._room_discharge_w[:, None]
        follow = np.clip(net, -room_c, room_d)
        beyond = np.maximum(self._forecast_net_w[:, None] - net, 0.0)  # PV beyond the forecast
        planned = s.battery_w[:, None]
        held = np.where(
            s.stores_surplus[:, None],
            planned - np.minimum(beyond, np.maximum(room_c + planned, 0.0)),
            planned,
        )
        as_planned = self._total(net, added_w, np.where(s.follows_house[:, None], follow, held))
        fixed = self._total(net, added_w, np.broadcast_to(planned, net.shape))
        total: FloatArray = np.minimum(as_planned, fixed).mean(axis=-1)
        return total

    def _total(self, net: FloatArray, added_w: FloatArray, battery: FloatArray) -> FloatArray:
        """Each case's cost with the battery at ``battery`` W plus the value it leaves."""
        s, p = self.slots, self.params
        kwh = s.dt_h / 1000.0
        grid_kwh = (net - battery) * kwh[:, None]
        battery_kwh = battery * kwh[:, None]
        load_kwh = (s.load_w[:, None] + added_w[..., None]) * kwh[:, None]
        cost = money(
            p,
            self.limits,
            s.dt_h[:, None],
            load_kwh,
            s.import_price[:, None],
            s.export_price[:, None],
            grid_kwh,
            battery_kwh,
            np.abs(battery_kwh),
        )
        stored = np.where(
            battery > 0, -battery_kwh / p.discharge_efficiency, -battery_kwh * p.charge_efficiency
        )
        total: FloatArray = cost + self._value(s.e_start_kwh[:, None] + stored)
        return total

    def _value(self, e_kwh: FloatArray) -> FloatArray:
        """The value after each slot (..., n, K) of stored energy ``e_kwh``, in its case."""
        after = self.values.after_slot  # (n, 1 or K, S)
        n, rows, points = after.shape
        pos = np.clip((e_kwh - self._grid_e[0]) / self.values.step_kwh, 0.0, points - 1)
        low = np.minimum(pos.astype(np.intp), points - 2)
        frac = pos - low
        slot = np.arange(n)[:, None]
        case = np.arange(self._cases)[None, :] if rows > 1 else np.zeros((1, 1), dtype=np.intp)
        v0 = after[slot, case, low]
        v1 = after[slot, case, low + 1]
        value: FloatArray = v0 + frac * (v1 - v0)
        return value
