"""The recourse planner's solve as the daemon runs it: 48 h of 15-min slots (192), 10 kWh battery.

For windows of the 15-min scenario (generated household days without ../shared): the error table
of the four weeks of hindcasts before each window (controller.forecast.errors, K departures per
slot), then the time of one ``recourse.slot_values`` with the departures drawn independently and
with their transitions (errors that persist), interleaved on the same windows, at the daemon's
0.5 % SoC step and at 1 %. Prints median and p95 of each, the ratio persistent / independent and
the peak memory of one persistent solve (tracemalloc).

.venv/bin/python bench/bench_recourse.py [--runs 20]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np
import numpy.typing as npt
from bench_optimizer import STEPS, instances

from controller.forecast.errors import history_spread
from controller.physics import BatteryParams, GridLimits
from controller.planner import recourse
from controller.planner.plan import Horizon
from controller.sim.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "shared" / "scenarios" / "kn4_pl_rce_2025-26_15min_pln.csv"
FloatArray = npt.NDArray[np.float64]


def departures(count: int) -> list[tuple[Horizon, FloatArray, FloatArray]]:
    """Windows with the departures and transitions of the hindcasts before each."""
    _, horizons = instances(count)
    if SCENARIO.is_file():
        s = load_scenario(SCENARIO)
        pv, load, spd = s.pv_w, s.load_w, s.steps_per_day
        starts = np.linspace(0, len(s) - STEPS - 1, count).astype(int)
    else:
        rng = np.random.default_rng(2)
        spd = 96
        hours = np.arange(40 * spd) / 4.0
        pv = (
            rng.uniform(0.3, 1.0, hours.size) * 5000 * np.clip(np.sin((hours % 24 - 6) / 12 * np.pi), 0, None)
        )
        load = 300 + 900 * rng.random(hours.size) ** 3
        starts = np.full(count, pv.size)
    out = []
    for h, start in zip(horizons, starts.tolist(), strict=True):
        first = max(start - start % spd, 35 * spd)  # a day's start with five weeks of history before
        table = history_spread(pv[:first], load[:first], spd, STEPS)
        hour = ((start + np.arange(STEPS)) % spd) * 24 // spd
        out.append((h, table.spread_w(np.arange(STEPS) * 0.25, hour), table.transitions_for(hour)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    params, limits = BatteryParams(), GridLimits()
    windows = departures(args.runs)
    print(f"{len(windows)} windows of {STEPS} slots, K={windows[0][1].shape[1]} departures per slot")
    for step_pct in (0.5, 1.0):
        step = step_pct / 100.0 * params.capacity_kwh
        independent, persistent = [], []
        for h, errors, chances in windows:
            for times, transitions in ((independent, None), (persistent, chances)):
                started = time.perf_counter()
                recourse.slot_values(params, limits, h, errors, 0.1, step, transitions)
                times.append((time.perf_counter() - started) * 1000.0)
        tracemalloc.start()
        h, errors, chances = windows[0]
        recourse.slot_values(params, limits, h, errors, 0.1, step, chances)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        ind, per = np.array(independent), np.array(persistent)
        print(
            f"SoC step {step_pct:g} %: independent median {np.median(ind):.1f} ms p95 {np.percentile(ind, 95):.1f}; "
            f"persistent median {np.median(per):.1f} ms p95 {np.percentile(per, 95):.1f}; "
            f"ratio {np.median(per / ind):.2f}; peak {peak:.1f} MiB",
            flush=True,
        )


if __name__ == "__main__":
    main()
