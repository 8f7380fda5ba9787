"""What reading the "PV only" battery export rule strictly costs, at the perfect-foresight optimum.

``battery_to_grid = "pv_only"`` lets the battery export only the PV energy it stored. The
planners do not track the origin of stored energy, so with grid charging allowed they read the
rule as "no battery export at all" (``never``). For windows of the shared scenarios this prints
the LP optimum's savings over no battery (tests/support/lp_origin.py, HiGHS) under ``allowed``,
``pv_only`` with origin tracked, ``never`` (the planners' reading), and ``pv_only`` without grid
charging (all that is stored is PV: an untracked plan that may export), and how much of the
tracked rule's savings the better of the last two keeps.

.venv/bin/python bench/bench_origin.py [--days N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.lp_origin import origin_optimum

from controller.physics import BatteryParams
from controller.sim.scenario import Scenario, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "shared" / "scenarios"
WINDOWS = (  # (scenario, first day): winter, spring, summer
    ("kn4_de_2019_hourly_eur.csv", 0),
    ("kn4_de_2019_hourly_eur.csv", 150),
    ("kn4_de_2019_hourly_eur.csv", 300),
    ("kn4_be_2022_hourly_eur.csv", 0),
    ("kn4_be_2022_hourly_eur.csv", 150),
    ("kn4_pl_rce_2025-26_15min_pln.csv", 30),
    ("kn4_pl_rce_2025-26_15min_pln.csv", 200),
    ("kn4_pl_rce_2025-26_15min_pln.csv", 260),
)


def no_battery(s: Scenario) -> float:
    net = (s.load_w - np.maximum(s.pv_w, 0.0)) * s.step_h / 1000.0
    return float((s.import_price * np.maximum(net, 0.0) + s.export_price * np.minimum(net, 0.0)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    if args.days < 1:
        parser.error(f"--days must be >= 1, got {args.days}")
    params = BatteryParams()
    print("window                      allowed  pv_only    never  no grid charge  better of the two")
    for name, first in WINDOWS:
        full = load_scenario(SCENARIOS / name)
        spd = full.steps_per_day
        s = full.slice(first * spd, min(len(full), (first + args.days) * spd))
        base = no_battery(s)
        started = time.perf_counter()

        def saved(rule: str, grid_charging: bool = True, s: Scenario = s, base: float = base) -> float:
            e0 = params.energy_kwh(50.0)
            cost = origin_optimum(
                params, e0, s.step_h, s.pv_w, s.load_w, s.import_price, s.export_price, rule, grid_charging
            )
            return base - cost

        allowed, tracked, never = saved("allowed"), saved("pv_only"), saved("never")
        pv_stored = saved("pv_only", grid_charging=False)
        kept = max(never, pv_stored) / tracked * 100.0 if tracked > 0 else float("nan")
        label = f"{name[:6]} {s.start:%Y-%m-%d} +{args.days} d"
        print(f"{label:<26}{allowed:>9.2f}{tracked:>9.2f}{never:>9.2f}{pv_stored:>16.2f}"
              f"{kept:>12.1f} %   ({never / tracked * 100.0:.1f} % strict, "
              f"{(time.perf_counter() - started):.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
