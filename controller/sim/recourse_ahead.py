"""The recourse planner's values worked out ahead of the replay.

Against the value of the energy each interval's first slot leaves stored the executor picks the
interval's mode (:mod:`controller.sim.decisions`). The values depend only on what the planner
sees, not on the state of the battery, so runs of whole days can be worked out apart, in other
processes, and handed to the replay as they come in.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.physics import BatteryParams, GridLimits
from controller.planner import recourse
from controller.planner.deterministic import make_soc_grid
from controller.planner.periods import merged, merged_departures
from controller.sim.forecasts import Forecasts
from controller.sim.scenario import Scenario
from controller.sim.settings import PlannerSettings

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FirstSlotValues:
    """For a run of intervals, the recourse planner's value of the energy stored after each
    interval's first slot (the grid's points, its cases weighed by how likely each is given what
    the house really did and the case of the interval before,
    :func:`controller.planner.recourse.case_weights`; NaN where nothing is planned) and how long
    each took (ms). The state of the battery plays no part, so runs of intervals can be worked
    out apart (in parallel) and in any order."""

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
    return first_slot_values_of(Forecasts(scenario, params, settings), limits, intervals)


def first_slot_values_of(forecasts: Forecasts, limits: GridLimits, intervals: range) -> FirstSlotValues:
    s, params, settings = forecasts.scenario, forecasts.params, forecasts.settings
    grid_points = make_soc_grid(params, settings.soc_step_kwh or recourse.default_step_kwh(params)).e.size
    after = np.full((len(intervals), grid_points), np.nan)
    solve_ms = np.zeros(len(intervals))
    # the case of the interval before, as the plan made at its start saw it (where planned per interval)
    before = _case_of(forecasts, intervals.start - 1) if intervals else None
    for row, i in enumerate(intervals):
        if not forecasts.planned(i):
            before = None
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
        after[row] = recourse.known_value(values, 0, net_w, before)
        before = recourse.known_case(values, 0, net_w) if periods is None else None
        solve_ms[row] = (time.perf_counter() - started) * 1000.0
    return FirstSlotValues(intervals.start, after, solve_ms)


def _case_of(forecasts: Forecasts, i: int) -> int | None:
    """The case of interval ``i`` nearest what the house did, among the departures the plan
    made at its start weighed (None: not planned, or planned per settlement period)."""
    if i < 0 or not forecasts.planned(i) or forecasts.periods(i, 1) is not None:
        return None
    h, _ = forecasts.horizon(i)
    errors, _ = forecasts.departures(i, 1)
    s = forecasts.scenario
    departure = float(s.load_w[i]) - float(s.pv_w[i]) - float(h.load_w[0] - max(float(h.pv_w[0]), 0.0))
    return int(np.abs(errors[0] - departure).argmin())


def day_runs(n: int, steps_per_day: int, runs: int | None = None) -> list[range]:
    """``range(n)`` cut into at most ``runs`` (None: a day each) runs of whole days, as even as
    may be (a run of days builds its table of forecast errors once a day, as one run of them all
    would)."""
    days = -(-n // steps_per_day)
    runs = days if runs is None else runs
    bounds = [min(n, round(days * k / runs) * steps_per_day) for k in range(runs + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]
