"""Receding-horizon replay of a scenario, against two baselines.

Strategies, each through the one model (:func:`controller.physics.step`):

- ``no_battery``: the house as is; every surplus exported, every deficit imported.
- ``self_consumption``: the battery stores PV surplus and covers deficits; no grid charging,
  no export from the battery.
- ``hemsd``: every interval the planner is solved over the horizon it can see and the first
  slot is applied. After the deterministic planner, self-use slots follow the real house and the
  others hold the planned power (see :func:`controller.physics.followed_request_w`). After the recourse planner the
  executor picks the slot's mode from what the house really does, weighed against the
  planner's value of the energy the slot leaves stored (:func:`controller.planner.recourse.decide_known`),
  as the daemon's control loop does on every reading.

``perfect`` forecasts give the planner the true future. ``realistic`` ones give it only the
prices a day-ahead market has published (the next local day's from 13:00) and PV/load from
:mod:`controller.forecast.history`, fed with the past alone; ``PlannerSettings.exact`` gives
parts of them (PV, load) as they will be measured instead, to tell what each part costs.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.config.models import ExecutorConfig
from controller.forecast.errors import EXACT_PARTS, DayErrors, ErrorTable, hindcast_day, settled_days
from controller.forecast.history import forecast_load, forecast_pv
from controller.physics import (
    Action,
    BatteryParams,
    GridLimits,
    IntervalResult,
    followed_request_w,
    mode_request_w,
    step,
)
from controller.planner import recourse
from controller.planner.deterministic import make_soc_grid, solve
from controller.planner.peak import PeakCharge, held_request_w, plan_against_peak, recourse_against_peak
from controller.planner.periods import Periods, merged, merged_departures, netting_period_s, periods_of
from controller.planner.plan import EndValue, Horizon, PlanConstraints, SlotValues, classify
from controller.settlement.engine import Bill, Metered, settle
from controller.settlement.prices import planning_limits, planning_prices
from controller.settlement.schemes import PER_SLOT, Scheme
from controller.sim.scenario import Scenario
from controller.sim.service_forecast import ServiceForecast

FloatArray = npt.NDArray[np.float64]
# yesterday: the realistic prices with PV and load as they were at the same time a day before
# (the plain baseline every backtest shows, planned by the deterministic dynamic program)
FORECASTS = ("perfect", "realistic", "yesterday")
# deterministic: controller.planner.deterministic on the forecast; recourse: controller.planner.recourse on the
# forecast and the spread of past forecast errors (realistic forecasts; none with perfect ones)
PLANNERS = ("deterministic", "recourse")
PUBLICATION_HOUR = 13  # local hour from which the next day's day-ahead prices are known
DEFAULT_END_VALUE = EndValue(import_percentile=30.0)
# Realistic forecasts: decision margin, times the horizon's median gap between import and
# export price (what a kWh of PV is worth more stored than exported: what a wrong guess costs).
MARGIN_FRACTION = 0.06
NO_LIMITS = GridLimits()


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


def default_timezone(scenario: Scenario) -> ZoneInfo:
    """The market's zone: Warsaw for PLN scenarios, Berlin (CET, also Brussels' offset) otherwise."""
    return ZoneInfo("Europe/Warsaw" if scenario.currency == "PLN" else "Europe/Berlin")


def no_battery(scenario: Scenario) -> StrategyTotals:
    grid_w = scenario.load_w - scenario.pv_w
    grid_kwh = grid_w * scenario.step_h / 1000.0
    imported, exported = np.maximum(grid_kwh, 0.0), np.maximum(-grid_kwh, 0.0)
    costs = imported * scenario.import_price - exported * scenario.export_price
    n = len(scenario)
    trace = Trace(
        np.full(n, np.nan), np.zeros(n), grid_w, costs, ("self_use",) * n, imported, exported, np.zeros(n)
    )
    return StrategyTotals(float(costs.sum()), float(imported.sum()), float(exported.sum()), 0.0, trace=trace)


class _Meter:
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


def self_consumption(scenario: Scenario, params: BatteryParams, initial_soc_pct: float) -> StrategyTotals:
    meter = _Meter(params)
    e = params.energy_kwh(initial_soc_pct)
    dt = scenario.step_h
    for pv, load, pi, pe in zip(
        scenario.pv_w.tolist(),
        scenario.load_w.tolist(),
        scenario.import_price.tolist(),
        scenario.export_price.tolist(),
        strict=True,
    ):
        r = step(params, e, mode_request_w(Action.SELF_USE, params, e, pv, load), pv, load, dt)
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
            cache[key] = round((midnight - scenario.start).total_seconds() / step_s)
        stops[i] = min(cache[key], len(scenario))
    return stops


@dataclass(frozen=True, slots=True)
class PeakSettings:
    """A capacity charge as the planner weighs it: per kW the month's peak rises (VAT in), the
    charge's minimum and its averaging window."""

    price_per_kw: float
    minimum_kw: float = 0.0
    window_h: float = 0.25


