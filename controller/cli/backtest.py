"""``hemsd backtest``: a scenario CSV through the planner and the baselines (controller.sim.backtest),
printed as a table, as JSON, or drawn into a self-contained HTML report (``--html FILE``)."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from controller.cli.progress import Progress
from controller.physics import BatteryParams
from controller.reports.energy import bill_lines
from controller.reports.html import backtest_report
from controller.settlement.config import SchemeName, SettlementConfig
from controller.settlement.schemes import SCHEME_PRESETS, Scheme
from controller.sim.backtest import PEAK_BLIND, run_backtest
from controller.sim.forecasts import default_timezone
from controller.sim.loads_backtest import LoadsBacktest, baselines, joint, load_spec, spec_beside
from controller.sim.scenario import Scenario, ScenarioError, load_scenario
from controller.sim.settings import FORECASTS, NO_LIMITS, PLANNERS, PlannerSettings
from controller.sim.totals import BacktestResult

EXIT_DATA = 65  # sysexits EX_DATAERR: the scenario file is malformed
EXIT_CONFIG = 78  # sysexits EX_CONFIG: the configuration or the battery values are invalid


@dataclass(frozen=True, slots=True)
class BatteryOption:
    flag: str
    field: str
    scale: float  # command-line unit to BatteryParams unit
    help: str


BATTERY_OPTIONS = (
    BatteryOption("--battery-kwh", "capacity_kwh", 1.0, "usable capacity, kWh (default 10)"),
    BatteryOption("--charge-kw", "max_charge_w", 1000.0, "charge power limit, kW (default 5)"),
    BatteryOption("--discharge-kw", "max_discharge_w", 1000.0, "discharge power limit, kW (default 5)"),
    BatteryOption("--charge-efficiency", "charge_efficiency", 1.0, "0..1 (default 0.95)"),
    BatteryOption("--discharge-efficiency", "discharge_efficiency", 1.0, "0..1 (default 0.95)"),
    BatteryOption("--min-soc", "min_soc_pct", 1.0, "SoC floor, %% (default 10)"),
    BatteryOption("--max-soc", "max_soc_pct", 1.0, "SoC ceiling, %% (default 100)"),
    BatteryOption("--wear-cost", "wear_cost_per_kwh", 1.0, "cost per kWh charged or discharged (default 0)"),
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Replay a scenario CSV through the planner (re-planned every interval) and compare it with "
        "no battery and plain self-consumption."
    )
    parser.add_argument(
        "scenario", type=Path, help="scenario CSV (time, import_price, export_price, pv_w, load_w)"
    )
    parser.add_argument(
        "--config", type=Path, help="read the [battery] and [settlement] sections of this hemsd TOML file"
    )
    parser.add_argument(
        "--scheme",
        choices=[p.name for p in SCHEME_PRESETS],
        help="settle under this scheme (overrides [settlement] scheme; its other keys still apply)",
    )
    for option in BATTERY_OPTIONS:
        parser.add_argument(option.flag, type=float, dest=option.field, help=option.help)
    parser.add_argument("--initial-soc", type=float, default=50.0, help="SoC at the start, %% (default 50)")
    parser.add_argument("--forecast", choices=FORECASTS, default="perfect", help="what the planner sees")
    parser.add_argument(
        "--planner",
        choices=PLANNERS,
        default="recourse",
        help="the recourse planner (the daemon's default) or the deterministic optimizer",
    )
    parser.add_argument("--horizon-hours", type=float, default=48.0, help="planning horizon (default 48)")
    parser.add_argument(
        "--soc-step-pct",
        type=float,
        help="the planner's grid of stored energy, %% of capacity (default 1; the daemon plans at 0.5, "
        "which takes about twice as long)",
    )
    parser.add_argument(
        "--timezone", help="market time zone for --forecast realistic (default from the file)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="processes to run in (default one per core; 1 for scenarios shorter than four weeks); "
        "the results do not depend on it",
    )
    parser.add_argument(
        "--loads",
        type=Path,
        metavar="SPEC",
        help="flexible loads ([[loads]] tables, TOML) planned with the battery; default: "
        "<scenario>.loads.toml beside the CSV when there is one",
    )
    parser.add_argument("--no-loads", action="store_true", help="ignore a load spec beside the CSV")
    parser.add_argument(
        "--replan-hours",
        type=float,
        default=1.0,
        help="with loads: how often the joint plan is made (default 1)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write a self-contained HTML report: any week drawn, the money per month",
    )


def config_table(args: argparse.Namespace, name: str) -> dict[str, object]:
    """The ``[name]`` table of the ``--config`` file (empty without one, or without the table)."""
    if args.config is None:
        return {}
    with args.config.open("rb") as f:
        section = tomllib.load(f).get(name, {})
    if isinstance(section, dict):
        return dict(section)
    raise ValueError(f"{args.config}: [{name}] must be a table")


def battery_from_args(args: argparse.Namespace) -> BatteryParams:
    """Defaults, then the config file's [battery] section, then the command-line values."""
    values = config_table(args, "battery")
    known = {f.name for f in fields(BatteryParams)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{args.config}: unknown key(s) in [battery]: {', '.join(unknown)}")
    for option in BATTERY_OPTIONS:
        given = getattr(args, option.field)
        if given is not None:
            values[option.field] = given * option.scale
    return BatteryParams(**values)  # type: ignore[arg-type]  # validated by BatteryParams


def scheme_from_args(args: argparse.Namespace) -> Scheme:
    """The config file's [settlement] section (none: per-slot), with --scheme in place of its scheme."""
    table = config_table(args, "settlement")
    if args.scheme is not None:
        scheme: SchemeName = args.scheme
        table["scheme"] = scheme
    try:
        return SettlementConfig.model_validate(table).build()
    except ValidationError as exc:
        problems = "; ".join(
            f"settlement.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}".replace(
                "settlement.: ", "settlement: "
            )
            for e in exc.errors()
        )
        raise ValueError(problems) from None


def _inputs(args: argparse.Namespace) -> tuple[BatteryParams, PlannerSettings]:
    params = battery_from_args(args)
    if not params.min_soc_pct <= args.initial_soc <= params.max_soc_pct:
        raise ValueError(
            f"--initial-soc {args.initial_soc!r} outside the SoC window {params.min_soc_pct}..{params.max_soc_pct} %"
        )
    tz = ZoneInfo(args.timezone) if args.timezone else None
    step_kwh = None
    if args.soc_step_pct is not None:
        if not 0 < args.soc_step_pct <= 10:
            raise ValueError(f"--soc-step-pct {args.soc_step_pct!r} must be > 0 and <= 10")
        step_kwh = args.soc_step_pct / 100.0 * params.capacity_kwh
    return params, PlannerSettings(
        forecast=args.forecast,
        horizon_hours=args.horizon_hours,
        timezone=tz,
        planner=args.planner,
        soc_step_kwh=step_kwh,
    )


def run_command(args: argparse.Namespace) -> int:
    try:
        params, settings = _inputs(args)
        scheme = scheme_from_args(args)
    except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError, ZoneInfoNotFoundError) as exc:
        print(f"hemsd backtest: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"hemsd backtest: {exc}", file=sys.stderr)
        return EXIT_DATA
    if scenario.filled_intervals:
        print(
            f"hemsd backtest: {scenario.name}: {scenario.filled_intervals} missing interval(s) filled "
            "with the row before",
            file=sys.stderr,
        )
    spec_path = args.loads if args.loads is not None else spec_beside(args.scenario)
    if not args.no_loads and (args.loads is not None or spec_path.is_file()):
        return _with_loads(args, scenario, params, settings, spec_path)
    progress = Progress(
        "backtest", 2 * len(scenario), unit="intervals", enabled=None if not args.json else False
    )
    try:
        result = run_backtest(
            scenario, params, args.initial_soc, NO_LIMITS, settings, progress, args.workers, scheme
        )
    finally:
        progress.close()
    if args.html is not None:
        tz = settings.timezone or default_timezone(scenario)
        try:
            args.html.write_text(
                backtest_report(scenario, params, args.initial_soc, settings, result, tz), encoding="utf-8"
            )
        except OSError as exc:
            print(f"hemsd backtest: --html {args.html}: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        if not args.json:
            print(f"report: {args.html}")
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(format_table(scenario, params, args.initial_soc, settings, result))
    return 0


def _with_loads(
    args: argparse.Namespace, scenario: Scenario, params: BatteryParams, settings: PlannerSettings, path: Path
) -> int:
    """The backtest with the flexible loads of the spec at ``path``."""
    try:
        spec = load_spec(path)
    except ScenarioError as exc:
        print(f"hemsd backtest: {exc}", file=sys.stderr)
        return EXIT_DATA
    if args.html is not None:
        print("hemsd backtest: --html does not draw flexible loads yet; use --json", file=sys.stderr)
        return EXIT_CONFIG
    if not 0 < args.replan_hours <= 24:
        print(f"hemsd backtest: --replan-hours {args.replan_hours!r} must be > 0 and <= 24", file=sys.stderr)
        return EXIT_CONFIG
    tz = settings.timezone or default_timezone(scenario)
    progress = Progress("backtest", len(scenario), unit="intervals", enabled=None if not args.json else False)
    try:
        strategies, loads = baselines(scenario, spec, params, args.initial_soc, tz)
        strategies["hemsd"], loads["hemsd"] = joint(
            scenario, spec, params, args.initial_soc, settings, NO_LIMITS, args.replan_hours, tz, progress
        )
    finally:
        progress.close()
    result = LoadsBacktest(scenario.currency, len(scenario), strategies, loads)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    plain = BacktestResult(result.currency, result.intervals, result.strategies)
    lines = [format_table(scenario, params, args.initial_soc, settings, plain), "", f"loads ({path.name}):"]
    lines.append(f"{'load':<14}{'strategy':<18}{'kWh':>9}{'cost':>10}  first runs (local)")
    for name in loads["hemsd"]:
        for strategy in ("self_consumption", "hemsd"):
            t = loads[strategy][name]
            runs = ", ".join(f"{a[5:16]}-{b[11:16]}" for a, b in t.runs[:3])
            lines.append(f"{name:<14}{strategy:<18}{t.energy_kwh:>9.1f}{t.cost:>10.2f}  {runs}")
    print("\n".join(lines))
    return 0


def format_table(
    scenario: Scenario,
    params: BatteryParams,
    initial_soc: float,
    settings: PlannerSettings,
    result: BacktestResult,
) -> str:
    minutes = round(scenario.step_h * 60)
    lines = [
        f"{scenario.name}: {len(scenario)} intervals of {minutes} min from {scenario.start:%Y-%m-%d}, "
        f"{settings.forecast} forecasts, {settings.horizon_hours:g} h horizon",
        f"battery {params.capacity_kwh:g} kWh, SoC {params.min_soc_pct:g}-{params.max_soc_pct:g} %, "
        f"{params.max_charge_w / 1000:g}/{params.max_discharge_w / 1000:g} kW, efficiency "
        f"{params.charge_efficiency:g}/{params.discharge_efficiency:g}, start {initial_soc:g} %, "
        f"wear {params.wear_cost_per_kwh:g}/kWh",
        "",
        f"{'strategy':<18}{'cost ' + result.currency:>14}{'import kWh':>13}{'export kWh':>13}"
        f"{'cycles':>9}{'saved':>12}",
    ]
    base = result.strategies["no_battery"].cost
    for name, totals in result.strategies.items():
        lines.append(
            f"{name:<18}{totals.cost:>14.2f}{totals.import_kwh:>13.1f}{totals.export_kwh:>13.1f}"
            f"{totals.cycles:>9.1f}{base - totals.cost:>12.2f}"
        )
    bill = result.strategies["hemsd"].bill
    if bill is not None:
        lines += ["", f"hemsd settled under {bill.scheme}, by month ({result.currency}):", *bill_lines(bill)]
        blind = result.strategies.get(PEAK_BLIND)
        if blind is not None and blind.bill is not None:
            held = max(m.peak_kw for m in bill.months)
            ignored = max(m.peak_kw for m in blind.bill.months)
            lines.append(
                f"peak held {held:.2f} kW (capacity {bill.component('capacity'):.2f}); a plan that ignores the "
                f"peak reaches {ignored:.2f} kW (capacity {blind.bill.component('capacity'):.2f}) and pays "
                f"{blind.cost - result.strategies['hemsd'].cost:.2f} more"
            )
    solve = result.strategies["hemsd"].to_dict()
    if "solve_ms_median" in solve:
        lines.append(
            f"\nplanner solve time: median {solve['solve_ms_median']:.2f} ms, "
            f"p95 {solve['solve_ms_p95']:.2f} ms"
        )
    return "\n".join(lines)
