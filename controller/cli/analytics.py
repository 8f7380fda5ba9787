"""``hemsd analytics voltage|events|energy|quality`` and ``hemsd simulate``: the site's history, analysed.

Both read the daemon's database in the configured state directory (``--state-dir`` overrides it)
and may run while the daemon runs: they only read. Days are local days of the site's zone;
``--until`` is inclusive. Every result says the data manager's status (REAL, PARTIAL, FALLBACK,
ERROR), so a gap in history shows. ``--json`` prints one JSON object instead of tables.

``hemsd simulate`` replays the stored history (or ``--scenario CSV``) with every combination of
``--capacity``, ``--power-kw``, ``--pv-scale`` and ``--tariff`` (see :mod:`controller.sim.whatif`;
the tariffs' language: :mod:`controller.sim.tariffs`).
One module serves both sub-commands: ``configure_parser`` recognises which by the parser's name.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.cli import add_config_options, load_for_tool, nest_config_options
from controller.cli.progress import Progress
from controller.config.models import EXIT_CONFIG, HemsdConfig
from controller.daemon.parts import storage_options
from controller.physics import BatteryParams, GridLimits
from controller.reports.energy import PERIODS, STEP, BillSource, bill_lines, energy_report, read_site_history
from controller.reports.html import sweep_report
from controller.settlement.schemes import PER_SLOT
from controller.sim.forecasts import default_timezone
from controller.sim.scenario import Scenario, ScenarioError, currency_from_name, load_scenario, write_scenario
from controller.sim.tariffs import VariantTariff, parse_tariff
from controller.sim.variants import Variant
from controller.sim.whatif import STRATEGIES, Investment, SweepResult, SweepRow, sweep
from drivers.days import day_window
from storage import StorageError
from storage.analytics import EventKind, VoltageLimits, VoltageReport, voltage_report
from storage.datamanager import DataManager, StorageOptions
from storage.quality import FieldQuality
from storage.sqlite import database_path

EXIT_FAILURE = 1
DEFAULT_DAYS = {"voltage": 7, "events": 7, "energy": 30, "quality": 7, "simulate": 365, "scenario": 365}
FORECAST_SERIES = ("pv_forecast_w", "load_forecast_w")  # imported from a forecast service's sensors


def configure_parser(parser: argparse.ArgumentParser) -> None:
    command = parser.prog.split()[-1]
    if command not in ("analytics", "simulate"):
        raise ValueError(f"controller.cli.analytics serves analytics and simulate, not {command!r}")
    add_config_options(parser, state_dir=True)
    if command == "analytics":
        sub = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
        for name, text in (
            ("voltage", "grid voltage quality (EN 50160), profile, export/voltage fit"),
            ("events", "over- and under-voltage events with PV, export and load around them"),
            ("energy", "energy and money per day, week or month against replayed baselines"),
            ("quality", "data quality per day and field"),
            ("scenario", "the recorded history as a scenario CSV for hemsd backtest"),
        ):
            child = sub.add_parser(name, help=text, description=text)
            _common(child)
            if name in ("voltage", "events"):
                _voltage_options(child)
            if name == "energy":
                child.add_argument("--period", choices=PERIODS, default="day", help="rows per (default day)")
            if name == "scenario":
                child.add_argument(
                    "--out",
                    type=Path,
                    required=True,
                    metavar="FILE",
                    help="the CSV to write; its name ends with the currency (site_pln.csv)",
                )
        nest_config_options(parser, state_dir=True)
    else:
        _common(parser)
        _simulate_options(parser)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        type=date.fromisoformat,
        default=None,
        help="first local day, YYYY-MM-DD (also of a --scenario)",
    )
    parser.add_argument(
        "--until", type=date.fromisoformat, default=None, help="last local day (default today)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of tables")


def _voltage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nominal-v", type=float, default=230.0, help="nominal voltage (default 230)")
    parser.add_argument(
        "--trip-over-v",
        type=float,
        default=264.5,
        help="inverter's instant over-voltage trip (default 264.5)",
    )
    parser.add_argument(
        "--trip-under-v",
        type=float,
        default=195.5,
        help="inverter's instant under-voltage trip (default 195.5)",
    )
    parser.add_argument(
        "--phases-fed",
        type=int,
        choices=(1, 3),
        default=None,
        help="phases the inverter feeds, for the impedance (default: phases recorded)",
    )
    if parser.prog.endswith("events"):
        parser.add_argument(
            "--critical", type=int, default=20, help="events listed with context (default 20)"
        )


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


@dataclass(frozen=True)
class StoredSite:
    config: HemsdConfig | None
    options: StorageOptions | None
    tz: ZoneInfo
    battery: BatteryParams
    currency: str


def _site(args: argparse.Namespace, needs_db: bool) -> StoredSite | None:
    """The configuration's zone, battery, currency and storage; defaults where there is none."""
    config = None
    if args.config.exists() or (needs_db and args.state_dir is None):
        config = load_for_tool(args)
        if config is None and (args.state_dir is None or not needs_db):
            return None
        if config is None:
            print("hemsd: using --state-dir with default battery, UTC and no currency", file=sys.stderr)
    if config is None:
        options = StorageOptions(args.state_dir, cache_entries=0) if args.state_dir else None
        return StoredSite(None, options, ZoneInfo("UTC"), BatteryParams(), "XXX")
    options = replace(
        storage_options(config), influx=None, cache_entries=0
    )  # one-shot reads: nothing to reuse
    if args.state_dir is not None:
        options = replace(options, state_dir=args.state_dir)
    return StoredSite(config, options, config.site.zone, config.battery.params(), config.site.currency)