class _MonthPeak:
    """The month's highest window-average import power so far, as the intervals are metered."""

    def __init__(self, scenario: Scenario, tz: ZoneInfo, window_h: float) -> None:
        self.scenario, self.tz = scenario, tz
        self.per = max(1, round(window_h / scenario.step_h))
        self.month = (0, 0)
        self.peak_kw = self.window_kwh = 0.0
        self.filled = 0

    def add(self, i: int, import_kwh: float) -> None:
        local = self.scenario.time(i).astimezone(self.tz)
        if (local.year, local.month) != self.month:
            self.month, self.peak_kw, self.window_kwh, self.filled = (local.year, local.month), 0.0, 0.0, 0
        self.window_kwh += import_kwh
        self.filled += 1
        if self.filled == self.per:
            self.peak_kw = max(self.peak_kw, self.window_kwh / (self.per * self.scenario.step_h))
            self.window_kwh, self.filled = 0.0, 0


@dataclass(frozen=True)
class PlannerSettings:
    """How the backtest runs the planner (the rest comes from the battery and the scenario)."""

    forecast: str = "perfect"
    horizon_hours: float = 48.0
    end_value: EndValue = DEFAULT_END_VALUE
    timezone: ZoneInfo | None = None  # the market's zone; from the scenario when None
    # The deterministic planner's decision margin as a fraction of the horizon's median
    # import-export gap; None: MARGIN_FRACTION with realistic forecasts, else none (the recourse
    # planner prices the forecast's uncertainty itself and takes no margin).
    margin_fraction: float | None = None
    soc_step_kwh: float | None = None
    planner: str = "deterministic"
    # the scheme's export rules, as the planners take them
    allow_grid_charge: bool = True
    allow_battery_export: bool = True
    # a capacity charge the planner plans against (controller.planner.peak)
    peak: PeakSettings | None = None
    # the settlement period (s) within which import and export net out, where it is longer than
    # the intervals: planned per period (controller.planner.periods); None: per interval
    netting_s: int | None = None
    # parts of a realistic forecast (pv, load) given as they will be measured, the others still
    # forecast: what each part's forecast costs (bench/attribution.py)
    exact: frozenset[str] = frozenset()

    @property
    def rules(self) -> PlanConstraints:
        """The export rules alone (the recourse planner takes no decision margin)."""
        return PlanConstraints(self.allow_grid_charge, self.allow_battery_export)

    def __post_init__(self) -> None:
        if not self.exact <= EXACT_PARTS:
            raise ValueError(f"exact must be among {sorted(EXACT_PARTS)}, got {sorted(self.exact)}")
        if self.forecast not in FORECASTS:
            raise ValueError(f"forecast must be one of {', '.join(FORECASTS)}, got {self.forecast!r}")
        if self.planner not in PLANNERS:
            raise ValueError(f"planner must be one of {', '.join(PLANNERS)}, got {self.planner!r}")
        if not self.horizon_hours > 0:
            raise ValueError(f"horizon_hours must be > 0, got {self.horizon_hours!r}")


PERFECT = PlannerSettings()


