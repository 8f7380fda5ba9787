"""Planning where import and export net out within a settlement period longer than the slots.

Under netting (``[settlement] period = "hour"``, ``net = true``, with 15-minute slots) the bill
sees each period's net energy only: a kWh exported in one quarter and imported in the next cost
nothing. What a battery does within the period then matters only through the period's net, so
the planners plan per period: the slots of each period merged into one (energies summed, prices
averaged over time), the first period cut to what is left of it. Where the prices are the same
in every slot of a period (an export value averaged per hour, a flat import price) the merged
plan's cost is the settled cost exactly; where the import price varies within the period the
bill weights it by the slots' import, which the merged plan counts at the period's mean.

The part of the period already metered counts too: ``elapsed_net_kwh`` (import - export since
the period began) is added to the first period's load, so its cost is that of the whole
period's net (less a constant), and a kWh exported earlier in the hour is bought back at the
export value. The backtest's executor holds the period's battery power and plans again at the
next interval with what the meter has counted since; the daemon's follows the period's slot as
any plan slot, and re-plans every 15 minutes with the net read back from storage. The plan's
first period shows that net in its load and grid.

The flexible loads are placed slot by slot (:mod:`controller.loads.joint`), so their joint plan
takes the battery's plan per period spread back over the slots (:func:`per_slot`): each slot
holds its period's mode and battery power, with its own forecast and prices, and the values
of stored energy at its period's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from controller.planner.plan import Horizon, Plan, PlanSlot, PriceLike, SlotValues
from controller.settlement.schemes import Scheme

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
PERIOD_SECONDS = {"quarter_hour": 900, "hour": 3600}  # the periods planned as such


def netting_period_s(scheme: Scheme, slot_s: float) -> int | None:
    """The settlement period the planners plan by (seconds), or None where they plan per slot:
    without netting, or a period no longer than the slots, or a day or month (a battery is worth
    nothing over a period that nets a whole day at one price; at several it is per slot)."""
    netting = scheme.netting
    period = PERIOD_SECONDS.get(netting.period)
    if not netting.net or period is None or period <= slot_s:
        return None
    return period


@dataclass(frozen=True)
class Periods:
    """The slots of a horizon grouped by settlement period: ``runs[i]`` is slot i's period
    (0, 1, ...), ``first[p]`` the first slot of period p."""

    runs: IntArray
    first: IntArray

    @property
    def count(self) -> int:
        return int(self.first.size)


def periods_of(start_s: npt.ArrayLike, period_s: int) -> Periods:
    """The periods of slots starting at ``start_s`` (epoch seconds, ascending, contiguous)."""
    keys = np.asarray(start_s, dtype=np.int64) // period_s
    if keys.size == 0:
        return Periods(np.empty(0, np.int64), np.empty(0, np.int64))
    changes = np.flatnonzero(np.diff(keys)) + 1
    runs = np.zeros(keys.size, dtype=np.int64)
    runs[changes] = 1
    np.cumsum(runs, out=runs)
    return Periods(runs, np.concatenate([[0], changes]).astype(np.int64))


def _mean(periods: Periods, values: FloatArray, dt_h: FloatArray, length_h: FloatArray) -> FloatArray:
    summed: FloatArray = np.bincount(periods.runs, weights=values * dt_h, minlength=periods.count).astype(
        np.float64
    )
    return summed / length_h


def merged(h: Horizon, periods: Periods, elapsed_net_kwh: float = 0.0) -> Horizon:
    """The horizon with each period's slots merged (see the module docstring): PV and load as
    the period's mean power, prices as its mean over time; ``elapsed_net_kwh`` added to the
    first period's load."""
    if not np.isfinite(elapsed_net_kwh):
        raise ValueError(f"elapsed_net_kwh is not finite: {elapsed_net_kwh!r}")
    length = np.bincount(periods.runs, weights=h.dt_h, minlength=periods.count).astype(np.float64)
    load = _mean(periods, h.load_w, h.dt_h, length)
    if length.size:
        load[0] += elapsed_net_kwh * 1000.0 / length[0]
    return Horizon(
        length,
        _mean(periods, np.maximum(h.pv_w, 0.0), h.dt_h, length),
        load,
        _mean(periods, h.import_price, h.dt_h, length),
        _mean(periods, h.export_price, h.dt_h, length),
    )


def merged_departures(
    errors_w: FloatArray, transitions: FloatArray | None, h: Horizon, periods: Periods
) -> tuple[FloatArray, FloatArray | None]:
    """The recourse planner's net-load departures per period: each case's mean over the
    period's slots (a case is a quantile, the same one through the period), with the chances
    of the period's first slot following the slot before."""
    length = np.bincount(periods.runs, weights=h.dt_h, minlength=periods.count)
    summed = np.zeros((periods.count, errors_w.shape[1]))
    np.add.at(summed, periods.runs, errors_w * h.dt_h[:, None])
    departures = summed / length[:, None]
    return departures, None if transitions is None else transitions[periods.first]


def per_slot(
    plan: Plan, slots: Sequence[PriceLike], pv_w: Sequence[float], load_w: Sequence[float], periods: Periods
) -> Plan:
    """The plan made per period (``plan``, over the ``periods`` of ``slots``) spread over the
    slots: each slot in its period's mode at its battery power, the SoC along the period in
    proportion to time, the slot's own PV, load and prices (the grid and cost of each slot
    follow from them), the period's values of stored energy at its end. The plan's totals stay
    the period plan's."""
    if len(plan.slots) != periods.count or len(slots) != periods.runs.size:
        raise ValueError(
            f"per_slot: {len(plan.slots)} periods planned for {periods.count} of {len(slots)} slots"
        )
    dt_h = np.array([(s.end - s.start).total_seconds() / 3600.0 for s in slots])
    length = np.bincount(periods.runs, weights=dt_h, minlength=periods.count)
    through = (np.cumsum(dt_h) - np.concatenate([[0.0], np.cumsum(length)])[periods.runs]) / length[
        periods.runs
    ]
    soc_before = [plan.start_soc_pct, *(s.target_soc_pct for s in plan.slots[:-1])]
    spread = []
    for i, slot in enumerate(slots):
        p = int(periods.runs[i])
        period = plan.slots[p]
        pv = max(float(pv_w[i]), 0.0)
        used = pv * period.pv_used_w / period.pv_w if period.pv_w > 0 else pv
        grid = float(load_w[i]) - used - period.battery_w
        price = slot.import_price if grid > 0 else slot.export_price
        spread.append(
            PlanSlot(
                start=slot.start,
                end=slot.end,
                action=period.action,
                battery_w=period.battery_w,
                grid_charge_w=period.grid_charge_w,
                target_soc_pct=soc_before[p] + (period.target_soc_pct - soc_before[p]) * float(through[i]),
                grid_w=grid,
                pv_w=pv,
                pv_used_w=used,
                load_w=float(load_w[i]),
                import_price=slot.import_price,
                export_price=slot.export_price,
                cost=grid * dt_h[i] / 1000.0 * price,
                explanation=period.explanation,
            )
        )
    values = plan.values
    if values is not None:
        net = np.asarray(load_w, dtype=np.float64) - np.maximum(np.asarray(pv_w, dtype=np.float64), 0.0)
        values = SlotValues(
            values.e_min_kwh,
            values.step_kwh,
            values.after_slot[periods.runs],
            values.departures_w[periods.runs],
            net,
        )
    return replace(plan, slots=tuple(spread), values=values)
