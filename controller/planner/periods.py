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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.planner.plan import Horizon
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