class _Forecasts:
    """What the planner sees at each interval: the horizon it plans over and the value of the
    energy left at its end (for the recourse planner also the departures and their chances).
    Each depends only on the scenario's past and the published prices, not on the battery."""

    def __init__(
        self,
        scenario: Scenario,
        params: BatteryParams,
        settings: PlannerSettings,
        load_w: FloatArray | None = None,
    ) -> None:
        self.scenario, self.params, self.settings = scenario, params, settings
        # the load history the forecasts are made from (the caller may fill in the past as it goes)
        self.load_w = scenario.load_w if load_w is None else load_w
        n, dt = len(scenario), scenario.step_h
        self.realistic = settings.forecast in ("realistic", "yesterday")
        self.persistence = settings.forecast == "yesterday"
        stops = np.minimum(np.arange(n) + max(1, round(settings.horizon_hours / dt)), n)
        if self.realistic:
            stops = np.minimum(
                stops, published_stop(scenario, settings.timezone or default_timezone(scenario))
            )
        self.stops = stops
        self.service = (
            ServiceForecast(scenario)
            if self.realistic and not self.persistence and ServiceForecast.present(scenario)
            else None
        )
        self.epoch = scenario.epoch_s()
        self.spread = (
            _Spread(scenario, round(settings.horizon_hours / dt), settings.exact)
            if settings.planner == "recourse" and self.realistic and not self.persistence
            else None
        )

    def planned(self, i: int) -> bool:
        """Whether interval ``i`` is planned: realistic forecasts need a day of history first
        (before it, plain self-use)."""
        return not (self.realistic and i < self.scenario.steps_per_day)

    def horizon(self, i: int) -> tuple[Horizon, float]:
        """The horizon seen at interval ``i`` and the value per kWh left stored at its end."""
        s, stop, spd = self.scenario, int(self.stops[i]), self.scenario.steps_per_day
        pv, load = s.pv_w, self.load_w
        if self.persistence:
            yesterday = i - spd + np.arange(stop - i) % spd
            pv_f, load_f = pv[yesterday], load[yesterday]
        elif self.realistic:
            pv_f, load_f = forecast_pv(pv[:i], stop - i, spd), forecast_load(load[:i], stop - i, spd)
            if self.service is not None:
                pv_f, load_f = self.service.blend(i, stop, pv_f, load_f)
            exact = self.settings.exact
            pv_f = pv[i:stop] if "pv" in exact else pv_f
            load_f = load[i:stop] if "load" in exact else load_f
        else:
            pv_f, load_f = pv[i:stop], load[i:stop]
        h = Horizon(np.full(stop - i, s.step_h), pv_f, load_f, s.import_price[i:stop], s.export_price[i:stop])
        # Past the scenario's end nothing is bought or sold: energy left then is worth
        # nothing, as for the optimum the results are compared with.
        value = 0.0 if stop == len(s) else self.settings.end_value.per_stored_kwh(self.params, h.import_price)
        return h, value

    def departures(self, i: int, n: int) -> tuple[FloatArray, FloatArray | None]:
        return self.spread.at(i, n) if self.spread is not None else (np.zeros((n, 1)), None)

    def periods(self, i: int, n: int) -> Periods | None:
        """The settlement periods of the ``n`` intervals from ``i`` (None: planned per interval)."""
        netting = self.settings.netting_s
        return None if netting is None else periods_of(self.epoch[i : i + n], netting)


@dataclass(frozen=True)
class FirstSlotValues:
    """For a run of intervals, the recourse planner's value of the energy stored after each
    interval's first slot (the grid's points, in the case nearest what the house really did; NaN
    where nothing is planned) and how long each took (ms). The state of the battery plays no
    part, so runs of intervals can be worked out apart (in parallel) and in any order."""

    first: int
    after: FloatArray  # (intervals, grid points)
    solve_ms: FloatArray  # (intervals,)


def first_slot_values(
    scenario: Scenario,
    params: BatteryParams,
    limits: GridLimits,
    settings: PlannerSettings,
    intervals: range,
) -> FirstSlotValues:
    """The recourse planner's values after the first slot of each of ``intervals``."""
    return _first_slot_values(_Forecasts(scenario, params, settings), limits, intervals)


