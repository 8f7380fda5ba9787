"""Where realistic backtests lose money against the optimum: by day and month, and by cause.

For each scenario of ``bench/houses.py`` (the same windows; ``--whole`` for the shared years) it
runs hemsd (the recourse planner at the backtest's 1 % SoC step) four times, one backtest at a time:

- ``realistic``: PV and load forecast from history, as every realistic backtest;
- ``pv exact``: the PV as it will be measured, the load still forecast;
- ``load exact``: the load as it will be measured, the PV still forecast;
- ``both exact``: both as measured; only the prices are still those published so far.

and splits each day's loss (hemsd's cost minus the perfect-foresight LP optimum's, that day) into

- decision: ``both exact`` - optimum (the price horizon, the decision rule and the SoC grid);
- pv: ``realistic`` - ``pv exact`` (what the PV forecast costs, its error model included);
- load: ``realistic`` - ``load exact``;
- joint: the rest (both forecasts wrong together cost more, or less, than each alone).

It prints the window's shares of the optimum's savings, the months, and the days that lose the
most with what the PV forecast made at midnight said against what came, and how much each of
hemsd and the optimum bought from the grid to charge the battery that day. A day is cut at UTC
midnight; energy left stored at a day's end counts on the day it is used, so single days move
money between them, months much less. The first day of a window is self-use (the realistic
forecasts need a day of history), and its loss is printed apart.

With ``--calibration`` it runs no backtest and checks the recourse planner's departures on the
shared scenarios' winter months (November-February; ``--months``) instead, for the forecasts issued at 02:00
UTC a day ahead: where the measured net load of each daylight slot ranks among the departures
(K + 1 places: 0.5/K of the slots expected in each end place, 1/K in each other), on all days and
on days whose PV forecast is low, middle or high against the last 14 days' most; and how the
error summed over ten daylight hours (08-18 UTC) spreads, measured against the departures'
chain of cases (simulated) and against cases drawn each hour apart.

.venv/bin/python bench/attribution.py [--only NAME] [--whole] [--days 8] [--calibration [--months 5,6,7,8]]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from houses import DATA, scenarios
from support.lp_reference import scenario_optimum

from controller.forecast.errors import ERROR_DAYS, QUANTILES
from controller.forecast.history import forecast_load, forecast_pv
from controller.physics import BatteryParams
from controller.sim import backtest
from controller.sim.baselines import no_battery
from controller.sim.forecasts import Spread
from controller.sim.scenario import Scenario
from controller.sim.settings import PlannerSettings

FloatArray = npt.NDArray[np.float64]
REALISTIC = PlannerSettings(forecast="realistic", planner="recourse")


@dataclass(frozen=True)
class Run:
    label: str
    exact: frozenset[str]


RUNS = (
    Run("realistic", frozenset()),
    Run("pv exact", frozenset({"pv"})),
    Run("load exact", frozenset({"load"})),
    Run("both exact", frozenset({"pv", "load"})),
)
CAUSES = ("decision", "pv", "load", "joint")


@dataclass(frozen=True)
class Days:
    """Per day of one scenario: what each run and the optimum paid, and what went on."""

    name: str
    first_day: str  # ISO date of the first day
    none: FloatArray  # no battery
    optimum: FloatArray
    runs: dict[str, FloatArray]
    pv_forecast_kwh: FloatArray  # the day's PV as forecast from history at its midnight
    pv_kwh: FloatArray
    grid_charge_kwh: FloatArray  # hemsd (realistic): bought to charge the battery
    optimum_grid_charge_kwh: FloatArray
    wall_s: dict[str, float]

    def causes(self) -> dict[str, FloatArray]:
        r = self.runs
        decision = r["both exact"] - self.optimum
        pv = r["realistic"] - r["pv exact"]
        load = r["realistic"] - r["load exact"]
        joint = r["realistic"] - self.optimum - decision - pv - load
        return {"decision": decision, "pv": pv, "load": load, "joint": joint}


def _per_day(values: FloatArray, spd: int) -> FloatArray:
    days = -(-values.size // spd)
    padded = np.zeros(days * spd)
    padded[: values.size] = values
    summed: FloatArray = padded.reshape(days, spd).sum(axis=1)
    return summed


def attribute(name: str, s: Scenario) -> Days:
    params = BatteryParams()
    spd, dt = s.steps_per_day, s.step_h
    lp = scenario_optimum(params, s)
    lp_import, lp_export = np.maximum(lp.grid_kwh, 0.0), np.maximum(-lp.grid_kwh, 0.0)
    lp_cost = lp_import * s.import_price - lp_export * s.export_price
    surplus_kwh = np.maximum(s.pv_w - s.load_w, 0.0) * dt / 1000.0
    lp_charge = np.maximum(np.diff(lp.e_kwh, prepend=params.energy_kwh(50.0)), 0.0) / params.charge_efficiency
    runs, walls = {}, {}
    grid_charge = np.zeros(len(s))
    for run in RUNS:
        started = time.perf_counter()
        totals = backtest.hemsd(s, params, 50.0, settings=replace(REALISTIC, exact=run.exact))
        walls[run.label] = time.perf_counter() - started
        trace = totals.trace
        assert trace is not None
        runs[run.label] = _per_day(trace.cost, spd)
        if not run.exact:
            charge = np.maximum(-trace.battery_w, 0.0) * dt / 1000.0
            grid_charge = np.maximum(charge - surplus_kwh, 0.0)
    days = -(-len(s) // spd)
    pv_forecast = np.zeros(days)
    for d in range(1, days):
        stop = min(len(s), (d + 1) * spd)
        pv_forecast[d] = forecast_pv(s.pv_w[: d * spd], stop - d * spd, spd).sum() * dt / 1000.0
    return Days(
        name,
        s.time(0).date().isoformat(),
        _per_day(no_battery(s).trace.cost, spd),  # type: ignore[union-attr]
        _per_day(lp_cost, spd),
        runs,
        pv_forecast,
        _per_day(s.pv_w * dt / 1000.0, spd),
        _per_day(grid_charge, spd),
        _per_day(np.maximum(lp_charge - surplus_kwh, 0.0), spd),
        walls,
    )


def report(d: Days, s: Scenario, worst: int) -> None:
    best = float(d.none.sum() - d.optimum.sum())
    shares = "  ".join(f"{k} {(d.none.sum() - v.sum()) / best:.1%}" for k, v in d.runs.items())
    walls = ", ".join(f"{w:.0f}" for w in d.wall_s.values())
    print(f"\n== {d.name}: optimum saves {best:.2f} {s.currency}; {shares}  (wall s {walls})")
    causes = d.causes()
    loss = d.runs["realistic"] - d.optimum
    print(f"  loss {loss.sum():.2f} = " + " + ".join(f"{c} {causes[c].sum():.2f}" for c in CAUSES))
    later = float(d.none[1:].sum() - d.optimum[1:].sum())
    print(
        f"  the first day (self-use: no forecast before a day of history) loses {loss[0]:.2f}; "
        f"from the second day on realistic saves {(d.none[1:].sum() - d.runs['realistic'][1:].sum()) / later:.1%}"
    )
    months = np.array(
        [s.time(min(i * s.steps_per_day, len(s) - 1)).strftime("%Y-%m") for i in range(loss.size)]
    )
    print(f"  {'month':<8} {'saves':>8} {'share':>7} {'loss':>7} " + " ".join(f"{c:>8}" for c in CAUSES))
    for m in dict.fromkeys(months.tolist()):
        at = months == m
        saves = float(d.none[at].sum() - d.optimum[at].sum())
        share = (d.none[at].sum() - d.runs["realistic"][at].sum()) / saves if saves > 0 else float("nan")
        print(
            f"  {m:<8} {saves:>8.2f} {share:>7.1%} {loss[at].sum():>7.2f} "
            + " ".join(f"{causes[c][at].sum():>8.2f}" for c in CAUSES)
        )
    print(
        f"  worst days: {'date':<10} {'loss':>6} "
        + " ".join(f"{c:>8}" for c in CAUSES)
        + "  PV kWh forecast/measured  grid-charged kWh hemsd/optimum"
    )
    for day in np.argsort(-loss)[:worst].tolist():
        date = s.time(day * s.steps_per_day).date().isoformat()
        print(
            f"              {date:<10} {loss[day]:>6.2f} "
            + " ".join(f"{causes[c][day]:>8.2f}" for c in CAUSES)
            + f"  {d.pv_forecast_kwh[day]:>9.1f} / {d.pv_kwh[day]:<9.1f}"
            f"  {d.grid_charge_kwh[day]:>9.1f} / {d.optimum_grid_charge_kwh[day]:.1f}"
        )
    over = d.pv_forecast_kwh > 1.3 * d.pv_kwh + 0.5
    under = d.pv_kwh > 1.3 * d.pv_forecast_kwh + 0.5
    fair = ~(over | under)
    print("  days by the PV forecast at midnight:  " + "  ".join(
        f"{label} {int(at.sum())} days, loss {loss[at].sum():.2f} (pv {causes['pv'][at].sum():.2f})"
        for label, at in (("over", over), ("under", under), ("within 30 %", fair))
    ))  # fmt: skip


CALIBRATION_MONTHS = (11, 12, 1, 2)
ISSUE_HOUR = 2
LEVELS = ((0.0, 0.25, "low"), (0.25, 0.5, "middle"), (0.5, math.inf, "high"))  # forecast / most


def pv_most(pv_w: FloatArray, steps_per_day: int, days: int = 14) -> FloatArray:
    """The most PV (W) measured in each hour of the day over the last ``days`` whole days of a
    series that starts at a day's start: (24,)."""
    whole = min(days, pv_w.size // steps_per_day)
    end = pv_w.size - pv_w.size % steps_per_day
    recent = pv_w[end - whole * steps_per_day : end].reshape(whole * 24, steps_per_day // 24)
    most: FloatArray = recent.max(axis=1).reshape(whole, 24).max(axis=0)
    return most


def calibration(name: str, s: Scenario, months: tuple[int, ...] = CALIBRATION_MONTHS) -> None:
    """The departures' ranks and the day-sum spread (see the module's docstring)."""
    spd = s.steps_per_day
    n = spd  # a day ahead
    spread = Spread(s, 2 * spd)
    rng = np.random.default_rng(0)
    k = QUANTILES
    ranks = {label: np.zeros(k + 1, dtype=np.int64) for label in ("all", *(lv[2] for lv in LEVELS))}
    window = slice((8 - ISSUE_HOUR) * spd // 24, (18 - ISSUE_HOUR) * spd // 24)
    sums, chain_sd, apart_sd = [], [], []
    for d in range(ERROR_DAYS + 1, len(s) // spd - 1):
        i = d * spd + ISSUE_HOUR * spd // 24
        if s.time(i).month not in months:
            continue
        pv_f, load_f = forecast_pv(s.pv_w[:i], n, spd), forecast_load(s.load_w[:i], n, spd)
        error = (s.load_w[i : i + n] - s.pv_w[i : i + n]) - (load_f - pv_f)
        departures, chances = spread.at(i, n)
        most = pv_most(s.pv_w[: d * spd], spd)[((i + np.arange(n)) % spd) * 24 // spd]
        daylight = most > 0.05 * max(float(most.max()), 1.0)
        if not daylight.any():
            continue
        rank = (departures < error[:, None]).sum(axis=1)[daylight]
        level = float(pv_f[daylight].sum() / most[daylight].sum())
        label = next(lv[2] for lv in LEVELS if lv[0] <= level < lv[1])
        for key in ("all", label):
            np.add.at(ranks[key], rank, 1)
        sums.append(float(error[window].sum()))
        paths = 2000
        case = rng.integers(0, k, paths)
        total = np.zeros(paths)
        for j in range(window.stop):
            if j > 0:
                case = np.minimum(
                    (rng.random(paths)[:, None] > chances[j].cumsum(axis=1)[case]).sum(axis=1), k - 1
                )
            if j >= window.start:
                total += departures[j, case]
        chain_sd.append(float(total.std()))
        apart_sd.append(float(np.sqrt(departures[window].var(axis=1).sum())))
    print(f"\n== {name}: departures of the forecasts issued at {ISSUE_HOUR:02d}:00 UTC, months {months}")
    for key, counts in ranks.items():
        below = counts[: (k + 1) // 2].sum() / max(int(counts.sum()), 1)
        print(
            f"  {key:<7} ranks {' '.join(f'{c:>4}' for c in counts)}  ({int(counts.sum())} slots; below the median {below:.0%})"
        )
    step_kwh = s.step_h / 1000.0
    print(
        f"  the error summed over 08-18 UTC, standard deviation: measured {np.std(sums) * step_kwh:.1f} kWh, "
        f"chain {np.mean(chain_sd) * step_kwh:.1f}, cases apart {np.mean(apart_sd) * step_kwh:.1f} ({len(sums)} days)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="only scenarios whose name contains this")
    parser.add_argument("--whole", action="store_true", help="the shared scenarios whole, not two windows")
    parser.add_argument("--days", type=int, default=8, help="worst days shown per scenario")
    parser.add_argument("--calibration", action="store_true", help="check the departures, run no backtest")
    parser.add_argument("--months", default="11,12,1,2", help="with --calibration: the months checked")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if not DATA.is_dir():
        sys.exit(f"no shared data at {DATA}")
    with tempfile.TemporaryDirectory() as tmp:
        todo = [(n, s) for n, s in scenarios(Path(tmp), args.whole or args.calibration) if args.only in n]
    for name, s in todo:
        if args.calibration:
            calibration(name, s, tuple(int(m) for m in args.months.split(",")))
        else:
            report(attribute(name, s), s, args.days)


if __name__ == "__main__":
    main()
