"""``hemsd analytics voltage|events|energy|quality|scenario``: the site's history, analysed.

It reads the daemon's database in the configured state directory (``--state-dir`` overrides it)
and may run while the daemon runs: it only reads. Days are local days of the site's zone;
``--until`` is inclusive. Every result says the data manager's status (REAL, PARTIAL, FALLBACK,
ERROR), so a gap in history shows. ``--json`` prints one JSON object instead of tables.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import numpy as np
import numpy.typing as npt

from controller.cli import add_config_options, nest_config_options
from controller.cli.stored_site import (
    EXIT_FAILURE,
    Runner,
    StoredSite,
    day_options,
    local_time,
    number,
    print_json,
    run,
    with_data,
)
from controller.reports.energy import PERIODS, STEP, BillSource, bill_lines, energy_report, read_site_history
from controller.sim.scenario import currency_from_name, write_scenario
from drivers.days import day_window
from storage.analytics import VoltageReport, voltage_report
from storage.datamanager import DataManager
from storage.quality import FieldQuality
from storage.voltage_stats import EventKind, VoltageLimits

DEFAULT_DAYS = {"voltage": 7, "events": 7, "energy": 30, "quality": 7, "scenario": 365}
FORECAST_SERIES = ("pv_forecast_w", "load_forecast_w")  # imported from a forecast service's sensors


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_config_options(parser, state_dir=True)
    sub = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    for name, text in (
        ("voltage", "grid voltage quality (EN 50160), profile, export/voltage fit"),
        ("events", "over- and under-voltage events with PV, export and load around them"),
        ("energy", "energy and money per day, week or month against replayed baselines"),
        ("quality", "data quality per day and field"),
        ("scenario", "the recorded history as a scenario CSV for hemsd backtest"),
    ):
        child = sub.add_parser(name, help=text, description=text)
        day_options(child)
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


def run_command(args: argparse.Namespace) -> int:
    return run(args, RUNNERS[args.analysis], days=DEFAULT_DAYS[args.analysis])


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
            print_json(report.to_dict())
        else:
            print(
                "\n".join(
                    _voltage_text(report, site.tz)
                    if args.analysis == "voltage"
                    else _events_text(report, site.tz)
                )
            )
        return 0 if report.phases else EXIT_FAILURE

    return await with_data(site, use)


def _header(title: str, report: VoltageReport, tz: tzinfo) -> list[str]:
    lines = [f"{title} {local_time(report.start, tz)} .. {local_time(report.end, tz)}: {report.status.value}"]
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
            f"{phase:<8}{n:>7}{number(share, '.2f'):>8}%{number(low):>8}{number(high):>8}   "
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
            f"{c.phase:<8}{d['points']:>8}{number(c.level.slope if c.level else None, '.3f'):>7}"
            f"{number(c.level.r if c.level else None, '.2f'):>7}{number(c.level.intercept if c.level else None):>8}"
            f"{number(c.step.slope if c.step else None, '.3f'):>10}{number(c.impedance_ohm, '.3f'):>7}"
            f"{number(c.max_export_kw if c.max_export_kw > -1e300 else None, '.2f'):>14}"
            f"{number(c.likely_over_voltage_export_kw, '.2f'):>29}"
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
            f"{e.kind.value:<12}{e.phase:<8}{local_time(e.start, tz):<17}{e.duration_s / 60:>8.0f}"
            f"{e.peak_v:>8.1f}{number(c.pv_w_mean, '.0f'):>8}{number(c.export_w_mean, '.0f'):>9}"
            f"{number(c.export_w_max, '.0f'):>7}{number(c.load_w_mean, '.0f'):>8}{number(c.export_w_mean_before, '.0f'):>14}"
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
            print_json(report.to_dict())
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
                f"{p.cycles:>7.2f}{number(sc * 100 if sc is not None else None, '.0f'):>6}"
                f"{number(aut * 100 if aut is not None else None, '.0f'):>6}{p.cost_paid:>9.2f}"
                f"{p.cost_no_battery:>9.2f}{p.cost_self_consumption:>9.2f}{p.savings_battery:>9.2f}"
                f"{p.savings_planning:>10.2f}{p.missing:>8}"
            )
        if report.bill is not None:
            print(f"\nthe bill by month, as settled under {report.bill.scheme} ({site.currency}):")
            print("\n".join(bill_lines(report.bill)))
        return 0

    return await with_data(site, use)


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
            print_json({"days": statuses, "fields": [q.as_dict() for q in rows]})
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

    return await with_data(site, use)


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

    return await with_data(site, use)


RUNNERS: dict[str, Runner] = {
    "voltage": _voltage,
    "events": _voltage,
    "energy": _energy,
    "quality": _quality,
    "scenario": _scenario,
}