def _first_slot_values(forecasts: _Forecasts, limits: GridLimits, intervals: range) -> FirstSlotValues:
    s, params, settings = forecasts.scenario, forecasts.params, forecasts.settings
    grid_points = make_soc_grid(params, settings.soc_step_kwh or recourse.default_step_kwh(params)).e.size
    after = np.full((len(intervals), grid_points), np.nan)
    solve_ms = np.zeros(len(intervals))
    for row, i in enumerate(intervals):
        if not forecasts.planned(i):
            continue
        h, value = forecasts.horizon(i)
        started = time.perf_counter()
        errors, chances = forecasts.departures(i, h.dt_h.size)
        periods = forecasts.periods(i, h.dt_h.size)
        if periods is not None:  # the value after the period (what is metered in it plays no part)
            errors, chances = merged_departures(errors, chances, h, periods)
            h = merged(h, periods)
        values = recourse.slot_values(
            params, limits, h, errors, value, settings.soc_step_kwh, chances, settings.rules
        )
        net_w = float(s.load_w[i]) - float(s.pv_w[i])
        after[row] = values.after_slot[0, recourse.known_case(values, 0, net_w)]
        solve_ms[row] = (time.perf_counter() - started) * 1000.0
    return FirstSlotValues(intervals.start, after, solve_ms)


