"""Flexible loads: the joint plan's time with 0, 2 and 4 loads, and backtests against the joint optimum.

Plan time: the daemon's plan (``controller.loads.inputs.make_load_plan``: the recourse planner at
its 0.5 % SoC step, its error table's departures per slot) over 48 h of 15-minute slots of the PL scenario,
with no loads (the battery alone, ``make_plan``), two (a water heater and a dishwasher) and four
(and an SG-Ready heat pump and a surplus-only pool pump); median and p95 over ``--runs`` windows.

Backtests: 14-day windows of the shared scenarios (``WINDOWS``: DE and BE from 8 January, DE from
3 June, and the 15-minute PL house from 8 January), a 10 kWh
battery, and the documented, seeded loads of ``SPEC``: a 200 l tank (3 kW, 6 kWh of hot water a
day over a household's day), a daily dishwasher (2 kW for 2 h between 19:00 and 07:00, by default
at 19:00) and an SG-Ready heat pump (2.5 kW, COP 3, a house of 8 kWh/K between 20 and 23 degC)
on a heating demand of 1.3-2.6 kW by the hour. ``perfect``: the planner sees the future and the
profiles are what happens (the stores are told so: their ``draw_spread`` 0); ``realistic``:
forecasts from the past alone, and each day's hot water and heat depart from the profiles by a
seeded lognormal factor (``draw_spread`` 0.3, the stores told as much). Printed:
each strategy's cost, the joint optimum (tests/support/loads_reference.py, scipy milp / HiGHS,
perfect foresight, the tank's and pump's energy continuous), hemsd's savings over the loads at
their defaults (self-consumption battery) as a share of the optimum's, the same share of the optimum
run by on/off stores (``on/off``: the optimum's heat run in pieces at full power, which warms a
store first and loses more, ``support.loads_reference.on_off_overshoot``), and the lowest
temperature each store reached under hemsd (comfort: the tank 45, the house 20 degC).

.venv/bin/python bench/bench_loads.py [--runs 10] [--days 14] [--skip-backtests] [--skip-plan-times] [--only TEXT] [--forecast KIND]
    [--replan-min N] [--guard-min N]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.loads_reference import joint_optimum, on_off_overshoot

from controller.config.loading import load_config_text
from controller.forecast.errors import history_spread
from controller.loads.inputs import make_load_plan
from controller.loads.joint import ThermalState
from controller.physics import BatteryParams
from controller.planner.inputs import PricedSlot, make_plan
from controller.sim.loads_backtest import LoadSpec, baselines, joint
from controller.sim.scenario import load_scenario
from controller.sim.settings import NO_LIMITS, PlannerSettings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "scenarios"
PL = SHARED / "kn4_pl_rce_2025-26_15min_pln.csv"
# the backtests' windows: a scenario and the (month, day) its window starts
WINDOWS = (
    ("kn4_de_2019_hourly_eur.csv", 1, 8),
    ("kn4_be_2022_hourly_eur.csv", 1, 8),
    ("kn4_de_2019_hourly_eur.csv", 6, 3),
    ("kn4_pl_rce_2025-26_15min_pln.csv", 1, 8),
)
DEMAND = (2500, 2500, 2600, 2600, 2600, 2500, 2300, 2100, 1900, 1700, 1500, 1400,
          1300, 1300, 1400, 1500, 1700, 1900, 2100, 2200, 2300, 2400, 2400, 2500)  # fmt: skip
BOILER = """
[[loads]]
name = "boiler"
type = "water_heater"
volume_l = 200
element_w = 3000
draw_kwh_per_day = 6.0
"""
DISHWASHER = """
[[loads]]
name = "dishwasher"
type = "appliance"
power_w = 2000
duration_min = 120
earliest_start = "19:00"
latest_end = "07:00"
default_start = "19:00"
"""
HEAT_PUMP = f"""
[[loads]]
name = "heat_pump"
type = "heat_pump"
electric_w = 2500
cop = 3.0
capacity_kwh_per_k = 8.0
heat_demand_w = {list(DEMAND)}
"""
SPEC = BOILER + DISHWASHER + HEAT_PUMP
POOL = """
[[loads]]
name = "pool"
type = "appliance"
power_w = 800
duration_min = 180
earliest_start = "08:00"
latest_end = "18:00"
interruptible = true
min_on_min = 30
optional = true
surplus_only = true
"""


def plan_times(runs: int) -> None:
    s = load_scenario(PL)
    loads_text = {0: "", 2: BOILER + DISHWASHER, 4: SPEC + POOL}
    starts = np.linspace(40 * 96, len(s) - 200, runs).astype(int)
    print(
        f"plan time, 48 h of 15-min slots, recourse at 0.5 % SoC, the error table's departures, {runs} windows of {PL.name}:"
    )
    # the error table of the hindcasts before each window, as the daemon's forecaster keeps it
    tables = {first: history_spread(s.pv_w[:first], s.load_w[:first], 96, 192) for first in starts.tolist()}
    reference = None
    for count, text in loads_text.items():
        cfg = load_config_text('[mqtt]\nhost = "localhost"\n[site]\ntimezone = "Europe/Warsaw"\n' + text)
        times = []
        for first in starts.tolist():
            slots = [
                PricedSlot(
                    s.time(first + k),
                    s.time(first + k + 1),
                    float(s.import_price[first + k]),
                    float(s.export_price[first + k]),
                )
                for k in range(192)
            ]
            pv = s.pv_w[first : first + 192].tolist()
            load = s.load_w[first : first + 192].tolist()
            now = slots[0].start
            errors = tables[first]
            started = time.perf_counter()
            if count == 0:
                make_plan(cfg, 50.0, slots, pv, load, now, errors)
            else:
                states = {"boiler": ThermalState(50.0), "heat_pump": ThermalState(21.0)}
                make_load_plan(cfg, 50.0, slots, pv, load, now, errors, states)
            times.append((time.perf_counter() - started) * 1000.0)
        median = float(np.median(times))
        reference = reference or median
        print(
            f"  {count} loads: median {median:7.0f} ms, p95 {np.percentile(times, 95):7.0f} ms"
            f"  ({median / reference:.1f} x no loads)"
        )


def backtests(
    days: int,
    only: str = "",
    forecasts: tuple[str, ...] = ("perfect", "realistic"),
    replan_min: int = 60,
    guard_min: int = 60,
) -> None:
    params = BatteryParams()
    print(
        f"\nbacktests, {days}-day windows, 10 kWh battery, recourse at 1 % SoC, re-planned every {replan_min} min, "
        f"the stores guarded against {guard_min} min of draw:"
    )
    print(
        f"{'scenario':<30}{'forecast':<11}{'no_battery':>11}{'self_cons.':>11}{'hemsd':>10}{'optimum':>10}{'share':>8}"
        f"{'on/off':>8}{'wall s':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, month, day in WINDOWS:
            if only and only not in f"{name} {day}.{month}":
                continue
            path = SHARED / name
            if not path.is_file():
                print(f"{name}: not in ../shared, skipped")
                continue
            window = _window(path, Path(tmp), days, month, day)
            scenario = load_scenario(window)
            tz = ZoneInfo("Europe/Berlin")
            for forecast, spread in (("perfect", 0.0), ("realistic", 0.3)):
                if forecast not in forecasts:
                    continue
                spec = LoadSpec.model_validate({**_spec_dict(spread), "draw_spread": spread, "seed": 22})
                started = time.perf_counter()
                strategies, _ = baselines(scenario, spec, params, 50.0, tz)
                settings = PlannerSettings(
                    forecast=forecast, planner="recourse", soc_step_kwh=0.1, timezone=tz
                )
                hemsd, hemsd_loads = joint(
                    scenario,
                    spec,
                    params,
                    50.0,
                    settings,
                    NO_LIMITS,
                    replan_min / 60.0,
                    tz=tz,
                    guard_h=guard_min / 60.0,
                )
                wall = time.perf_counter() - started
                optimum = joint_optimum(scenario, spec, params, 50.0, tz)
                base = strategies["self_consumption"].cost
                share = (base - hemsd.cost) / (base - optimum.cost)
                on_off = (base - hemsd.cost) / (
                    base - optimum.cost - on_off_overshoot(scenario, spec, optimum, tz)
                )
                lowest = ", ".join(
                    f"{n} {t.lowest_c:.2f}" for n, t in hemsd_loads.items() if t.lowest_c is not None
                )
                print(
                    f"{name[:22] + f' {day}.{month}':<30}{forecast:<11}{strategies['no_battery'].cost:>11.2f}{base:>11.2f}"
                    f"{hemsd.cost:>10.2f}{optimum.cost:>10.2f}{share:>8.2%}{on_off:>8.2%}{wall:>8.0f}   {lowest}"
                )


def _spec_dict(spread: float) -> dict[str, object]:
    """The loads of ``SPEC``, the stores told how far their draws depart (``spread``)."""
    import tomllib  # noqa: PLC0415 (the bench's one TOML)

    loads = [
        {**load, "draw_spread": spread} if load["type"] != "appliance" else load
        for load in tomllib.loads(SPEC)["loads"]
    ]
    return {"loads": loads}


def _window(path: Path, folder: Path, days: int, month: int = 1, day: int = 8) -> Path:
    """``days`` days of the scenario from the first ``month``/``day`` in it (UTC, an hour early
    for the hourly ones as before), written beside the others."""
    with path.open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    times = [datetime.fromisoformat(r[0].replace("Z", "+00:00")) for r in body]
    first_year = times[0].year
    start = next(
        begin
        for year in (first_year, first_year + 1)
        if (begin := datetime(year, month, day, tzinfo=UTC) - timedelta(hours=1)) >= times[0]
    )
    end = start + timedelta(days=days)
    out = folder / f"{month:02d}{day:02d}_{path.name}"
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(r for r, t in zip(body, times, strict=True) if start <= t < end)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="windows timed per load count (default 10)")
    parser.add_argument("--days", type=int, default=14, help="days of each backtest window (default 14)")
    parser.add_argument("--skip-backtests", action="store_true")
    parser.add_argument("--skip-plan-times", action="store_true")
    parser.add_argument(
        "--replan-min", type=int, default=60, help="minutes between the backtests' plans (default 60)"
    )
    parser.add_argument(
        "--guard-min",
        type=int,
        default=None,
        help="minutes of draw before each slot's end the stores are guarded against (default: --replan-min)",
    )
    parser.add_argument(
        "--only", default="", help="backtest the windows whose 'scenario day.month' holds this"
    )
    parser.add_argument(
        "--forecast",
        choices=("perfect", "realistic"),
        action="append",
        help="backtest only these (default both)",
    )
    args = parser.parse_args()
    if args.skip_plan_times:
        pass
    elif PL.is_file():
        plan_times(args.runs)
    else:
        print(f"no {PL}: plan times skipped")
    if not args.skip_backtests:
        backtests(
            args.days,
            args.only,
            tuple(args.forecast or ("perfect", "realistic")),
            args.replan_min,
            args.replan_min if args.guard_min is None else args.guard_min,
        )


if __name__ == "__main__":
    main()
