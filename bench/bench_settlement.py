"""Backtests under settlement schemes against the perfect-foresight LP optimum of the same settlement.

Windows of the shared scenarios, each settled under a scheme whose settlement an LP (HiGHS) can
reproduce exactly: time-variable grid fees (per-slot prices) on the German winter, and the
Flemish capacity tariff (one month's peak, at least 2.5 kW) on a whole Belgian January. Prints
each strategy's savings over no_battery as a share of the optimum's, the peaks held, and the
wall time of the backtest.

.venv/bin/python bench/bench_settlement.py [--forecast perfect|realistic|both]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.lp_reference import settled_optimum

from controller.physics import BatteryParams
from controller.settlement.schemes import scheme_preset
from controller.sim import backtest
from controller.sim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "shared" / "scenarios"


@dataclass(frozen=True)
class Case:
    scenario: str
    rows: int  # from the first
    scheme: str
    peak_price_per_kw: float = 0.0  # the LP's capacity charge (a whole month)
    peak_min_kw: float = 0.0


CASES = (
    Case("kn4_de_2019_hourly_eur.csv", 14 * 24, "de_14a_module3"),
    Case("kn4_be_2022_hourly_eur.csv", 31 * 24, "be_flanders_capacity", 40.4 / 12.0, 2.5),
)


def window(case: Case, folder: Path) -> Path:
    lines = (SCENARIOS / case.scenario).read_text(encoding="utf-8").splitlines()
    path = folder / case.scenario
    path.write_text("\n".join(lines[: case.rows + 1]) + "\n", encoding="utf-8")
    return path


def run(case: Case, path: Path, forecast: str) -> None:
    params = BatteryParams()
    s = load_scenario(path)
    tz = backtest.default_timezone(s)
    scheme = scheme_preset(case.scheme)
    planner = "deterministic" if forecast == "perfect" else "recourse"
    settings = replace(backtest.PERFECT, timezone=tz, forecast=forecast, planner=planner)
    started = time.perf_counter()
    result = backtest.run_backtest(s, params, 50.0, settings=settings, scheme=scheme, workers=1)
    wall = time.perf_counter() - started
    optimum, lp = settled_optimum(params, s, scheme, tz, case.peak_price_per_kw, case.peak_min_kw)
    base = result.strategies["no_battery"].cost
    print(f"{case.scheme} on {case.scenario} ({len(s)} steps), {forecast}: optimum {optimum:.2f}, "
          f"no battery {base:.2f}, backtest {wall:.1f} s")  # fmt: skip
    for name, totals in result.strategies.items():
        share = (base - totals.cost) / (base - optimum) * 100.0
        peak = max(m.peak_kw for m in totals.bill.months) if totals.bill and case.peak_price_per_kw else None
        held = "" if peak is None else f"   peak {peak:.2f} kW"
        print(f"  {name:<18}{totals.cost:>10.2f}{share:>9.1f} %{held}")
    if case.peak_price_per_kw:
        print(f"  {'optimum':<18}{optimum:>10.2f}{100.0:>9.1f} %   peak {lp.peak_kw:.2f} kW")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forecast", choices=("perfect", "realistic", "both"), default="both")
    args = parser.parse_args()
    forecasts = ("perfect", "realistic") if args.forecast == "both" else (args.forecast,)
    with tempfile.TemporaryDirectory() as folder:
        for case in CASES:
            path = window(case, Path(folder))
            for forecast in forecasts:
                run(case, path, forecast)


if __name__ == "__main__":
    main()