def hemsd(
    scenario: Scenario,
    params: BatteryParams,
    initial_soc_pct: float,
    limits: GridLimits = NO_LIMITS,
    settings: PlannerSettings = PERFECT,
    progress: Callable[[int], None] | None = None,
    recourse_values: Iterable[FirstSlotValues] | None = None,
) -> StrategyTotals:
    """Re-plan every interval over what the planner can see; apply the first slot to the real house.

    ``progress`` is told how many intervals are done, after each. ``recourse_values``: the
    recourse planner's values of consecutive runs of intervals from the first, worked out
    elsewhere (:func:`first_slot_values`); None: here, a day at a time."""
    n, dt = len(scenario), scenario.step_h
    forecasts = _Forecasts(scenario, params, settings)
    use_recourse = settings.planner == "recourse"
    # the month's peak so far sets each plan under a capacity charge: nothing worked out ahead
    ahead = use_recourse and settings.peak is None
    fraction = settings.margin_fraction
    if fraction is None:
        fraction = MARGIN_FRACTION if forecasts.realistic and not forecasts.persistence else 0.0
    if ahead and recourse_values is None:
        recourse_values = (
            _first_slot_values(forecasts, limits, days) for days in day_runs(n, scenario.steps_per_day)
        )
    runs = iter(recourse_values or ())
    known = FirstSlotValues(0, np.empty((0, 0)), np.empty(0))
    grid = make_soc_grid(params, settings.soc_step_kwh or recourse.default_step_kwh(params))
    pv, load = scenario.pv_w, scenario.load_w
    import_price, export_price = scenario.import_price, scenario.export_price
    meter = _Meter(params)
    e = params.energy_kwh(initial_soc_pct)
    solve_ms: list[float] = []
    month_peak = (
        _MonthPeak(scenario, settings.timezone or default_timezone(scenario), settings.peak.window_h)
        if settings.peak is not None
        else None
    )
    netting, elapsed, period = settings.netting_s, 0.0, -1  # the net metered in the period so far
    for i in range(n):
        pv_i, load_i, pi, pe = float(pv[i]), float(load[i]), float(import_price[i]), float(export_price[i])
        action = Action.SELF_USE
        if netting is not None and int(forecasts.epoch[i]) // netting != period:
            elapsed, period = 0.0, int(forecasts.epoch[i]) // netting
        if ahead and i >= known.first + known.after.shape[0]:
            known = next(runs)
        if not forecasts.planned(i):
            request = load_i - pv_i
        elif use_recourse and settings.peak is not None and month_peak is not None:
            started = time.perf_counter()
            h, value = forecasts.horizon(i)
            errors, chances = forecasts.departures(i, h.dt_h.size)
            paid = max(month_peak.peak_kw, settings.peak.minimum_kw)
            charge = PeakCharge(settings.peak.price_per_kw, paid, settings.peak.window_h)
            rules = settings.rules
            against = recourse_against_peak(
                params, limits, e, h, value, errors, chances, settings.soc_step_kwh, charge, rules
            )
            decision = _decided(
                params, against.limits, against.policy.values, e, load_i - pv_i, load_i, dt, pi, pe, rules
            )
            solve_ms.append((time.perf_counter() - started) * 1000.0)
            request = followed_request_w(decision.action, decision.battery_w, load_i - pv_i, load_i - pv_i)
            request = held_request_w(request, load_i - pv_i, max(against.cap_kw, paid) * 1000.0)
            action = decision.action
        elif use_recourse:
            started = time.perf_counter()
            after = known.after[i - known.first]
            values = SlotValues(
                float(grid.e[0]), grid.delta, after[None, None, :], np.zeros((1, 1)), np.zeros(1)
            )
            rules = settings.rules
            if netting is None:
                decision = _decided(params, limits, values, e, load_i - pv_i, load_i, dt, pi, pe, rules)
                # the executor decides on the real house, as the daemon reads it
                request = followed_request_w(
                    decision.action, decision.battery_w, load_i - pv_i, load_i - pv_i
                )
            else:  # on the rest of the period: this interval as measured, the rest as forecast
                rest = _rest_of_period(forecasts, i, pv_i, load_i, elapsed)
                net_w = float(rest.load_w[0] - rest.pv_w[0])
                decision = _decided(
                    params,
                    limits,
                    values,
                    e,
                    net_w,
                    float(rest.load_w[0]),
                    float(rest.dt_h[0]),
                    float(rest.import_price[0]),
                    float(rest.export_price[0]),
                    rules,
                )
                request = decision.battery_w  # the period's power: only its net is settled
            solve_ms.append(float(known.solve_ms[i - known.first]) + (time.perf_counter() - started) * 1000.0)
            action = decision.action
        else:
            started = time.perf_counter()
            h, value = forecasts.horizon(i)
            periods = forecasts.periods(i, h.dt_h.size)
            if periods is not None:
                h = merged(h, periods, elapsed)
            gap = float(np.median(h.import_price - h.export_price))
            constraints = PlanConstraints(
                allow_grid_charge=settings.allow_grid_charge,
                allow_battery_export=settings.allow_battery_export,
                self_use_margin_per_kwh=fraction * max(gap, 0.0),
            )
            held_w = math.inf
            if settings.peak is not None and month_peak is not None:
                paid = max(month_peak.peak_kw, settings.peak.minimum_kw)
                charge = PeakCharge(settings.peak.price_per_kw, paid, settings.peak.window_h)
                chosen = plan_against_peak(
                    params, limits, e, h, value, constraints, settings.soc_step_kwh, charge
                )
                sol = chosen.solution
                # as the daemon holds it: the cap, or the plan's own peak where none was needed
                held_kw = chosen.cap_kw if math.isfinite(chosen.cap_kw) else chosen.peak_kw
                held_w = max(held_kw, paid) * 1000.0
            else:
                sol = solve(params, limits, e, h, value, constraints, settings.soc_step_kwh)
            first = slice(0, 1)
            action = classify(
                params,
                sol.e_kwh[first],
                h.dt_h[first],
                h.pv_w[first],
                h.load_w[first],
                sol.battery_w[first],
                sol.pv_used_w[first],
            )[0]
            solve_ms.append((time.perf_counter() - started) * 1000.0)
            decided_on_w = float(h.load_w[0] - h.pv_w[0])
            request = followed_request_w(action, float(sol.battery_w[0]), decided_on_w, load_i - pv_i)
            if periods is not None:
                request = float(sol.battery_w[0])  # the period's power: only its net is settled
            # as the daemon's executor: the cap, or the slot's planned import where it goes above
            request = held_request_w(request, load_i - pv_i, max(held_w, float(sol.grid_w[0])))
        r = step(params, e, request, pv_i, load_i, dt, limits, curtail_export=pe < 0)
        meter.add(r, pi, pe, str(action))
        elapsed += r.import_kwh - r.export_kwh
        if month_peak is not None:
            month_peak.add(i, r.import_kwh)
        e = r.e_kwh
        if progress is not None:
            progress(i + 1)
    return meter.totals(tuple(solve_ms))


