"""Backtests under settlement schemes against the perfect-foresight LP optimum of the same settlement.

Windows of the shared scenarios, each settled under a scheme whose settlement an LP (HiGHS) can
reproduce exactly: time-variable grid fees (per-slot prices) on the German winter, and the
Flemish capacity tariff (each month's peak, at least 2.5 kW, weighted in the bills as they
average the monthly peaks) on a whole Belgian January. Prints
each strategy's savings over no_battery as a share of the optimum's, the peaks held, and the
wall time of the backtest.

Where money is lost, in the same run: under a capacity charge hemsd's gap to the optimum split
into energy (the bill without the capacity charge) and capacity; and the same window without
the scheme, hemsd (the planner the scheme's run used) against the per-slot optimum: what the
forecasts alone cost, before any settlement.

.venv/bin/python bench/bench_settlement.py [--forecast perfect|realistic|both]
    [--start-day N] [--days N] [--scenario FILE --scheme NAME]

``--start-day``/``--days`` move or resize every window (other months); ``--scenario`` with
``--scheme`` runs that one case instead (e.g. the capacity tariff on the German or Polish house).
Beside the presets two schemes of the bench (``VARIANTS``): the battery kept from exporting on
the Belgian June, and Polish net-billing at the hourly RCE with import and export netted per hour
on the Polish 15-minute house in May (the deposit paid out; its limits are no LP's).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.lp_reference import capacity_optimum, scenario_optimum, settled_optimum

from controller.physics import BatteryParams
from controller.settlement.schemes import ExportRules, ExportValue, Netting, Scheme, scheme_preset
from controller.sim import backtest
from controller.sim.forecasts import default_timezone
from controller.sim.scenario import Scenario, load_scenario
from controller.sim.settings import PERFECT

SCENARIOS = Path(__file__).resolve().parents[2] / "shared" / "scenarios"


@dataclass(frozen=True)
class Case:
    scenario: str
    days: int
    scheme: str
    start_day: int = 0  # days from the scenario's first row (--start-day adds to it)


# Schemes of the bench beside the presets: the battery kept from exporting (the strict reading of
# pv_only with grid charging), and Polish net-billing valued at the hourly RCE with import and
# export netted per hour, the value paid out (a deposit's limits are no LP's).
VARIANTS = (
    Scheme(name="no_battery_export", rules=ExportRules(battery_to_grid="never")),
    Scheme(
        name="pl_rce_hourly_netting",
        netting=Netting("hour", net=True),
        export=ExportValue(basis="market", average="hour", clamp_at_zero=True),
    ),
)

CASES = (
    Case("kn4_de_2019_hourly_eur.csv", 14, "de_14a_module3"),
    Case("kn4_be_2022_hourly_eur.csv", 31, "be_flanders_capacity"),
    Case("kn4_be_2022_hourly_eur.csv", 14, "no_battery_export", start_day=151),
    Case("kn4_pl_rce_2025-26_15min_pln.csv", 14, "pl_rce_hourly_netting", start_day=212),
)


def named_scheme(name: str) -> Scheme:
    for scheme in VARIANTS:
        if scheme.name == name:
            return scheme
    return scheme_preset(name)


def share(base: float, cost: float, optimum: float) -> float:
    return (base - cost) / (base - optimum) * 100.0


def run(s: Scenario, scenario: str, scheme_name: str, forecast: str) -> None:
    params = BatteryParams()
    tz = default_timezone(s)
    scheme = named_scheme(scheme_name)
    planner = "deterministic" if forecast == "perfect" else "recourse"
    settings = replace(PERFECT, timezone=tz, forecast=forecast, planner=planner)
    started = time.perf_counter()
    result = backtest.run_backtest(s, params, 50.0, settings=settings, scheme=scheme, workers=1)
    wall = time.perf_counter() - started
    base = result.strategies["no_battery"].cost
    if scheme.capacity is None:
        optimum, lp = settled_optimum(params, s, scheme, tz)
    else:  # one peak per month, each weighted as the bills count it
        optimum, lp = capacity_optimum(params, s, scheme, tz)
    print(f"{scheme_name} on {scenario} from {s.start:%Y-%m-%d} ({len(s)} steps), {forecast}: "
          f"optimum {optimum:.2f}, no battery {base:.2f}, backtest {wall:.1f} s")  # fmt: skip
    for name, totals in result.strategies.items():
        peak = max(m.peak_kw for m in totals.bill.months) if totals.bill and scheme.capacity else None
        held = "" if peak is None else f"   peak {peak:.2f} kW"
        print(f"  {name:<18}{totals.cost:>10.2f}{share(base, totals.cost, optimum):>9.1f} %{held}")
    own = result.strategies["hemsd"]
    if scheme.capacity is not None:
        print(f"  {'optimum':<18}{optimum:>10.2f}{100.0:>9.1f} %   peak {lp.peak_kw:.2f} kW")
        capacity = sum(m.capacity for m in own.bill.months) if own.bill else 0.0
        print(f"  hemsd's gap {own.cost - optimum:.2f}: energy {own.cost - capacity - lp.energy_cost:.2f}, "
              f"capacity {capacity - (optimum - lp.energy_cost):.2f}")  # fmt: skip
    alone = backtest.run_backtest(s, params, 50.0, settings=settings, workers=1).strategies
    free = scenario_optimum(params, s).energy_cost
    print(f"  without the scheme: hemsd ({planner}) {share(alone['no_battery'].cost, alone['hemsd'].cost, free):.1f} % "
          f"of the per-slot optimum")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forecast", choices=("perfect", "realistic", "both"), default="both")
    parser.add_argument("--start-day", type=int, default=0, help="days from each scenario's first row")
    parser.add_argument("--days", type=int, default=None, help="window length (default: each case's)")
    parser.add_argument("--scenario", help="one scenario file of ../shared/scenarios (with --scheme)")
    parser.add_argument("--scheme", help="the scheme preset (or VARIANTS name) for --scenario")
    args = parser.parse_args()
    if (args.scenario is None) != (args.scheme is None):
        parser.error("--scenario and --scheme go together")
    if args.start_day < 0 or (args.days is not None and args.days < 2):
        parser.error(f"--start-day must be >= 0 and --days >= 2, got {args.start_day}, {args.days}")
    cases = CASES if args.scenario is None else (Case(args.scenario, 31, args.scheme),)
    forecasts = ("perfect", "realistic") if args.forecast == "both" else (args.forecast,)
    for case in cases:
        full = load_scenario(SCENARIOS / case.scenario)
        spd, days = full.steps_per_day, args.days or case.days
        first = case.start_day + args.start_day
        stop = min(len(full), (first + days) * spd)
        if stop - first * spd < 2 * spd:
            parser.error(f"--start-day {args.start_day}: {case.scenario} has {len(full) // spd} days")
        s = full.slice(first * spd, stop)
        for forecast in forecasts:
            run(s, case.scenario, case.scheme, forecast)


if __name__ == "__main__":
    main()
