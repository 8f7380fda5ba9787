"""Full-period backtests of every scenario against the perfect-foresight LP optimum.

For each scenario in ../shared/scenarios: the LP optimum over the whole period (HiGHS, sparse;
8760-29184 steps), then no_battery, self_consumption and hemsd with perfect and realistic
forecasts, each with the deterministic planner (controller.planner.deterministic) and the recourse planner
(controller.planner.recourse, the daemon's default, its executor deciding on the real house). Prints each
strategy's savings over no_battery as a share of the optimum's, the planner's solve time
(median, p95) and each run's wall time.

.venv/bin/python bench/bench_backtest.py [--scenario pl] [--forecast perfect|realistic|both]
    [--planner deterministic|recourse|both] [--soc-step-pct 0.5]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.lp_reference import scenario_optimum

from controller.physics import BatteryParams
from controller.sim import backtest
from controller.sim.baselines import no_battery, self_consumption
from controller.sim.scenario import load_scenario
from controller.sim.settings import PlannerSettings

SCENARIOS = Path(__file__).resolve().parents[2] / "shared" / "scenarios"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="", help="only scenarios whose file name contains this")
    parser.add_argument("--forecast", choices=("perfect", "realistic", "both"), default="both")
    parser.add_argument(
        "--planner",
        choices=("deterministic", "recourse", "both"),
        default="both",
    )
    parser.add_argument(
        "--soc-step-pct",
        type=float,
        default=0.5,
        help="the planners' grid of stored energy, %% of capacity (default 0.5, as the daemon plans; "
        "1 takes a half (15-min slots) to a tenth (hourly slots) of the time)",
    )
    args = parser.parse_args()
    if not SCENARIOS.is_dir():
        sys.exit(f"no scenarios at {SCENARIOS}")
    params = BatteryParams()  # the README's default battery: 10 kWh, 10-100 %, 5 kW, 0.95/0.95
    step_kwh = args.soc_step_pct / 100.0 * params.capacity_kwh
    modes = ("perfect", "realistic") if args.forecast == "both" else (args.forecast,)
    planners = ("deterministic", "recourse") if args.planner == "both" else (args.planner,)
    runs = [(m, p) for m in modes for p in planners]
    for path in sorted(p for p in SCENARIOS.glob("*.csv") if args.scenario in p.name):
        s = load_scenario(path)
        started = time.perf_counter()
        lp = scenario_optimum(params, s)
        lp_s = time.perf_counter() - started
        none = no_battery(s).cost
        best = none - lp.energy_cost
        own = self_consumption(s, params, 50.0)
        print(
            f"{path.name}: {len(s)} intervals ({s.filled_intervals} filled), no_battery {none:.2f} {s.currency}; "
            f"planners at a {args.soc_step_pct:g} % SoC step",
            flush=True,
        )
        print(
            f"  LP optimum                cost {lp.energy_cost:10.2f}  saves {best:9.2f}  100.00 %  "
            f"(HiGHS {lp_s:.1f} s incl. setup)",
            flush=True,
        )
        print(
            f"  self_consumption          cost {own.cost:10.2f}  saves {none - own.cost:9.2f}  "
            f"{(none - own.cost) / best:7.2%}",
            flush=True,
        )
        for mode, planner in runs:
            started = time.perf_counter()
            settings = PlannerSettings(forecast=mode, planner=planner, soc_step_kwh=step_kwh)
            run = backtest.hemsd(s, params, 50.0, settings=settings)
            wall = time.perf_counter() - started
            med, p95 = np.median(run.solve_ms), np.percentile(run.solve_ms, 95)
            label = f"{mode} {planner}"
            print(
                f"  hemsd {label:<19} cost {run.cost:10.2f}  saves {none - run.cost:9.2f}  "
                f"{(none - run.cost) / best:7.2%}  (solve median {med:.2f} ms, p95 {p95:.2f} ms; "
                f"backtest {wall:.0f} s, {run.cycles:.0f} cycles)",
                flush=True,
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
