"""Receding-horizon replay of a scenario, against the baselines.

Strategies, each through the one model (:func:`controller.physics.step`):

- ``no_battery`` and ``self_consumption`` (:mod:`controller.sim.baselines`);
- ``yesterday_dp``: the deterministic planner on realistic prices with PV and load as they were
  the same time the day before (blind to a capacity charge and a feed-in cap);
- ``hemsd``: every interval the planner is solved over the horizon it can see
  (:mod:`controller.sim.forecasts`), against the scheme's capacity charge and feed-in cap, and
  the first slot is applied, as the daemon applies it (:mod:`controller.sim.decisions`);
- ``hemsd_peak_blind``, under a capacity charge: the same planner ignoring the peak.

Each is settled under the scheme (:func:`controller.sim.totals.settled`). How the planner runs
is :class:`controller.sim.settings.PlannerSettings`.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np

from controller.physics import Action, BatteryParams, GridLimits, step
from controller.planner import recourse
from controller.planner.deterministic import make_soc_grid
from controller.planner.periods import netting_period_s
from controller.settlement.prices import planning_limits, planning_prices
from controller.settlement.schemes import PER_SLOT, Scheme
from controller.sim.baselines import no_battery, self_consumption
from controller.sim.decisions import (
    MonthPeak,
    YearExport,
    capped_values,
    deterministic_decision,
    recourse_decision,
    recourse_peak_decision,
)
from controller.sim.forecasts import Forecasts, default_timezone
from controller.sim.recourse_ahead import FirstSlotValues, day_runs, first_slot_values, first_slot_values_of
from controller.sim.scenario import Scenario
from controller.sim.settings import MARGIN_FRACTION, NO_LIMITS, PERFECT, PeakSettings, PlannerSettings
from controller.sim.totals import BacktestResult, Meter, StrategyTotals, settled

YESTERDAY = "yesterday_dp"  # the baseline: a plain dynamic program on "same time yesterday"
PEAK_BLIND = "hemsd_peak_blind"  # under a capacity charge: hemsd's planner ignoring the peak
PARALLEL_DAYS = 28  # shorter scenarios run in one process: starting more may take longer than it saves
MAX_WORKERS = 8
RUNS_PER_WORKER = 4  # runs of days per process: the baseline takes one process a while


def default_workers(scenario: Scenario) -> int:
    """One process per core, but none beside this one for a scenario too short to gain by them."""
    days = len(scenario) // scenario.steps_per_day
    return 1 if days < PARALLEL_DAYS else min(os.cpu_count() or 1, MAX_WORKERS)


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
    elsewhere (:func:`controller.sim.recourse_ahead.first_slot_values`); None: here, a day at a time."""
    n, dt = len(scenario), scenario.step_h
    forecasts = Forecasts(scenario, params, settings)
    use_recourse = settings.planner == "recourse"
    # the month's peak so far sets each plan under a capacity charge: nothing worked out ahead
    ahead = use_recourse and settings.peak is None
    fraction = settings.margin_fraction
    if fraction is None:
        fraction = MARGIN_FRACTION if forecasts.realistic and not forecasts.persistence else 0.0
    if ahead and recourse_values is None:
        recourse_values = (
            first_slot_values_of(forecasts, limits, days) for days in day_runs(n, scenario.steps_per_day)
        )
    runs = iter(recourse_values or ())
    known = FirstSlotValues(0, np.empty((0, 0)), np.empty(0))
    grid = make_soc_grid(params, settings.soc_step_kwh or recourse.default_step_kwh(params))
    pv, load = scenario.pv_w, scenario.load_w
    import_price, export_price = scenario.import_price, scenario.export_price
    meter = Meter(params)
    e = params.energy_kwh(initial_soc_pct)
    solve_ms: list[float] = []
    month_peak = (
        MonthPeak(scenario, settings.timezone or default_timezone(scenario), settings.peak.window_h)
        if settings.peak is not None
        else None
    )
    year_export = (
        YearExport(scenario, settings.timezone or default_timezone(scenario), settings.feed_in_cap)
        if settings.feed_in_cap is not None
        else None
    )
    netting, elapsed, period = settings.netting_s, 0.0, -1  # the net metered in the period so far
    case: int | None = None  # under a capacity charge: the case of the interval before, as planned here
    for i in range(n):
        pv_i, load_i, pi, pe = float(pv[i]), float(load[i]), float(import_price[i]), float(export_price[i])
        if netting is not None and int(forecasts.epoch[i]) // netting != period:
            elapsed, period = 0.0, int(forecasts.epoch[i]) // netting
        if ahead and i >= known.first + known.after.shape[0]:
            known = next(runs)
        if not forecasts.planned(i):
            request, action, case = load_i - pv_i, Action.SELF_USE, None
        else:
            if use_recourse and settings.peak is not None and month_peak is not None:
                decision = recourse_peak_decision(
                    forecasts, limits, e, i, settings.peak, month_peak, case, year_export
                )
                case = decision.case
            elif use_recourse:
                capped = None if year_export is None else capped_values(forecasts, limits, e, i, year_export)
                if capped is None:
                    decision = recourse_decision(forecasts, limits, grid, known, e, i, elapsed)
                else:
                    decision = recourse_decision(forecasts, limits, grid, capped[0], e, i, elapsed, capped[1])
            else:
                decision = deterministic_decision(
                    forecasts, limits, e, i, elapsed, fraction, month_peak, year_export
                )
            request, action = decision.request_w, decision.action
            solve_ms.append(decision.solve_ms)
        r = step(params, e, request, pv_i, load_i, dt, limits, curtail_export=pe < 0)
        meter.add(r, pi, pe, str(action))
        elapsed += r.import_kwh - r.export_kwh
        if month_peak is not None:
            month_peak.add(i, r.import_kwh)
        if year_export is not None:
            year_export.add(i, r.import_kwh, r.export_kwh)
        e = r.e_kwh
        if progress is not None:
            progress(i + 1)
    return meter.totals(tuple(solve_ms))


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
    grid charging and export, and plan against a capacity charge (:mod:`controller.planner.peak`)
    and a yearly feed-in cap, with the export settled so far that year
    (:mod:`controller.planner.export_room`; under both, each plan against the cap is made by
    the peak search)."""
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
            feed_in_cap=scheme if scheme.export.yearly_cap_kwh is not None else None,
        )
        if scheme.capacity is not None:
            c = scheme.capacity
            peak = PeakSettings(c.price_per_kw_month * (1.0 + scheme.vat), c.minimum_kw, c.window_min / 60.0)
            settings = replace(settings, peak=peak)
    n = len(scenario)
    plain = replace(
        settings,
        forecast="yesterday",
        planner="deterministic",
        margin_fraction=0.0,
        peak=None,
        feed_in_cap=None,
    )
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