def _decided(
    params: BatteryParams,
    limits: GridLimits,
    values: SlotValues,
    e_kwh: float,
    net_w: float,
    load_w: float,
    dt_h: float,
    import_price: float,
    export_price: float,
    rules: PlanConstraints,
) -> recourse.ModeChoice:
    """The executor's decision on the house as measured, as the daemon's makes it: the best mode
    against the value of the energy the first slot of ``values`` leaves stored, as the inverter
    can follow it."""
    _, followed = recourse.decide_followed(
        params, limits, values, 0, e_kwh, net_w, load_w, dt_h, import_price, export_price, IDLE_STEP_W, rules
    )
    return followed


def _rest_of_period(forecasts: _Forecasts, i: int, pv_w: float, load_w: float, elapsed_kwh: float) -> Horizon:
    """The rest of interval ``i``'s settlement period as one slot (:func:`merged`): the interval
    as measured, the period's later intervals as forecast, the net metered so far in its load."""
    h, _ = forecasts.horizon(i)
    periods = forecasts.periods(i, h.dt_h.size)
    assert periods is not None
    pv, load = h.pv_w.copy(), h.load_w.copy()
    pv[0], load[0] = pv_w, load_w
    return merged(replace(h, pv_w=pv, load_w=load), periods, elapsed_kwh)


