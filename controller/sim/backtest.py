"""Receding-horizon replay of a scenario, against two baselines.

Strategies, each through the one model (:func:`controller.model.step`):

- ``no_battery``: the house as is; every surplus exported, every deficit imported.
- ``self_consumption``: the battery stores PV surplus and covers deficits; no grid charging,
  no export from the battery.
- ``hemsd``: every interval the planner is solved over the horizon it can see and the first
  slot is applied: self-use slots follow the real house, the others hold the planned power.

``perfect`` forecasts give the planner the true future. ``realistic`` ones give it only the
prices a day-ahead market has published (the next local day's from 13:00) and PV/load from
:mod:`controller.forecast`, fed with the past alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.forecast import forecast_load, forecast_pv
from controller.model import BatteryParams, GridLimits, IntervalResult, mode_request_w, step
from controller.optimizer import solve
from controller.plan import EndValue, Horizon, PlanConstraints, classify
from controller.sim.scenario import Scenario

FloatArray = npt.NDArray[np.float64]
FORECASTS = ("perfect", "realistic")
PUBLICATION_HOUR = 13  # local hour from which the next day's day-ahead prices are known
DEFAULT_END_VALUE = EndValue(import_percentile=30.0)


@dataclass(frozen=True)
class StrategyTotals:
    cost: float
    import_kwh: float
    export_kwh: float
    cycles: float  # stored energy discharged over the usable capacity
    solve_ms: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, float]:
        out = {
            "cost": round(self.cost, 4),
            "import_kwh": round(self.import_kwh, 3),
            "export_kwh": round(self.export_kwh, 3),
            "cycles": round(self.cycles, 3),
        }
        if self.solve_ms:
            out["solve_ms_median"] = round(float(np.median(self.solve_ms)), 3)
            out["solve_ms_p95"] = round(float(np.percentile(self.solve_ms, 95)), 3)
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


def default_timezone(scenario: Scenario) -> ZoneInfo:
    """The market's zone: Warsaw for PLN scenarios, Berlin (CET, also Brussels' offset) otherwise."""
    return ZoneInfo("Europe/Warsaw" if scenario.currency == "PLN" else "Europe/Berlin")


def no_battery(scenario: Scenario) -> StrategyTotals:
    grid_kwh = (scenario.load_w - scenario.pv_w) * scenario.step_h / 1000.0
    imported, exported = np.maximum(grid_kwh, 0.0), np.maximum(-grid_kwh, 0.0)
    cost = float(imported @ scenario.import_price - exported @ scenario.export_price)
    return StrategyTotals(cost, float(imported.sum()), float(exported.sum()), 0.0)


class _Meter:
    """Sums an interval's flows and costs as a strategy runs."""

    def __init__(self, params: BatteryParams) -> None:
        self.params = params
        self.cost = self.imported = self.exported = self.discharged_stored = 0.0

    def add(self, r: IntervalResult, import_price: float, export_price: float) -> None:
        self.cost += r.cost(import_price, export_price, self.params.wear_cost_per_kwh)
        self.imported += r.import_kwh
        self.exported += r.export_kwh
        self.discharged_stored += r.discharge_kwh / self.params.discharge_efficiency

    def totals(self, solve_ms: tuple[float, ...] = ()) -> StrategyTotals:
        usable = self.params.e_max_kwh - self.params.e_min_kwh
        return StrategyTotals(self.cost, self.imported, self.exported, self.discharged_stored / usable, solve_ms)


def self_consumption(scenario: Scenario, params: BatteryParams, initial_soc_pct: float) -> StrategyTotals:
    meter = _Meter(params)
    e = params.energy_kwh(initial_soc_pct)
    dt = scenario.step_h
    for pv, load, pi, pe in zip(
        scenario.pv_w.tolist(), scenario.load_w.tolist(), scenario.import_price.tolist(),
        scenario.export_price.tolist(), strict=True,
    ):
        r = step(params, e, mode_request_w("self_use", params, e, pv, load), pv, load, dt)
        meter.add(r, pi, pe)
        e = r.e_kwh
    return meter.totals()


def published_stop(scenario: Scenario, tz: ZoneInfo) -> npt.NDArray[np.intp]:
    """For each interval, the end (exclusive index) of the prices known at its start."""
    stops = np.empty(len(scenario), dtype=np.intp)
    step_s = scenario.step.total_seconds()
    cache: dict[tuple[object, int], int] = {}
    for i, epoch in enumerate(scenario.epoch_s().tolist()):
        local = datetime.fromtimestamp(epoch, tz)
        days = 2 if local.hour >= PUBLICATION_HOUR else 1
        key = (local.date(), days)
        if key not in cache:
            midnight = datetime.combine(local.date() + timedelta(days=days), datetime.min.time(), tz)
            cache[key] = int(round((midnight - scenario.start).total_seconds() / step_s))
        stops[i] = min(cache[key], len(scenario))
    return stops


