"""Planner against the HiGHS linear program: 48 h at 15-min steps (192 slots), 10 kWh battery.

Prints median and p95 solve time of the DP and of the LP reference, measured in the same run
(interleaved, on the same instances), their ratio, the largest cost gap, and the peak memory
of one solve (tracemalloc). Instances: real 48 h windows of the 15-min scenario when
../shared/scenarios is there, generated household days otherwise.

.venv/bin/python bench/bench_optimizer.py [--runs 60]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.lp_reference import solve_lp

import controller.planner.deterministic as optimizer
from controller.physics import BatteryParams, GridLimits
from controller.planner.plan import Horizon
from controller.sim.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "shared" / "scenarios" / "kn4_pl_rce_2025-26_15min_pln.csv"
STEPS = 192


def instances(count: int) -> tuple[str, list[Horizon]]:
    if SCENARIO.is_file():
        s = load_scenario(SCENARIO)
        starts = np.linspace(0, len(s) - STEPS - 1, count).astype(int)
        return f"{SCENARIO.name} windows", [
            Horizon(
                np.full(STEPS, 0.25),
                s.pv_w[i : i + STEPS],
                s.load_w[i : i + STEPS],
                s.import_price[i : i + STEPS],
                s.export_price[i : i + STEPS],
            )
            for i in starts
        ]
    rng = np.random.default_rng(1)
    out = []
    hours = np.arange(STEPS) * 0.25
    for _ in range(count):
        sun = np.clip(np.sin((hours % 24 - 6) / 12 * np.pi), 0, None)
        price = 0.9 + 0.4 * np.sin(hours / 24 * 2 * np.pi + rng.uniform(0, 6)) + rng.normal(0, 0.05, STEPS)
        out.append(
            Horizon(
                np.full(STEPS, 0.25),
                rng.uniform(2000, 6000) * sun,
                300 + 900 * rng.random(STEPS) ** 3,
                price,
                price * 0.45,
            )
        )
    return "generated household days", out


def percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.median(ms)), float(np.percentile(ms, 95))


def peak_mib(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="instances, each solved once by each method")
    args = parser.parse_args()
    params, limits = BatteryParams(), GridLimits()
    e0 = params.energy_kwh(50)
    source, horizons = instances(args.runs)
    dp_ms, lp_ms, gaps = [], [], []
    for h in horizons:
        end_value = float(np.percentile(h.import_price, 30)) * params.discharge_efficiency
        started = time.perf_counter()
        dp = optimizer.solve(params, limits, e0, h, end_value)
        dp_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        lp = solve_lp(params, limits, e0, h.dt_h, h.pv_w, h.load_w, h.import_price, h.export_price, end_value)
        lp_ms.append((time.perf_counter() - started) * 1000)
        gaps.append(abs(dp.objective - lp.objective) / max(abs(lp.objective), 1e-9))

    # The grid DP (taper, export price above import price) on the same instances, for reference.
    convex_check = optimizer.is_convex
    optimizer.is_convex = lambda *_: False  # type: ignore[assignment]
    grid_ms = []
    for h in horizons[: max(5, args.runs // 4)]:
        started = time.perf_counter()
        optimizer.solve(params, limits, e0, h, 0.5)
        grid_ms.append((time.perf_counter() - started) * 1000)
    grid_peak = peak_mib(lambda: optimizer.solve(params, limits, e0, horizons[0], 0.5))
    optimizer.is_convex = convex_check

    dp_med, dp_p95 = percentiles(dp_ms)
    lp_med, lp_p95 = percentiles(lp_ms)
    grid_med, grid_p95 = percentiles(grid_ms)
    h0 = horizons[0]
    dp_peak = peak_mib(lambda: optimizer.solve(params, limits, e0, h0, 0.5))
    lp_peak = peak_mib(
        lambda: solve_lp(
            params, limits, e0, h0.dt_h, h0.pv_w, h0.load_w, h0.import_price, h0.export_price, 0.5
        )
    )
    print(f"48 h at 15 min ({STEPS} slots), 10 kWh battery, {len(horizons)} instances: {source}")
    print(f"DP (exact convex path)  median {dp_med:7.2f} ms   p95 {dp_p95:7.2f} ms   peak {dp_peak:6.2f} MiB")
    print(f"LP reference (HiGHS)    median {lp_med:7.2f} ms   p95 {lp_p95:7.2f} ms   peak {lp_peak:6.2f} MiB")
    print(f"ratio DP/LP             median {dp_med / lp_med:7.3f}      p95 {dp_p95 / lp_p95:7.3f}")
    print(f"largest cost gap DP vs LP: {max(gaps):.2e} (relative)")
    print(
        f"DP grid path (step {optimizer.default_soc_step_kwh(params):.3f} kWh, used for taper or export > import): "
        f"median {grid_med:.2f} ms, p95 {grid_p95:.2f} ms, peak {grid_peak:.2f} MiB"
    )


if __name__ == "__main__":
    main()
