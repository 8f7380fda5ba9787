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

.venv/bin/python bench/attribution.py [--only NAME] [--whole] [--days 8]
"""

from __future__ import annotations

import argparse
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

from controller.forecast.history import forecast_pv
from controller.physics import BatteryParams
from controller.sim import backtest
from controller.sim.scenario import Scenario

FloatArray = npt.NDArray[np.float64]
REALISTIC = backtest.PlannerSettings(forecast="realistic", planner="recourse")


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
        _per_day(backtest.no_battery(s).trace.cost, spd),  # type: ignore[union-attr]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="only scenarios whose name contains this")
    parser.add_argument("--whole", action="store_true", help="the shared scenarios whole, not two windows")
    parser.add_argument("--days", type=int, default=8, help="worst days shown per scenario")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if not DATA.is_dir():
        sys.exit(f"no shared data at {DATA}")
    with tempfile.TemporaryDirectory() as tmp:
        todo = [(n, s) for n, s in scenarios(Path(tmp), args.whole) if args.only in n]
    for name, s in todo:
        report(attribute(name, s), s, args.days)


if __name__ == "__main__":
    main()
