"""``hemsd simulate``: the stored history (or ``--scenario CSV``) replayed with every combination
of ``--capacity``, ``--power-kw``, ``--pv-scale`` and ``--tariff`` (see :mod:`controller.sim.whatif`;
the tariffs' language: :mod:`controller.sim.tariffs`).

It reads the daemon's database in the configured state directory (``--state-dir`` overrides it)
and may run while the daemon runs: it only reads. ``--json`` prints one JSON object instead of
the table.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from controller.cli import add_config_options
from controller.cli.progress import Progress
from controller.cli.stored_site import (
    EXIT_FAILURE,
    StoredSite,
    day_options,
    number,
    print_json,
    run,
    window,
    with_data,
)
from controller.physics import GridLimits
from controller.reports.energy import read_site_history
from controller.reports.html import sweep_report
from controller.settlement.schemes import PER_SLOT
from controller.sim.forecasts import default_timezone
from controller.sim.scenario import Scenario, load_scenario
from controller.sim.tariffs import VariantTariff, parse_tariff
from controller.sim.variants import Variant
from controller.sim.whatif import STRATEGIES, Investment, SweepResult, SweepRow, sweep
from storage.datamanager import DataManager

DEFAULT_DAYS = 365


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_config_options(parser, state_dir=True)
    day_options(parser)
    _simulate_options(parser)


def run_command(args: argparse.Namespace) -> int:
    return run(args, _simulate, days=DEFAULT_DAYS, needs_db=args.scenario is None)


def _float_list(text: str) -> list[float]:
    """``5,10,15`` or ``START:STOP:STEP`` (inclusive)."""
    problem = argparse.ArgumentTypeError(f"{text!r}: expected a list like 5,10,15 or a range like 0:20:1")
    try:
        parts = [float(p) for p in text.replace(":", ",").split(",")]
    except ValueError:
        raise problem from None
    if ":" not in text:
        return parts
    if len(parts) != 3 or parts[2] <= 0 or parts[1] < parts[0]:
        raise problem
    start, stop, step = parts
    return [round(start + i * step, 9) for i in range(int((stop - start) / step + 1e-9) + 1)]


def _tariff(text: str) -> VariantTariff:
    try:
        return parse_tariff(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _simulate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", type=Path, default=None, help="replay this scenario CSV instead of history"
    )
    parser.add_argument(
        "--capacity",
        type=_float_list,
        default=None,
        help="battery sizes, kWh: 5,10,15 or 0:20:1 (default 0:20:1; 0 = no battery)",
    )
    parser.add_argument("--power-kw", type=_float_list, default=None, help="charge/discharge limits, kW")
    parser.add_argument("--pv-scale", type=_float_list, default=[1.0], help="PV profile factors (default 1)")
    parser.add_argument(
        "--tariff",
        action="append",
        type=_tariff,
        default=None,
        metavar="IMPORT[/EXPORT]",
        help="recorded, 0.85/0.20 or G12:peak=1.10,offpeak=0.62; repeat (default recorded)",
    )
    parser.add_argument(
        "--strategy", choices=STRATEGIES, default="self_consumption", help="how the battery runs"
    )
    parser.add_argument(
        "--initial-soc", type=float, default=None, help="SoC at the start, %% (default: recorded)"
    )
    parser.add_argument("--battery-cost-per-kwh", type=float, default=0.0, help="investment per added kWh")
    parser.add_argument("--pv-cost-per-kwp", type=float, default=0.0, help="investment per added kWp")
    parser.add_argument(
        "--pv-kwp", type=float, default=None, help="the site's PV peak (default: config arrays)"
    )
    parser.add_argument(
        "--fixed-cost", type=float, default=0.0, help="investment of any change (installation)"
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write a self-contained HTML report (saving against size)",
    )


async def _simulate(site: StoredSite, args: argparse.Namespace, start: datetime, end: datetime) -> int:
    if args.scenario is not None:
        scenario = load_scenario(args.scenario)
        tz = site.tz if site.config else default_timezone(scenario)
        if args.since or args.until:  # only the days asked for
            start, end = window(args, tz, len(scenario) // scenario.steps_per_day)
            epoch = scenario.epoch_s()
            first, stop = np.searchsorted(epoch, [start.timestamp(), end.timestamp()]).tolist()
            if stop - first < 2:
                raise ValueError(f"{scenario.name} holds no days from {start.date()} to {end.date()}")
            scenario = scenario.slice(first, stop)
        soc = 50.0 if args.initial_soc is None else args.initial_soc
        return _sweep(site, args, scenario, tz, soc, None, scenario.name)

    async def use(data: DataManager) -> int:
        history = await read_site_history(data, start, end)
        if history.times.size == 0 or not history.present.any():
            print(
                f"hemsd: no PV/load/grid history from {start.date()} to {end.date()}: {history.message}",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        soc = args.initial_soc if args.initial_soc is not None else history.first_soc_pct or 50.0
        source = f"history {start.date()} .. {(end - timedelta(days=1)).date()} [{history.status.value}]"
        return _sweep(
            site, args, history.scenario(site.currency), site.tz, soc, int(history.present.sum()), source
        )

    return await with_data(site, use)


def _sweep(
    site: StoredSite,
    args: argparse.Namespace,
    scenario: Scenario,
    tz: ZoneInfo,
    soc: float,
    covered: int | None,
    source: str,
) -> int:
    base = site.battery
    powers: list[float | None] = [p * 1000.0 for p in args.power_kw] if args.power_kw else [None]
    tariffs = args.tariff or [parse_tariff("recorded")]
    variants = [
        Variant(c, p, s, t)
        for c, p, s, t in itertools.product(
            args.capacity or _float_list("0:20:1"), powers, args.pv_scale, tariffs
        )
    ]
    kwp = (
        args.pv_kwp
        if args.pv_kwp is not None
        else (sum(a.kwp for a in site.config.forecast.arrays) if site.config else 0.0)
    )
    investment = Investment(args.battery_cost_per_kwh, args.pv_cost_per_kwp, kwp, args.fixed_cost)
    limits = site.config.grid.limits() if site.config else GridLimits()
    progress = Progress(
        "simulate", len(variants) + 1, unit="variants", enabled=None if not args.json else False
    )
    result = sweep(
        scenario,
        base,
        Variant(base.capacity_kwh),
        variants,
        strategy=args.strategy,
        initial_soc_pct=min(max(soc, base.min_soc_pct), base.max_soc_pct),
        tz=tz,
        limits=limits,
        investment=investment,
        covered_intervals=covered,
        progress=progress,
        scheme=site.config.settlement.build() if site.config else PER_SLOT,
    )
    progress.close()
    if getattr(args, "html", None) is not None:
        try:
            args.html.write_text(sweep_report(result, source), encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"--html {args.html}: {exc}") from exc
    if args.json:
        print_json({"source": source, **result.to_dict()})
    else:
        print("\n".join(_sweep_text(result, source)))
        if getattr(args, "html", None) is not None:
            print(f"report: {args.html}")
    return 0


def _sweep_text(result: SweepResult, source: str) -> list[str]:
    lines = [
        f"What-if over {source}: {result.intervals} intervals, {result.covered_days:.1f} days with data, "
        f"strategy {result.strategy}; money in {result.currency} per year",
        f"{'variant':<40}{'cost/yr':>10}{'saving/yr':>10}{'invest':>10}{'payback y':>10}"
        f"{'import':>9}{'export':>9}{'cycles':>8}{'SC %':>6}{'aut %':>6}",
    ]

    def line(row: SweepRow, name: str) -> str:
        o = row.outcome
        return (
            f"{name:<40}{row.annual_cost:>10.0f}{row.annual_saving:>10.0f}{row.investment:>10.0f}"
            f"{number(row.payback_years):>10}{o.import_kwh:>9.0f}{o.export_kwh:>9.0f}{o.cycles:>8.0f}"
            f"{o.self_consumption_ratio * 100:>6.0f}{o.autarky_ratio * 100:>6.0f}"
        )

    lines.append(line(result.reference, f"as it is: {result.reference.outcome.label}"))
    lines += [line(row, row.outcome.label) for row in result.rows]
    return lines