def hemsd(
    scenario: Scenario,
    params: BatteryParams,
    initial_soc_pct: float,
    limits: GridLimits = GridLimits(),  # noqa: B008 - frozen
    forecast: str = "perfect",
    horizon_hours: float = 48.0,
    end_value: EndValue = DEFAULT_END_VALUE,
    tz: ZoneInfo | None = None,
    soc_step_kwh: float | None = None,
    hurdle_per_kwh: float = 0.0,
    margin_fraction: float = 0.0,
) -> StrategyTotals:
    if forecast not in FORECASTS:
        raise ValueError(f"forecast must be one of {', '.join(FORECASTS)}, got {forecast!r}")
    n, dt, spd = len(scenario), scenario.step_h, scenario.steps_per_day
    horizon_steps = max(1, round(horizon_hours / dt))
    stops = np.minimum(np.arange(n) + horizon_steps, n)
    if forecast == "realistic":
        stops = np.minimum(stops, published_stop(scenario, tz or default_timezone(scenario)))
    pv, load = scenario.pv_w, scenario.load_w
    pi_all, pe_all = scenario.import_price, scenario.export_price
    meter = _Meter(params)
    e = params.energy_kwh(initial_soc_pct)
    solve_ms: list[float] = []
    planning = replace(params, wear_cost_per_kwh=params.wear_cost_per_kwh + hurdle_per_kwh)
    constraints = PlanConstraints(first_slot_margin_per_kwh=margin_fraction * float(np.median(pi_all)))
    for i in range(n):
        pv_i, load_i, pi, pe = float(pv[i]), float(load[i]), float(pi_all[i]), float(pe_all[i])
        if forecast == "realistic" and i < spd:  # no day of history yet: plain self-use
            r = step(params, e, mode_request_w("self_use", params, e, pv_i, load_i), pv_i, load_i, dt, limits)
            meter.add(r, pi, pe)
            e = r.e_kwh
            continue
        stop = int(stops[i])
        if forecast == "perfect":
            pv_f, load_f = pv[i:stop], load[i:stop]
        else:
            pv_f = forecast_pv(pv[:i], stop - i, spd)
            load_f = forecast_load(load[:i], stop - i, spd)
        started = time.perf_counter()
        h = Horizon(np.full(stop - i, dt), pv_f, load_f, pi_all[i:stop], pe_all[i:stop])
        sol = solve(planning, limits, e, h, end_value.per_stored_kwh(params, h.import_price), constraints, soc_step_kwh)
        solve_ms.append((time.perf_counter() - started) * 1000.0)
        action = classify(params, sol.e_kwh[:1], h.dt_h[:1], pv_f[:1], load_f[:1], sol.battery_w[:1],
                          sol.pv_used_w[:1])[0]
        request = _request_w(action, float(sol.battery_w[0]), float(load_f[0] - pv_f[0]), load_i - pv_i)
        r = step(params, e, request, pv_i, load_i, dt, limits, curtail_export=pe < 0)
        meter.add(r, pi, pe)
        e = r.e_kwh
    return meter.totals(tuple(solve_ms))


def _request_w(action: str, planned_w: float, forecast_net_w: float, net_w: float) -> float:
    """The battery power requested when following a slot, given the real house.

    Self-use follows the house. Otherwise the planned power holds, and the house's departure
    from the forecast goes where the action sends it: an unexpected surplus into the battery
    (hold, charge), an unexpected deficit to the grid (hold, charge); when discharging the
    battery takes both, keeping the grid at its planned value. With a perfect forecast every
    action gives exactly the planned flows.
    """
    if action in ("self_use", "export_limit"):
        return net_w
    surprise = net_w - forecast_net_w  # + more deficit than forecast, - more surplus
    if action == "discharge":
        return planned_w + surprise
    return planned_w + min(surprise, 0.0)


def run_backtest(
    scenario: Scenario,
    params: BatteryParams,
    initial_soc_pct: float,
    limits: GridLimits = GridLimits(),  # noqa: B008 - frozen
    forecast: str = "perfect",
    horizon_hours: float = 48.0,
    end_value: EndValue = DEFAULT_END_VALUE,
    tz: ZoneInfo | None = None,
) -> BacktestResult:
    return BacktestResult(
        currency=scenario.currency,
        intervals=len(scenario),
        strategies={
            "no_battery": no_battery(scenario),
            "self_consumption": self_consumption(scenario, params, initial_soc_pct),
            "hemsd": hemsd(scenario, params, initial_soc_pct, limits, forecast, horizon_hours, end_value, tz),
        },
    )