def _window(args: argparse.Namespace, tz: tzinfo, days: int) -> tuple[datetime, datetime]:
    until = args.until or datetime.now(tz).date()
    since = args.since or until - timedelta(days=days - 1)
    if since > until:
        raise ValueError(f"--since {since} is after --until {until}")
    return day_window(since, tz)[0].astimezone(tz), day_window(until, tz)[1].astimezone(
        tz
    )  # local: printed as days


def run_command(args: argparse.Namespace) -> int:
    command = getattr(args, "analysis", "simulate")
    needs_db = command != "simulate" or args.scenario is None
    site = _site(args, needs_db)
    if site is None:
        return EXIT_CONFIG
    if needs_db and (site.options is None or not database_path(site.options.state_dir).exists()):
        where = database_path(site.options.state_dir) if site.options else "(no state directory)"
        print(
            f"hemsd: no database at {where} (has the daemon run with this state directory?)", file=sys.stderr
        )
        return EXIT_FAILURE
    try:
        start, end = _window(args, site.tz, DEFAULT_DAYS[command])
        runner = RUNNERS[command]
        return asyncio.run(runner(site, args, start, end))
    except (StorageError, ScenarioError, ValueError) as exc:
        print(f"hemsd: {exc}", file=sys.stderr)
        return EXIT_FAILURE


async def _with_data(site: StoredSite, use: Callable[[DataManager], Awaitable[int]]) -> int:
    assert site.options is not None  # checked by run_command
    data = DataManager(site.options)
    await data.store.open()  # not start(): no commit, retention or backup jobs
    try:
        return await use(data)
    finally:
        await data.close()


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


