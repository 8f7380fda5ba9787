"""Planner against the HiGHS linear program: 48 h at 15-min steps (192 slots), 10 kWh battery.

Prints median and p95 solve time of the DP and of the LP reference, measured in the same run
(interleaved, on the same instances), their ratio, the largest cost gap, and the peak memory
of one solve (tracemalloc). Then the whole plan as the daemon makes it (``plan()`` of both
planners at the 0.5 % SoC step) without and with battery goals (a target of 80 % 7 h ahead and a
50 % reserve for 12 h), interleaved on the same instances. Instances: real 48 h windows of the
15-min scenario when ../shared/scenarios is there, generated household days otherwise.

.venv/bin/python bench/bench_optimizer.py [--runs 60]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.lp_reference import solve_lp

import controller.planner.deterministic as optimizer
from controller.physics import BatteryParams, GridLimits
from controller.planner import recourse
from controller.planner.goals import NO_GOALS, SocGoals, SocReserve, SocTarget
from controller.planner.inputs import PricedSlot
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


def goal_times(params: BatteryParams, horizons: list[Horizon]) -> dict[tuple[str, bool], list[float]]:
    """Milliseconds of each planner's whole plan, without and with goals, on the same instances."""
    start = datetime(2026, 1, 12, tzinfo=UTC)
    quarter = timedelta(minutes=15)
    goals = SocGoals(
        (SocTarget(80.0, start + timedelta(hours=7)),), (SocReserve(50.0, start + timedelta(hours=12)),)
    )
    errors = np.tile([-600.0, -300.0, -100.0, 0.0, 100.0, 300.0, 600.0], (STEPS, 1))
    times: dict[tuple[str, bool], list[float]] = {}
    for h in horizons:
        prices = [
            PricedSlot(start + i * quarter, start + (i + 1) * quarter, float(pi), float(pe))
            for i, (pi, pe) in enumerate(zip(h.import_price, h.export_price, strict=True))
        ]
        common = {"soc_pct": 30.0, "params": params, "prices": prices, "pv_w": h.pv_w, "load_w": h.load_w}
        step = 0.005 * params.capacity_kwh
        for with_goals in (False, True):
            chosen = goals if with_goals else NO_GOALS
            started = time.perf_counter()
            optimizer.plan(**common, soc_step_kwh=step, goals=chosen)  # type: ignore[arg-type]
            times.setdefault(("deterministic", with_goals), []).append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            recourse.plan(**common, errors_w=errors, soc_step_kwh=step, goals=chosen)  # type: ignore[arg-type]
            times.setdefault(("recourse", with_goals), []).append((time.perf_counter() - started) * 1000)
    return times


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
    plans = goal_times(params, horizons[: max(5, args.runs // 4)])
    for kind in ("deterministic", "recourse"):
        without, with_goals = percentiles(plans[(kind, False)]), percentiles(plans[(kind, True)])
        print(
            f"{kind} plan without goals median {without[0]:7.2f} ms p95 {without[1]:7.2f}; "
            f"with goals median {with_goals[0]:7.2f} ms p95 {with_goals[1]:7.2f} "
            f"(x{with_goals[0] / without[0]:.2f})"
        )


if __name__ == "__main__":
    main()
