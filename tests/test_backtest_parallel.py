"""The backtest in several processes gives what it gives in one."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from test_backtest import make_scenario

from controller.physics import BatteryParams
from controller.sim import backtest
from controller.sim.recourse_ahead import day_runs, first_slot_values
from controller.sim.scenario import load_scenario
from controller.sim.settings import NO_LIMITS, PlannerSettings


def test_day_runs_cover_the_intervals_in_whole_days() -> None:
    runs = day_runs(10 * 24 + 5, 24, 4)
    assert [r.start for r in runs] == [0, 72, 144, 192]
    assert runs[-1].stop == 245
    assert all(a.stop == b.start for a, b in itertools.pairwise(runs))
    assert day_runs(50, 24) == [range(0, 24), range(24, 48), range(48, 50)]
    assert day_runs(30, 24, 8) == [range(0, 24), range(24, 30)]


@pytest.mark.parametrize("forecast", ["realistic", "perfect"])
def test_parallel_run_equals_the_sequential_one(tmp_path: Path, forecast: str) -> None:
    scenario = load_scenario(make_scenario(tmp_path, days=9))
    params = BatteryParams()
    settings = PlannerSettings(forecast=forecast, planner="recourse", soc_step_kwh=0.2)
    alone = backtest.run_backtest(scenario, params, 50.0, settings=settings, workers=1)
    told: list[int] = []
    shared = backtest.run_backtest(scenario, params, 50.0, settings=settings, progress=told.append, workers=2)
    assert told[-1] == 2 * len(scenario)
    for name, totals in alone.strategies.items():
        other = shared.strategies[name]
        assert (other.cost, other.import_kwh, other.export_kwh, other.cycles) == (
            totals.cost,
            totals.import_kwh,
            totals.export_kwh,
            totals.cycles,
        )
        assert totals.trace is not None
        assert other.trace is not None
        np.testing.assert_array_equal(other.trace.soc_pct, totals.trace.soc_pct)
        assert other.trace.actions == totals.trace.actions
        assert len(other.solve_ms) == len(totals.solve_ms)


def test_the_recourse_values_do_not_depend_on_where_a_run_starts(tmp_path: Path) -> None:
    scenario = load_scenario(make_scenario(tmp_path, days=6))
    params, limits = BatteryParams(), NO_LIMITS
    settings = PlannerSettings(forecast="realistic", planner="recourse", soc_step_kwh=0.2)
    whole = first_slot_values(scenario, params, limits, settings, range(len(scenario)))
    later = first_slot_values(scenario, params, limits, settings, range(96, len(scenario)))
    assert later.first == 96
    np.testing.assert_array_equal(later.after, whole.after[96:])
    assert np.all(np.isnan(whole.after[:24]))
