"""What a replayed strategy did and what it cost: each interval's trace, the totals, the meter
that sums them as a strategy runs, and the cost as a settlement scheme bills the metered flows."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.physics import BatteryParams, IntervalResult
from controller.settlement.engine import Bill, Metered, settle
from controller.settlement.schemes import Scheme
from controller.sim.scenario import Scenario

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Trace:
    """What a strategy did in each interval (for the HTML report's weeks and months)."""

    soc_pct: FloatArray  # at the end of the interval (NaN without a battery)
    battery_w: FloatArray  # > 0 discharging
    grid_w: FloatArray  # > 0 importing
    cost: FloatArray
    actions: tuple[str, ...]
    import_kwh: FloatArray | None = None
    export_kwh: FloatArray | None = None
    wear: FloatArray | None = None  # battery wear cost of each interval


@dataclass(frozen=True)
class StrategyTotals:
    cost: float
    import_kwh: float
    export_kwh: float
    cycles: float  # stored energy discharged over the usable capacity
    solve_ms: tuple[float, ...] = ()
    trace: Trace | None = field(default=None, compare=False, repr=False)
    bill: Bill | None = field(default=None, compare=False, repr=False)  # under a scheme other than per-slot

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "cost": round(self.cost, 4),
            "import_kwh": round(self.import_kwh, 3),
            "export_kwh": round(self.export_kwh, 3),
            "cycles": round(self.cycles, 3),
        }
        if self.solve_ms:
            out["solve_ms_median"] = round(float(np.median(self.solve_ms)), 3)
            out["solve_ms_p95"] = round(float(np.percentile(self.solve_ms, 95)), 3)
        if self.bill is not None:
            out["bill"] = self.bill.to_dict()
        return out


@dataclass(frozen=True)
class BacktestResult:
    currency: str
    intervals: int
    strategies: dict[str, StrategyTotals]

    def to_dict(self) -> dict[str, object]:
        return {
            "currency": self.currency,
            "intervals": self.intervals,
            "strategies": {name: totals.to_dict() for name, totals in self.strategies.items()},
        }


class Meter:
    """Sums an interval's flows and costs as a strategy runs, and keeps each interval's."""

    def __init__(self, params: BatteryParams) -> None:
        self.params = params
        self.cost = self.imported = self.exported = self.discharged_stored = 0.0
        self._rows: list[tuple[float, float, float, float, float, float, float]] = []
        self._actions: list[str] = []

    def add(
        self, r: IntervalResult, import_price: float, export_price: float, action: str = "self_use"
    ) -> None:
        cost = r.cost(import_price, export_price, self.params.wear_cost_per_kwh)
        self.cost += cost
        self.imported += r.import_kwh
        self.exported += r.export_kwh
        self.discharged_stored += r.discharge_kwh / self.params.discharge_efficiency
        wear = self.params.wear_cost_per_kwh * (r.charge_kwh + r.discharge_kwh)
        self._rows.append((r.e_kwh, r.battery_w, r.grid_w, cost, r.import_kwh, r.export_kwh, wear))
        self._actions.append(action)

    def totals(self, solve_ms: tuple[float, ...] = ()) -> StrategyTotals:
        usable = self.params.e_max_kwh - self.params.e_min_kwh
        rows = np.array(self._rows, dtype=np.float64).reshape(-1, 7)
        soc_pct = rows[:, 0] / self.params.capacity_kwh * 100.0
        trace = Trace(
            soc_pct,
            rows[:, 1],
            rows[:, 2],
            rows[:, 3],
            tuple(self._actions),
            rows[:, 4],
            rows[:, 5],
            rows[:, 6],
        )
        return StrategyTotals(
            self.cost, self.imported, self.exported, self.discharged_stored / usable, solve_ms, trace
        )


def settled(totals: StrategyTotals, scenario: Scenario, scheme: Scheme, tz: ZoneInfo) -> StrategyTotals:
    """A strategy's cost as ``scheme`` settles its metered flows at the scenario's prices, plus
    battery wear; the bill itself is kept under any scheme but the per-slot one."""
    trace = totals.trace
    if trace is None or trace.import_kwh is None or trace.export_kwh is None or trace.wear is None:
        raise ValueError("settled: the strategy kept no trace of its flows")
    metered = Metered(
        scenario.epoch_s(),
        int(scenario.step.total_seconds()),
        trace.import_kwh,
        trace.export_kwh,
        scenario.import_price,
        scenario.export_price,
    )
    bill = settle(metered, scheme, tz)
    return replace(totals, cost=bill.total + float(trace.wear.sum()), bill=None if scheme.per_slot else bill)
