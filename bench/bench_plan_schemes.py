"""The daemon's whole plan (``controller.planner.inputs.make_plan``: 48 h of 15-min slots, the
default recourse planner at the 0.5 % SoC step, the error table of the four weeks of hindcasts
before each window) without a settlement scheme and under each kind the planners handle
differently: time-variable grid fees priced into the slots, hourly netting (planned per hour),
a capacity charge (the outer search over the month's peak, 2 kW already paid for) and the
rules that keep the battery from the grid. Interleaved on the same windows; prints median and
p95 per scheme and each median over the plan without a scheme measured in the same run.

Windows of the shared 15-min scenario, or generated days without ../shared.

.venv/bin/python bench/bench_plan_schemes.py [--runs 10]"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from controller.config.loading import load_config_text
from controller.forecast.errors import history_spread
from controller.planner.inputs import PricedSlot, make_plan
from controller.sim.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "shared" / "scenarios" / "kn4_pl_rce_2025-26_15min_pln.csv"
SPD = 96
STEPS = 192
SCHEMES = (
    ("no scheme", ""),
    ("de_14a_module3 (fees per slot)", 'scheme = "de_14a_module3"\n'),
    ("pl_net_billing_rce, hourly netting", 'scheme = "pl_net_billing_rce"\nperiod = "hour"\nnet = true\n'),
    ("be_flanders_capacity (peak search)", 'scheme = "be_flanders_capacity"\n'),
    (
        "no grid charging, no battery export",
        '[settlement.rules]\ngrid_charging = false\nbattery_to_grid = "never"\n',
    ),
)


def history() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, datetime]:
    if SCENARIO.is_file():
        s = load_scenario(SCENARIO)
        return s.pv_w, s.load_w, s.import_price, s.export_price, s.start
    print(f"{SCENARIO} not found: generated days instead")
    rng = np.random.default_rng(2)
    hours = np.arange(60 * SPD) / 4
    sun = np.clip(np.sin((hours % 24 - 6) / 12 * np.pi), 0, None)
    imp = 0.9 + 0.4 * np.sin(hours / 24 * 2 * np.pi) + rng.normal(0, 0.05, hours.size)
    pv = rng.uniform(0.3, 1.0, hours.size) * 5000 * sun
    return pv, 300 + 900 * rng.random(hours.size) ** 3, imp, imp * 0.45, datetime(2026, 1, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="windows (default 10)")
    args = parser.parse_args()
    pv, load, imp, exp, start = history()
    configs = [(name, load_config_text(f"[settlement]\n{body}" if body else "")) for name, body in SCHEMES]
    times: dict[str, list[float]] = {name: [] for name, _ in configs}
    for spot in np.linspace(35 * SPD, pv.size - STEPS - 1, args.runs).astype(int).tolist():
        first = spot - spot % SPD  # a day's start: the hindcasts end at midnight as the daemon's do
        window = slice(first, first + STEPS)
        at = start + timedelta(minutes=15 * first)
        slots = [
            PricedSlot(
                at + timedelta(minutes=15 * k), at + timedelta(minutes=15 * (k + 1)), float(i), float(e)
            )
            for k, (i, e) in enumerate(zip(imp[window], exp[window], strict=True))
        ]
        table = history_spread(pv[:first], load[:first], SPD, STEPS)
        for name, config in configs:
            started = time.perf_counter()
            make_plan(
                config, 50.0, slots, pv[window].tolist(), load[window].tolist(), at, table, month_peak_kw=2.0
            )
            times[name].append((time.perf_counter() - started) * 1000.0)
    reference = float(np.median(times[configs[0][0]]))
    print(f"the daemon's whole plan, {STEPS} quarter-hours, recourse at 0.5 %, {args.runs} windows:")
    for name, ms in times.items():
        median = float(np.median(ms))
        print(f"  {name:38s} median {median:7.1f} ms  p95 {np.percentile(ms, 95):7.1f} ms  "
              f"x{median / reference:.2f} the plan without a scheme")  # fmt: skip


if __name__ == "__main__":
    main()
