"""Backtests on slices of the real scenarios against the perfect-foresight LP optimum.

The full-year figures (perfect and realistic forecasts) come from bench/bench_backtest.py.
"""

from __future__ import annotations

import pytest
from support.lp_reference import scenario_optimum
from support.shared import SHARED, needs_shared

from controller.physics import BatteryParams
from controller.sim import backtest
from controller.sim.baselines import no_battery
from controller.sim.scenario import load_scenario

SCENARIOS = SHARED / "scenarios"
WEEKS = 3


def names() -> list[str]:
    return sorted(p.name for p in SCENARIOS.glob("*.csv")) if SCENARIOS.is_dir() else []


@pytest.mark.slow
@needs_shared(SCENARIOS)
@pytest.mark.parametrize("name", names())
@pytest.mark.parametrize("start_day", [40, 180])
def test_perfect_forecasts_reach_99_percent_of_the_optimum(name: str, start_day: int) -> None:
    full = load_scenario(SCENARIOS / name)
    first = start_day * full.steps_per_day
    scenario = full.slice(first, first + WEEKS * 7 * full.steps_per_day)
    params = BatteryParams()
    none = no_battery(scenario).cost
    planned = backtest.hemsd(scenario, params, 50.0).cost
    optimum = scenario_optimum(params, scenario).energy_cost
    assert none - planned >= 0.99 * (none - optimum), (
        f"{(none - planned) / (none - optimum):.2%} of the optimum"
    )
