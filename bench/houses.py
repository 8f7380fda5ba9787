"""Realistic backtests on houses unlike each other: hemsd against yesterday_dp and the optimum.

Scenarios, built at run time into a temporary directory from ../shared (nothing is copied into
the repository), each 6-7 weeks so that a run takes minutes, not an hour:

- ``no3_heating``: the Trondheim household (electric heating, no PV) from 15 November to
  31 December 2021 with NO3 day-ahead prices of the same hours; import = (spot + 0.35) * 1.25,
  export = spot (NOK).
- ``kn1_pv_summer``: Konstanz residential1 (PV 3.5 times its consumption) 1 June - 13 July 2016
  with DE-LU day-ahead prices of the same days of 2020; import = (spot + 0.20) * 1.19,
  export = spot (EUR).
- ``flat_pl_winter``: a flat 500 W load, no PV, with PL RCE 15-minute prices 5 January -
  15 February 2026; import = (RCE + 0.0892 + 0.3125) * 1.23, export = RCE (PLN).
- the shared scenarios (../shared/scenarios) cut to a winter (8 January - 18 February) and a
  summer (3 June - 14 July) window, or whole with ``--whole``.

For each: the perfect-foresight LP optimum, yesterday_dp (the deterministic DP on "same time
yesterday", as every backtest prints it) and hemsd with realistic forecasts (the recourse
planner at the backtest's default 1 % SoC step), as shares of the optimum's savings over
no_battery, with each backtest's wall time.

With ``--load-errors`` no backtest runs: the load forecast's errors, issued every hour for the
next 24 h (mean absolute error, W) and at midnight (the day's energy, kWh), as the daemon and the
realistic backtest make it (with the day type), without the day type, and with its median
profile alone; the years by season.

.venv/bin/python bench/houses.py [--only NAME] [--jobs 2] [--whole] [--load-errors]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np
from support.lp_reference import scenario_optimum

from controller.forecast.history import forecast_load
from controller.physics import BatteryParams
from controller.sim import backtest
from controller.sim.baselines import no_battery
from controller.sim.forecasts import Forecasts
from controller.sim.scenario import Scenario, load_scenario
from controller.sim.settings import PlannerSettings

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data"
WINDOWS = {"winter": ((1, 8), 42), "summer": ((6, 3), 42)}  # (month, day) of the start, days
SEASONS = (("Nov-Feb", (11, 12, 1, 2)), ("Mar-May", (3, 4, 5)), ("Jun-Aug", (6, 7, 8)), ("Sep-Oct", (9, 10)))
ERROR_START_DAYS = 11  # the load errors are counted from the day the median has all its days


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="") as f:
        yield from csv.DictReader(f)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _write(path: Path, rows: list[tuple[datetime, float, float, float, float]]) -> Path:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(("time", "import_price", "export_price", "pv_w", "load_w"))
        for t, imp, exp, pv, load in rows:
            out.writerow(
                (t.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{imp:.5f}", f"{exp:.5f}", f"{pv:.1f}", f"{load:.1f}")
            )
    return path


def no3_heating(folder: Path) -> Path:
    # Both files are on the same naive hourly grid (DST not represented): read as UTC.
    first, stop = datetime(2021, 11, 15, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC)
    load = {
        r["timestamp"]: float(r["load_kw"]) * 1000.0
        for r in _rows(DATA / "household" / "trondheim_load_hourly_2020-01-01_2021-12-31.csv")
    }
    rows = []
    for r in _rows(DATA / "prices" / "no3_dayahead_hourly_2020-01-01_2021-12-31.csv"):
        t = datetime.fromisoformat(r["timestamp"]).replace(tzinfo=UTC)
        if first <= t < stop:
            spot = float(r["price_nok_per_kwh"])
            rows.append((t, (spot + 0.35) * 1.25, spot, 0.0, load[r["timestamp"]]))
    return _write(folder / "no3_heating_hourly_nok.csv", rows)


def kn1_pv_summer(folder: Path) -> Path:
    first, stop = datetime(2016, 6, 1, tzinfo=UTC), datetime(2016, 7, 14, tzinfo=UTC)
    spot = {}
    for r in _rows(DATA / "prices" / "de_lu_dayahead_hourly_2018-10-01_2020-09-30.csv"):
        if r["price_eur_per_mwh"]:
            spot[_utc(r["interval_start_utc"])] = float(r["price_eur_per_mwh"]) / 1000.0
    rows = []
    for r in _rows(DATA / "household" / "konstanz_residential1_hourly.csv"):
        t = _utc(r["interval_start_utc"])
        if first <= t < stop:
            # 2016-06-01 and 2020-06-01 are both the 153rd day: same day of year, same hour
            p = spot[t.replace(year=2020)]
            # no export meter: the PV is metered apart, consumption is what is imported
            rows.append(
                (t, (p + 0.20) * 1.19, p, float(r["pv_kwh"]) * 1000.0, float(r["grid_import_kwh"]) * 1000.0)
            )
    return _write(folder / "kn1_pv_summer_hourly_eur.csv", rows)


def flat_pl_winter(folder: Path) -> Path:
    first, stop = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 2, 16, tzinfo=UTC)
    rows = []
    for r in _rows(DATA / "prices" / "pl_rce_pse_15min_2025-03-01_2026-08-21.csv"):
        t = _utc(r["interval_start_utc"])
        if first <= t < stop:
            rce = float(r["price_pln_per_kwh"])
            rows.append((t, (rce + 0.0892 + 0.3125) * 1.23, rce, 0.0, 500.0))
    return _write(folder / "flat_pl_winter_15min_pln.csv", rows)


def _window(s: Scenario, name: str) -> Scenario:
    (month, day), days = WINDOWS[name]
    start = datetime.combine(date(s.start.year, month, day), datetime.min.time(), UTC)
    if start < s.start:
        start = start.replace(year=start.year + 1)
    first = round((start - s.start) / s.step)
    return s.slice(first, first + round(timedelta(days=days) / s.step))


@dataclass(frozen=True)
class Row:
    name: str
    intervals: int
    optimum_saves: float
    shares: dict[str, float]  # strategy: share of the optimum's savings
    wall_s: dict[str, float]


def evaluate(name: str, s: Scenario) -> Row:
    params = BatteryParams()  # the scenarios README's default battery
    lp = scenario_optimum(params, s)
    none = no_battery(s).cost
    best = none - lp.energy_cost
    shares, walls = {}, {}
    for label, settings in (
        (
            "yesterday_dp",
            PlannerSettings(forecast="yesterday", planner="deterministic", margin_fraction=0.0),
        ),
        ("hemsd", PlannerSettings(forecast="realistic", planner="recourse")),
    ):
        started = time.perf_counter()
        cost = backtest.hemsd(s, params, 50.0, settings=settings).cost
        walls[label] = time.perf_counter() - started
        shares[label] = (none - cost) / best
    return Row(name, len(s), best, shares, walls)


def load_errors(name: str, s: Scenario) -> list[str]:
    """The load forecast's errors with the day type, without it and with the median alone, by
    season over a year."""
    spd = s.steps_per_day
    issues = range(ERROR_START_DAYS * spd, len(s) - spd, max(1, spd // 24))
    seasons = SEASONS if len(s) > 100 * spd else (("all", tuple(range(1, 13))),)
    daemon = Forecasts(s, BatteryParams(), PlannerSettings(forecast="realistic", planner="deterministic"))
    kinds = {
        "day type": lambda i: daemon.load_forecast(i, i + spd),
        "no day type": lambda i: forecast_load(s.load_w[:i], spd, spd),
        "median": lambda i: forecast_load(s.load_w[:i], spd, spd, shift_weight=0.0),
    }
    lines = []
    for label, months in seasons:
        hourly: dict[str, list[float]] = {kind: [] for kind in kinds}
        daily: dict[str, list[float]] = {kind: [] for kind in kinds}
        for i in issues:
            if s.time(i).month not in months:
                continue
            truth = s.load_w[i : i + spd]
            for kind, forecast in kinds.items():
                ahead = forecast(i)
                hourly[kind].append(float(np.abs(ahead - truth).mean()))
                if i % spd == 0:
                    daily[kind].append(abs(float(ahead.sum() - truth.sum())) * s.step_h / 1000.0)
        lines.append(
            f"{name:<22} {label:<8} "
            + "   ".join(f"{np.mean(hourly[k]):6.0f} W {np.mean(daily[k]):6.2f} kWh" for k in kinds)
        )
    return lines


def scenarios(folder: Path, whole: bool) -> list[tuple[str, Scenario]]:
    out = [(b.__name__, load_scenario(b(folder))) for b in (no3_heating, kn1_pv_summer, flat_pl_winter)]
    for path in sorted((SHARED / "scenarios").glob("*.csv")):
        s = load_scenario(path)
        short = path.name.split("_hourly")[0].split("_15min")[0]
        if whole:
            out.append((short, s))
        else:
            out.extend((f"{short} {w}", _window(s, w)) for w in WINDOWS)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="only scenarios whose name contains this")
    parser.add_argument("--jobs", type=int, default=2, help="backtests run at once (default 2)")
    parser.add_argument("--whole", action="store_true", help="the shared scenarios whole, not two windows")
    parser.add_argument("--load-errors", action="store_true", help="the load forecast's errors, no backtest")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"no shared data at {DATA}")
    with tempfile.TemporaryDirectory() as tmp:
        todo = [(n, s) for n, s in scenarios(Path(tmp), args.whole) if args.only in n]
    if args.load_errors:
        print(
            f"{'scenario':<22} {'months':<8} {'day type: hourly, day':<26} {'no day type: hourly, day':<26} "
            "median alone: hourly, day"
        )
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for lines in pool.map(load_errors, *zip(*todo, strict=True)):
                print("\n".join(lines), flush=True)
        return
    print(
        f"{'scenario':<22} {'steps':>6} {'optimum saves':>14} {'yesterday_dp':>13} {'hemsd':>8} {'hemsd-yday':>10}  wall s (yday, hemsd)"
    )
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(evaluate, *zip(*todo, strict=True)):
            y, h = row.shares["yesterday_dp"], row.shares["hemsd"]
            print(
                f"{row.name:<22} {row.intervals:>6} {row.optimum_saves:>14.2f} {y:>13.2%} {h:>8.2%} {(h - y) * 100:>+9.2f}pp  "
                f"{row.wall_s['yesterday_dp']:.0f}, {row.wall_s['hemsd']:.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