def _v(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def _local(t: datetime, tz: tzinfo) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M")


# --- analytics -------------------------------------------------------------------------------------


async def _voltage(site: StoredSite, args: argparse.Namespace, start: datetime, end: datetime) -> int:
    limits = VoltageLimits(args.nominal_v, trip_over_v=args.trip_over_v, trip_under_v=args.trip_under_v)

    async def use(data: DataManager) -> int:
        report = await voltage_report(
            data,
            start,
            end,
            site.tz,
            limits,
            phases_fed=args.phases_fed,
            critical=getattr(args, "critical", 0),
        )
        if args.json:
            _print_json(report.to_dict())
        else:
            print(
                "\n".join(
                    _voltage_text(report, site.tz)
                    if args.analysis == "voltage"
                    else _events_text(report, site.tz)
                )
            )
        return 0 if report.phases else EXIT_FAILURE

    return await _with_data(site, use)


def _header(title: str, report: VoltageReport, tz: tzinfo) -> list[str]:
    lines = [f"{title} {_local(report.start, tz)} .. {_local(report.end, tz)}: {report.status.value}"]
    return lines + ([f"  {report.message}"] if report.message else [])


def _voltage_text(r: VoltageReport, tz: tzinfo) -> list[str]:
    lim = r.limits
    lines = _header("Grid voltage", r, tz)
    if not r.phases:
        return lines
    lines += [
        "",
        f"{'phase':<8}{'means':>7}{'in band':>9}{'min V':>8}{'max V':>8}   events: "
        f">{lim.over_v:g} V / <{lim.under_v:g} V (10-min) / >{lim.trip_over_v:g} V / <{lim.trip_under_v:g} V (trip)",
    ]
    for phase in r.phases:
        weeks = [w for w in r.weeks if w.phase == phase]
        n = sum(w.intervals for w in weeks)
        share = sum(w.share_in_band * w.intervals for w in weeks) / n * 100 if n else None
        low = min((w.min_v for w in weeks), default=None)
        high = max((w.max_v for w in weeks), default=None)
        counts = [sum(e.phase == phase and e.kind is kind for e in r.events) for kind in EventKind]
        lines.append(
            f"{phase:<8}{n:>7}{_v(share, '.2f'):>8}%{_v(low):>8}{_v(high):>8}   "
            + " / ".join(str(c) for c in counts)
        )
    lines += [
        "",
        f"Weeks (EN 50160: 95 % of 10-min means within {lim.under_v:g}-{lim.over_v:g} V, "
        f"all within {lim.floor_v:g}-{lim.over_v:g} V)",
        f"{'week from':<12}{'phase':<8}{'means':>7}{'in band':>9}{'min V':>8}{'max V':>8}  compliant",
    ]
    lines += [
        f"{w.week_start.isoformat():<12}{w.phase:<8}{w.intervals:>7}{w.share_in_band * 100:>8.2f}%"
        f"{w.min_v:>8.1f}{w.max_v:>8.1f}  {'yes' if w.compliant else 'NO'}"
        for w in r.weeks
    ]
    lines += [
        "",
        "Export against voltage (1-min means; export = -grid power)",
        f"{'phase':<8}{'points':>8}{'V/kW':>7}{'r':>7}{'V at 0':>8}{'step V/kW':>10}{'ohm':>7}"
        f"{'max export kW':>14}{'over-voltage likely above kW':>29}",
    ]
    for c in r.correlation:
        d = c.to_dict()
        lines.append(
            f"{c.phase:<8}{d['points']:>8}{_v(c.level.slope if c.level else None, '.3f'):>7}"
            f"{_v(c.level.r if c.level else None, '.2f'):>7}{_v(c.level.intercept if c.level else None):>8}"
            f"{_v(c.step.slope if c.step else None, '.3f'):>10}{_v(c.impedance_ohm, '.3f'):>7}"
            f"{_v(c.max_export_kw if c.max_export_kw > -1e300 else None, '.2f'):>14}"
            f"{_v(c.likely_over_voltage_export_kw, '.2f'):>29}"
        )
    lines += ["", "Hourly profile, local time: mean (p5..p95) V"]
    by_hour: dict[int, list[str]] = {}
    for p in r.profile:
        by_hour.setdefault(p.hour, []).append(f"{p.phase} {p.mean_v:.1f} ({p.p5_v:.1f}..{p.p95_v:.1f})")
    lines += [f"{hour:02d}h  " + "   ".join(cells) for hour, cells in sorted(by_hour.items())]
    return lines


def _events_text(r: VoltageReport, tz: tzinfo) -> list[str]:
    lines = _header("Voltage events", r, tz)
    lines.append(
        f"{len(r.events)} event(s); the {len(r.critical)} furthest from nominal with what the house did:"
    )
    if r.critical:
        lines.append(
            f"{'kind':<12}{'phase':<8}{'start':<17}{'minutes':>8}{'peak V':>8}{'PV W':>8}"
            f"{'export W':>9}{'max':>7}{'load W':>8}{'export before':>14}"
        )
    for c in r.critical:
        e = c.event
        lines.append(
            f"{e.kind.value:<12}{e.phase:<8}{_local(e.start, tz):<17}{e.duration_s / 60:>8.0f}"
            f"{e.peak_v:>8.1f}{_v(c.pv_w_mean, '.0f'):>8}{_v(c.export_w_mean, '.0f'):>9}"
            f"{_v(c.export_w_max, '.0f'):>7}{_v(c.load_w_mean, '.0f'):>8}{_v(c.export_w_mean_before, '.0f'):>14}"
        )
    return lines


async def _energy(site: StoredSite, args: argparse.Namespace, start: datetime, end: datetime) -> int:
    async def use(data: DataManager) -> int:
        nonlocal start
        history = await read_site_history(data, start, end)
        if args.since is None and history.present.any():  # a new site: from its first day with data
            first = datetime.fromtimestamp(float(history.times[history.present.argmax()]), site.tz).date()
            if first > start.date():
                start = day_window(first, site.tz)[0].astimezone(site.tz)
                history = await read_site_history(data, start, end)
        source = (
            BillSource(site.config.settlement.build(), site.config.prices.tariff)
            if site.config
            else BillSource()
        )
        report = energy_report(history, site.battery, site.tz, args.period, site.currency, source)
        if args.json:
            _print_json(report.to_dict())
            return 0
        print(
            f"Energy ({site.currency}) {start.date()} .. {(end - timedelta(days=1)).date()} "
            f"per {args.period}: {report.status.value}"
        )
        if report.message:
            print(f"  {report.message}")
        recorded, intervals = int(history.present.sum()), history.present.size
        if recorded == 0:
            print(
                "  no PV, load and grid data recorded in these days (is the daemon running with this state directory?)"
            )
            return 0
        first_at = datetime.fromtimestamp(float(history.times[history.present.argmax()]), site.tz)
        print(
            f"  recorded: {recorded * history.step_h:.1f} h of {intervals * history.step_h:.1f} h "
            f"({recorded / intervals:.0%}), the first at {first_at:%Y-%m-%d %H:%M}"
        )
        print(
            f"{'period':<12}{'PV':>8}{'own use':>8}{'export':>8}{'import':>8}{'load':>8}{'batt in':>8}"
            f"{'out':>7}{'cycles':>7}{'SC %':>6}{'aut %':>6}{'paid':>9}{'no batt':>9}{'self-use':>9}"
            f"{'saved b.':>9}{'saved pl.':>10}{'missing':>8}"
        )
        for p in [*report.periods, *([report.total] if report.total and len(report.periods) > 1 else [])]:
            sc, aut = p.self_consumption_ratio, p.autarky_ratio
            print(
                f"{p.label:<12}{p.pv_kwh:>8.1f}{p.self_consumed_kwh:>8.1f}{p.export_kwh:>8.1f}"
                f"{p.import_kwh:>8.1f}{p.load_kwh:>8.1f}{p.charge_kwh:>8.1f}{p.discharge_kwh:>7.1f}"
                f"{p.cycles:>7.2f}{_v(sc * 100 if sc is not None else None, '.0f'):>6}"
                f"{_v(aut * 100 if aut is not None else None, '.0f'):>6}{p.cost_paid:>9.2f}"
                f"{p.cost_no_battery:>9.2f}{p.cost_self_consumption:>9.2f}{p.savings_battery:>9.2f}"
                f"{p.savings_planning:>10.2f}{p.missing:>8}"
            )
        if report.bill is not None:
            print(f"\nthe bill by month, as settled under {report.bill.scheme} ({site.currency}):")
            print("\n".join(bill_lines(report.bill)))
        return 0

    return await _with_data(site, use)


async def _quality(site: StoredSite, args: argparse.Namespace, start: datetime, end: datetime) -> int:
    async def use(data: DataManager) -> int:
        rows: list[FieldQuality] = []
        statuses: dict[str, str] = {}
        day = start.date()
        while day_window(day, site.tz)[0] < min(end, data.now()):
            result = await data.quality(day, site.tz)
            statuses[day.isoformat()] = result.status.value
            rows += result.data or []
            day += timedelta(days=1)
        if args.json:
            _print_json({"days": statuses, "fields": [q.as_dict() for q in rows]})
            return 0
        print(
            f"{'day':<12}{'field':<20}{'complete':>9}{'gaps':>6}{'longest':>9}{'range':>7}{'stuck':>7}{'resets':>7}"
        )
        for q in rows:
            print(
                f"{q.day.isoformat():<12}{q.field:<20}{q.completeness * 100:>8.1f}%{q.gaps:>6}"
                f"{q.longest_gap_s / 60:>8.0f}m{q.out_of_range_minutes:>7}{q.stuck_minutes:>7}{q.counter_resets:>7}"
            )
        return 0

    return await _with_data(site, use)


# --- scenario --------------------------------------------------------------------------------------


async def _scenario(site: StoredSite, args: argparse.Namespace, start: datetime, end: datetime) -> int:
    """The stored 15-min history from its first to its last recorded interval as a scenario CSV,
    with a forecast service's PV and load where they were imported (``--map ...=pv_forecast_w``)."""
    named = currency_from_name(args.out)
    if named != site.currency:
        raise ValueError(
            f"--out {args.out}: the file name must end with the site's currency, e.g. "
            f"{args.out.with_name(f'site_{site.currency.lower()}.csv').name} (the name says {named})"
        )

    async def use(data: DataManager) -> int:
        history = await read_site_history(data, start, end)
        if not history.present.any():
            print(f"hemsd: no PV/load/grid history from {start.date()} to {end.date()}", file=sys.stderr)
            return EXIT_FAILURE
        recorded = np.flatnonzero(history.present)
        first, stop = int(recorded[0]), int(recorded[-1]) + 1
        scenario = history.scenario(site.currency, args.out.name)
        service = await data.history(FORECAST_SERIES, start, end, STEP)
        columns: dict[str, npt.NDArray[np.float64]] = {}
        if service.data is not None:
            index = np.searchsorted(history.times, service.data.times)
            inside = index < history.times.size
            for name in FORECAST_SERIES:
                mean = service.data.fields[name].mean
                if np.isfinite(mean).any():
                    column = np.full(history.times.size, np.nan)
                    column[index[inside]] = mean[inside]
                    columns[name] = column
        scenario = replace(
            scenario,
            pv_forecast_w=columns.get("pv_forecast_w"),
            load_forecast_w=columns.get("load_forecast_w"),
        ).slice(first, stop)
        write_scenario(scenario, args.out)
        gaps = stop - first - int(history.present[first:stop].sum())
        print(
            f"{args.out}: {len(scenario)} intervals of 15 min from {scenario.start:%Y-%m-%d %H:%M} UTC"
            f"{f', {gaps} without data (as zero power)' if gaps else ''}"
            f"{'; forecast columns ' + ', '.join(columns) if columns else ''}; "
            f"hemsd backtest {args.out} --forecast realistic"
        )
        return 0

    return await _with_data(site, use)


# --- simulate --------------------------------------------------------------------------------------


async def _simulate(site: StoredSite, args: argparse.Namespace, start: datetime, end: datetime) -> int:
    if args.scenario is not None:
        scenario = load_scenario(args.scenario)
        tz = site.tz if site.config else default_timezone(scenario)
        if args.since or args.until:  # only the days asked for
            start, end = _window(args, tz, len(scenario) // scenario.steps_per_day)
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

    return await _with_data(site, use)


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
        _print_json({"source": source, **result.to_dict()})
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
            f"{_v(row.payback_years):>10}{o.import_kwh:>9.0f}{o.export_kwh:>9.0f}{o.cycles:>8.0f}"
            f"{o.self_consumption_ratio * 100:>6.0f}{o.autarky_ratio * 100:>6.0f}"
        )

    lines.append(line(result.reference, f"as it is: {result.reference.outcome.label}"))
    lines += [line(row, row.outcome.label) for row in result.rows]
    return lines


Runner = Callable[[StoredSite, argparse.Namespace, datetime, datetime], Coroutine[object, object, int]]
RUNNERS: dict[str, Runner] = {
    "voltage": _voltage,
    "events": _voltage,
    "energy": _energy,
    "quality": _quality,
    "simulate": _simulate,
    "scenario": _scenario,
}
