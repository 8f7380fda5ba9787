"""Wall times of year-long realistic backtests and of a planner what-if sweep, in one process and
in one per core (the default), with their results checked equal.

- the hourly year (../shared/scenarios, --hourly: a file name part; default the 2022 Belgian one)
  backtested with realistic forecasts and the recourse planner at the backtest's 1 % SoC step,
  as ``hemsd backtest FILE --forecast realistic`` runs it (every baseline too);
- a 30-min year: the 15-min Polish scenario averaged over pairs of intervals (about ten months);
- ``hemsd simulate --strategy planner`` of 20 battery sizes (1..20 kWh) over the 2019 German year.

Each is run with ``workers=1`` (the reference: everything in this process, in turn) and with the
default (one process per core); the results must be equal but for the solve times.

.venv/bin/python bench/bench_backtest_year.py [--only backtest|simulate] [--no-reference]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from controller.physics import BatteryParams
from controller.sim import backtest
from controller.sim.forecasts import default_timezone
from controller.sim.scenario import Scenario, load_scenario
from controller.sim.settings import PlannerSettings
from controller.sim.variants import Variant
from controller.sim.whatif import sweep

SCENARIOS = Path(__file__).resolve().parents[2] / "shared" / "scenarios"


def half_hourly(s: Scenario) -> Scenario:
    """``s`` (15-min) averaged over pairs of intervals."""
    pairs = len(s) // 2

    def mean(a: np.ndarray) -> np.ndarray:
        return np.asarray(a[: 2 * pairs].reshape(pairs, 2).mean(axis=1), dtype=np.float64)

    return replace(
        s,
        name=s.name + " (30 min)",
        step=2 * s.step,
        import_price=mean(s.import_price),
        export_price=mean(s.export_price),
        pv_w=mean(s.pv_w),
        load_w=mean(s.load_w),
        pv_forecast_w=None,
        load_forecast_w=None,
    )


def without_times(result: object) -> object:
    if isinstance(result, dict):
        return {k: without_times(v) for k, v in result.items() if "_ms" not in k}
    return result


def timed_backtest(s: Scenario, workers: int | None) -> tuple[float, object]:
    params = BatteryParams()
    settings = PlannerSettings(
        forecast="realistic", planner="recourse", soc_step_kwh=0.01 * params.capacity_kwh
    )
    started = time.perf_counter()
    result = backtest.run_backtest(s, params, 50.0, settings=settings, workers=workers)
    return time.perf_counter() - started, without_times(result.to_dict())


def timed_sweep(s: Scenario, workers: int | None) -> tuple[float, object]:
    base = BatteryParams()
    started = time.perf_counter()
    result = sweep(
        s,
        base,
        Variant(base.capacity_kwh),
        [Variant(float(kwh)) for kwh in range(1, 21)],
        strategy="planner",
        tz=default_timezone(s),
        workers=workers,
    )
    return time.perf_counter() - started, result.to_dict()


def compare(
    label: str, run: Callable[[Scenario, int | None], tuple[float, object]], s: Scenario, reference: bool
) -> None:
    wall, result = run(s, None)
    line = f"{label}: {len(s)} intervals, {os.cpu_count()} cores: default workers {wall:.1f} s"
    if reference:
        alone, expected = run(s, 1)
        same = "equal" if result == expected else "DIFFERENT"
        line += f"; one process {alone:.1f} s (x{alone / wall:.2f}); results {same}"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("backtest", "simulate"))
    parser.add_argument("--hourly", default="be_2022", help="part of the hourly scenario's file name")
    parser.add_argument("--no-reference", action="store_true", help="skip the runs in one process")
    args = parser.parse_args()
    if not SCENARIOS.is_dir():
        sys.exit(f"no scenarios at {SCENARIOS}")
    reference = not args.no_reference
    if args.only != "simulate":
        (hourly,) = sorted(SCENARIOS.glob(f"*{args.hourly}*hourly*.csv"))
        compare(f"backtest {hourly.name}", timed_backtest, load_scenario(hourly), reference)
        pl = half_hourly(load_scenario(SCENARIOS / "kn4_pl_rce_2025-26_15min_pln.csv"))
        compare(f"backtest {pl.name}", timed_backtest, pl, reference)
    if args.only != "backtest":
        de = load_scenario(SCENARIOS / "kn4_de_2019_hourly_eur.csv")
        compare("simulate 20 sizes, planner, kn4_de_2019", timed_sweep, de, reference)


if __name__ == "__main__":
    main()
