"""The recourse planner's solve as the daemon runs it: 48 h of 15-min slots (192) and, for the
longer slots' wider band of charge powers, 48 h of hourly slots (48); 10 kWh battery.

For windows of the 15-min and of the hourly scenario (generated household days without
../shared): the error table of the four weeks of hindcasts before each window
(controller.forecast.errors, K departures per slot), then the time of one
``recourse.slot_values`` with the departures drawn independently and with their transitions
(errors that persist), of the daemon's whole solve (``recourse.solve_recourse``: the values and
the plan's forward pass, persistent), and of the HiGHS linear program of the same window (the
deterministic problem, tests/support/lp_reference.py), interleaved on the same windows, at the
daemon's 0.5 % SoC step and at the backtest's 1 %. Prints median and p95 of each, the persistent
values' time over the LP's window by window (median, p95), the ratio persistent / independent
and the peak memory of one persistent solve (tracemalloc); last, the targets for 15-min slots
(the daemon's whole plan at 0.5 % <= 40 ms, the persistent values at 1 % <= 2 x the LP) and the
same figures for hourly slots.

With ``--against CHECKOUT`` (another checkout of hemsd, e.g. a worktree of main) it compares
instead: that checkout's recourse modules are loaded beside this one's in the same process and
both are timed on each window in turn (the order alternating), in thread CPU time, which other
work on a shared machine disturbs far less than wall time; printed are the medians of each and of
this one's time over the other's, window by window.

.venv/bin/python bench/bench_recourse.py [--runs 20] [--only 15min|hourly] [--against CHECKOUT]"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.lp_reference import solve_lp

from controller.forecast.errors import history_spread
from controller.physics import BatteryParams, GridLimits
from controller.planner import recourse
from controller.planner.plan import Horizon
from controller.sim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "shared" / "scenarios"
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Case:
    """Windows of one slot length: the scenario they are cut from (generated days without it)."""

    name: str
    scenario: str
    dt_h: float

    @property
    def steps(self) -> int:
        return round(48 / self.dt_h)


CASES = (
    Case("15min", "kn4_pl_rce_2025-26_15min_pln.csv", 0.25),
    Case("hourly", "kn4_be_2022_hourly_eur.csv", 1.0),
)


def departures(case: Case, count: int) -> list[tuple[Horizon, FloatArray, FloatArray]]:
    """Windows with the departures and transitions of the hindcasts before each."""
    steps, path = case.steps, SCENARIOS / case.scenario
    if path.is_file():
        s = load_scenario(path)
        pv, load, spd = s.pv_w, s.load_w, s.steps_per_day
        imp, exp = s.import_price, s.export_price
        starts = np.linspace(35 * spd, len(s) - steps - 1, count).astype(int)
    else:
        rng = np.random.default_rng(2)
        spd = round(24 / case.dt_h)
        hours = np.arange(40 * spd) * case.dt_h
        sun = np.clip(np.sin((hours % 24 - 6) / 12 * np.pi), 0, None)
        pv = rng.uniform(0.3, 1.0, hours.size) * 5000 * sun
        load = 300 + 900 * rng.random(hours.size) ** 3
        imp = 0.9 + 0.4 * np.sin(hours / 24 * 2 * np.pi) + rng.normal(0, 0.05, hours.size)
        exp = imp * 0.45
        starts = np.linspace(35 * spd, hours.size - steps - 1, count).astype(int)
    out = []
    for start in starts.tolist():
        window = slice(start, start + steps)
        h = Horizon(np.full(steps, case.dt_h), pv[window], load[window], imp[window], exp[window])
        first = max(start - start % spd, 35 * spd)  # a day's start with five weeks of history before
        table = history_spread(pv[:first], load[:first], spd, steps)
        hour = ((start + np.arange(steps)) % spd) * 24 // spd
        lead = np.arange(steps) * case.dt_h
        out.append((h, table.spread_w(lead, hour), table.transitions_for(hour)))
    return out


def measure(case: Case, runs: int) -> list[str]:
    """Prints each SoC step's figures for the case's windows; returns the summary lines."""
    params, limits = BatteryParams(), GridLimits()
    windows = departures(case, runs)
    print(
        f"{case.name}: {len(windows)} windows of {case.steps} slots, "
        f"K={windows[0][1].shape[1]} departures per slot",
        flush=True,
    )
    summary = []
    for step_pct, name in ((0.5, "the daemon's"), (1.0, "the backtest's")):
        step = step_pct / 100.0 * params.capacity_kwh
        independent, persistent, lp, planned = [], [], [], []
        for h, errors, chances in windows:
            started = time.perf_counter()
            solve_lp(params, limits, 5.0, h.dt_h, h.pv_w, h.load_w, h.import_price, h.export_price, 0.1)
            lp.append((time.perf_counter() - started) * 1000.0)
            for times, transitions in ((independent, None), (persistent, chances)):
                started = time.perf_counter()
                recourse.slot_values(params, limits, h, errors, 0.1, step, transitions)
                times.append((time.perf_counter() - started) * 1000.0)
            started = time.perf_counter()
            recourse.solve_recourse(params, limits, 5.0, h, errors, 0.1, step, chances)
            planned.append((time.perf_counter() - started) * 1000.0)
        tracemalloc.start()
        h, errors, chances = windows[0]
        recourse.slot_values(params, limits, h, errors, 0.1, step, chances)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        ind, per, lps, plan = np.array(independent), np.array(persistent), np.array(lp), np.array(planned)
        lp_median, ratio = float(np.median(lps)), per / lps
        print(
            f"  SoC step {step_pct:g} % ({name}): LP median {lp_median:.1f} ms p95 {np.percentile(lps, 95):.1f}; "
            f"independent median {np.median(ind):.1f} ms p95 {np.percentile(ind, 95):.1f} "
            f"(x{np.median(ind) / lp_median:.2f} LP); "
            f"persistent median {np.median(per):.1f} ms p95 {np.percentile(per, 95):.1f} "
            f"(x{np.median(ratio):.2f} LP, p95 x{np.percentile(ratio, 95):.2f}); "
            f"persistent / independent {np.median(per / ind):.2f}; "
            f"whole plan (values and forward pass) median {np.median(plan):.1f} ms "
            f"p95 {np.percentile(plan, 95):.1f}; peak {peak:.1f} MiB",
            flush=True,
        )
        target = case.name == "15min"
        if step_pct == 0.5:
            summary.append(
                f"{case.name}: the daemon's whole plan at 0.5 %: median {np.median(plan):.1f} ms, "
                f"p95 {np.percentile(plan, 95):.1f} ms{' (target <= 40 ms)' if target else ''}; "
                f"LP median {lp_median:.1f} ms"
            )
        else:
            summary.append(
                f"{case.name}: the persistent values at 1 % over the LP, window by window: median "
                f"x{np.median(ratio):.2f}, p95 x{np.percentile(ratio, 95):.2f}"
                f"{' (target <= 2)' if target else ''}"
            )
    return summary


def other_recourse(checkout: Path) -> Any:
    """The recourse module of another checkout, with its own values module (the modules they
    import besides are this checkout's)."""
    planner = checkout / "controller" / "planner"
    modules = {}
    for name in ("recourse_values", "recourse"):
        source = (planner / f"{name}.py").read_text()
        source = source.replace(
            "from controller.planner.recourse_values import", "from other_recourse_values import"
        )
        module = types.ModuleType(f"other_{name}")
        sys.modules[module.__name__] = module
        exec(compile(source, str(planner / f"{name}.py"), "exec"), module.__dict__)
        modules[name] = module
    return modules["recourse"]


def compare(case: Case, runs: int, checkout: Path) -> list[str]:
    """This checkout's persistent values and whole plan against ``checkout``'s, window by window."""
    params, limits = BatteryParams(), GridLimits()
    other = other_recourse(checkout)
    windows = departures(case, runs)
    summary = []
    for step_pct in (0.5, 1.0):
        step = step_pct / 100.0 * params.capacity_kwh
        times: dict[tuple[str, str], list[float]] = {}
        for i, (h, errors, chances) in enumerate(windows):
            for who, module in (("this", recourse), ("other", other))[:: 1 if i % 2 else -1]:
                started = time.thread_time()
                module.slot_values(params, limits, h, errors, 0.1, step, chances)
                times.setdefault((who, "values"), []).append((time.thread_time() - started) * 1000.0)
                started = time.thread_time()
                module.solve_recourse(params, limits, 5.0, h, errors, 0.1, step, chances)
                times.setdefault((who, "plan"), []).append((time.thread_time() - started) * 1000.0)
        for what in ("values", "plan"):
            mine, theirs = np.array(times[("this", what)]), np.array(times[("other", what)])
            summary.append(
                f"{case.name} at {step_pct:g} %, {what}: this {np.median(mine):.1f} ms, "
                f"{checkout} {np.median(theirs):.1f} ms (thread CPU medians); this / that "
                f"window by window: median {np.median(mine / theirs):.3f}"
            )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", choices=[case.name for case in CASES])
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    summary = []
    for case in CASES:
        if args.only in (None, case.name):
            summary += (
                measure(case, args.runs) if args.against is None else compare(case, args.runs, args.against)
            )
    print("\n".join(summary))


if __name__ == "__main__":
    main()