def day_runs(n: int, steps_per_day: int, runs: int | None = None) -> list[range]:
    """``range(n)`` cut into at most ``runs`` (None: a day each) runs of whole days, as even as
    may be (a run of days builds its table of forecast errors once a day, as one run of them all
    would)."""
    days = -(-n // steps_per_day)
    runs = days if runs is None else runs
    bounds = [min(n, round(days * k / runs) * steps_per_day) for k in range(runs + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


class _Spread:
    """Net-load departures for the recourse planner from hindcasts of the scenario's past
    (:func:`controller.forecast.errors.history_spread`, each day's hindcast kept once made)."""

    def __init__(self, scenario: Scenario, n_ahead: int, exact: frozenset[str] = frozenset()) -> None:
        self.scenario, self.n_ahead, self.exact = scenario, n_ahead, exact
        self.spd = scenario.steps_per_day
        self.days: dict[int, DayErrors] = {}
        self.table: tuple[int, ErrorTable] | None = None

    def at(self, i: int, n: int) -> tuple[FloatArray, FloatArray]:
        """The departures (n, K) of the ``n`` slots from interval ``i`` and their transitions."""
        today = i // self.spd
        if self.table is None or self.table[0] != today:
            s, now = self.scenario, today * self.spd
            wanted = settled_days(now, self.spd, self.n_ahead)
            self.days = {
                d: self.days[d]
                if d in self.days
                else hindcast_day(s.pv_w, s.load_w, self.spd, d, self.n_ahead, now, self.exact)
                for d in wanted
            }
            self.table = (today, ErrorTable.from_days(self.days.values(), self.spd))
        ahead = np.arange(n)
        table, hour = self.table[1], ((i + ahead) % self.spd) * 24 // self.spd
        return table.spread_w(ahead * self.scenario.step_h, hour), table.transitions_for(hour)


YESTERDAY = "yesterday_dp"  # the baseline: a plain dynamic program on "same time yesterday"
PEAK_BLIND = "hemsd_peak_blind"  # under a capacity charge: hemsd's planner ignoring the peak
IDLE_STEP_W = ExecutorConfig().power_step_w  # the daemon's smallest power step, as configured by default
PARALLEL_DAYS = 28  # shorter scenarios run in one process: starting more may take longer than it saves
MAX_WORKERS = 8
RUNS_PER_WORKER = 4  # runs of days per process: the baseline takes one process a while


def default_workers(scenario: Scenario) -> int:
    """One process per core, but none beside this one for a scenario too short to gain by them."""
    days = len(scenario) // scenario.steps_per_day
    return 1 if days < PARALLEL_DAYS else min(os.cpu_count() or 1, MAX_WORKERS)


def run_backtest(
    scenario: Scenario,
    params: BatteryParams,
    initial_soc_pct: float,
    limits: GridLimits = NO_LIMITS,
    settings: PlannerSettings = PERFECT,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    scheme: Scheme = PER_SLOT,
) -> BacktestResult:
    """Every strategy on the scenario; ``progress`` counts the intervals of the two planned ones.

    ``workers``: processes to plan in (None: :func:`default_workers`; 1: here alone). With more,
    the yesterday_dp baseline runs beside hemsd, and the recourse planner's values, which do not
    depend on the battery's state, are worked out a run of days per process; hemsd then decides
    interval by interval here as they come in. The results are those of one process.

    Every strategy is settled under ``scheme`` (:func:`controller.settlement.engine.settle`): its
    cost is the bill plus battery wear. The planners see the scheme's per-slot prices and export
    rules (:mod:`controller.settlement.prices`): both planners honour the rules on the battery's
    grid charging and export, and plan against a capacity charge (:mod:`controller.planner.peak`)."""
    tz = settings.timezone or default_timezone(scenario)
    settled_on = scenario
    if not scheme.per_slot:
        step_s = int(scenario.step.total_seconds())
        ip, ep = planning_prices(
            scheme, scenario.epoch_s(), step_s, scenario.import_price, scenario.export_price, tz
        )
        scenario = replace(scenario, import_price=ip, export_price=ep)
        limits = planning_limits(scheme.rules, limits, float(scenario.pv_w.max(initial=0.0)))
        grid_charge, battery_export = scheme.rules.planner_flags()
        settings = replace(
            settings,
            allow_grid_charge=grid_charge,
            allow_battery_export=battery_export,
            netting_s=netting_period_s(scheme, scenario.step.total_seconds()),
        )
        if scheme.capacity is not None:
            c = scheme.capacity
            peak = PeakSettings(c.price_per_kw_month * (1.0 + scheme.vat), c.minimum_kw, c.window_min / 60.0)
            settings = replace(settings, peak=peak)
    n = len(scenario)
    plain = replace(settings, forecast="yesterday", planner="deterministic", margin_fraction=0.0, peak=None)
    workers = default_workers(scenario) if workers is None else workers
    if workers <= 1:
        yesterday = hemsd(scenario, params, initial_soc_pct, limits, plain, progress)
        own = hemsd(
            scenario,
            params,
            initial_soc_pct,
            limits,
            settings,
            None if progress is None else lambda done: progress(n + done),
        )
    else:
        # spawn, not fork: a fork of a process with threads (the CLI's, a test runner's) may hang
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            baseline = pool.submit(hemsd, scenario, params, initial_soc_pct, limits, plain)
            values = None
            if settings.planner == "recourse" and settings.peak is None:
                days = day_runs(n, scenario.steps_per_day, RUNS_PER_WORKER * workers)
                runs = [pool.submit(first_slot_values, scenario, params, limits, settings, d) for d in days]
                values = (run.result() for run in runs)
            own = hemsd(scenario, params, initial_soc_pct, limits, settings, progress, values)
            yesterday = baseline.result()
        if progress is not None:
            progress(2 * n)
    strategies = {
        "no_battery": no_battery(scenario),
        "self_consumption": self_consumption(scenario, params, initial_soc_pct),
        YESTERDAY: yesterday,
        "hemsd": own,
    }
    if settings.peak is not None:  # what the same planner pays when it ignores the peak
        strategies[PEAK_BLIND] = hemsd(
            scenario, params, initial_soc_pct, limits, replace(settings, peak=None)
        )
    return BacktestResult(
        currency=scenario.currency,
        intervals=n,
        strategies={name: settled(totals, settled_on, scheme, tz) for name, totals in strategies.items()},
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
