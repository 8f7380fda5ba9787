"""``hemsd demo``: the whole daemon on embedded defaults, with no network and no hardware.

The emulated GoodWe ET runs on loopback and the real goodwe driver talks to it; storage is a
temporary SQLite database; prices come from a CSV file of synthetic day-ahead prices written at
start (a typical Polish day shape: cheap nights and midday, morning and evening peaks) with the
G11 distribution fees and VAT on top. The clock runs ``--speed`` times faster than real time (one
simulated day in two minutes by default); the hours asked for are counted from the daemon's start,
so a slow start does not shorten the run. A status line is printed every simulated quarter-hour
and a summary at the end: energy, cost, and the cost of the same house with no battery.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import random
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from controller.clock import AcceleratedClock, Clock
from controller.config.loading import load_config_text
from controller.config.models import ConfigError, HemsdConfig
from controller.daemon.app import HemsdApp
from controller.daemon.runner import Daemon, configure_logging
from controller.daemon.systemd import Notifier
from controller.daemon.wiring import create_application
from drivers.inverter.types import CommandKind

TIMEZONE = "Europe/Warsaw"
DEMO_TOML = """
[site]
id = "demo"
name = "hemsd demo"
timezone = "{tz}"
currency = "PLN"

[logging]
level = "{log_level}"

[daemon]
poll_interval_s = 120
plan_interval_min = 15
prices_interval_min = 60
forecast_interval_min = 60
publish_interval_s = 60
housekeeping_interval_min = 360
stop_timeout_s = 8

[inverter]
type = "emulator"
protocol = "{protocol}"
daily_load_kwh = 12
initial_soc_pct = 30

[battery]
capacity_kwh = 10
min_soc_pct = 12
max_soc_pct = 100
max_charge_w = 5000
max_discharge_w = 5000

[executor]
min_dwell_s = 300

[forecast]
yearly_load_kwh = 4400
[[forecast.arrays]]
kwp = 8.0
tilt_deg = 35
azimuth_deg = 180

[storage]
state_dir = "{state_dir}"
commit_interval_s = 1

[[prices.sources]]
type = "csv"
path = "{prices_csv}"
currency = "PLN"
resolution_min = 15
timezone = "{tz}"

[prices.tariff]
vat = 0.23
[prices.tariff.calendar]
preset = "G11"
[prices.tariff.fees.all]
distribution = 0.33
system = 0.04
excise = 0.005
[prices.tariff.export]
mode = "market"
factor = 1.0
"""
# Synthetic day-ahead market price (PLN/kWh) by local hour: the shape, not any real day.
PRICE_SHAPE: tuple[float, ...] = (
    0.38, 0.35, 0.33, 0.33, 0.35, 0.42, 0.55, 0.72, 0.70, 0.55, 0.38, 0.22,
    0.12, 0.08, 0.10, 0.20, 0.42, 0.68, 0.90, 0.98, 0.85, 0.66, 0.52, 0.44,
)  # fmt: skip


def write_price_csv(path: Path, first_day: datetime, days: int, seed: int = 7) -> None:
    """Synthetic 15-minute market prices for ``days`` local days from ``first_day`` (local midnight)."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not cryptography
    lines = ["start,price"]
    for d in range(days):
        level = 0.85 + 0.3 * rng.random()
        midday = 0.4 + 1.2 * rng.random()  # sunnier days push midday prices lower
        day = first_day + timedelta(days=d)
        for q in range(24 * 4):
            local = day + timedelta(minutes=15 * q)
            hour = local.hour
            base = PRICE_SHAPE[hour]
            if 10 <= hour <= 15:
                base = base * midday - 0.05 * (midday - 1)
            price = round(base * level + 0.02 * math.sin(q), 4)
            lines.append(f"{local.isoformat()},{price}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class Ledger:
    """Per quarter-hour accounting from the emulator's exact counters, for the summary."""

    currency: str
    cost: float = 0.0
    no_battery_cost: float = 0.0
    rows: int = 0
    last: dict[str, float] = field(default_factory=dict)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hours",
        type=float,
        default=24.0,
        help="simulated hours to run from the daemon's start (default 24)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=720.0,
        help="simulated seconds per real second (default 720: a day in 2 min)",
    )
    parser.add_argument("--start", default="", help="local start date YYYY-MM-DD (default: today)")
    parser.add_argument("--protocol", choices=("udp", "tcp"), default="udp", help="emulator transport")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="keep the database here (default: temporary)"
    )
    parser.add_argument("--mqtt", default="", metavar="HOST[:PORT]", help="also publish to this MQTT broker")
    parser.add_argument(
        "--influx", default="", metavar="URL", help="also write to this InfluxDB (1.x /write)"
    )
    parser.add_argument(
        "--web", type=int, default=None, metavar="PORT", help="also serve the dashboard on this port"
    )
    parser.add_argument("--quiet", action="store_true", help="no status line per interval")


def _demo_config(args: argparse.Namespace, state_dir: Path, prices_csv: Path) -> HemsdConfig:
    text = DEMO_TOML.format(
        tz=TIMEZONE,
        log_level="WARNING",
        protocol=args.protocol,
        state_dir=state_dir.as_posix(),
        prices_csv=prices_csv.as_posix(),
    )
    if args.mqtt:
        host, _, port = args.mqtt.partition(":")
        text += f'\n[mqtt]\nhost = "{host}"\nport = {int(port or 1883)}\n'
    if args.influx:
        text += f'\n[storage.influx]\n[storage.influx.server]\ntype = "v1"\nurl = "{args.influx}"\ndatabase = "hemsd"\n'
    if args.web is not None:
        text += f'\n[web]\nenabled = true\nport = {int(args.web)}\nwrite_enabled = true\ntoken = "{args.web_token}"\n'
    return load_config_text(text, "hemsd demo")


def _start_of(args: argparse.Namespace, tz: ZoneInfo) -> datetime:
    if args.start:
        day = datetime.fromisoformat(args.start)
        return day.replace(tzinfo=tz, hour=0, minute=0, second=0, microsecond=0)
    return datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)


async def _watch(
    app_box: list[HemsdApp], clock: Clock, hours: timedelta, daemon: Daemon, ledger: Ledger, quiet: bool
) -> None:
    tz = ZoneInfo(TIMEZONE)
    await daemon.started.wait()
    # counted from the daemon's start: at 2880x a start that takes two real seconds is 1.6 simulated hours
    until = clock.now() + hours
    app = app_box[0]
    emulator = app.emulator
    assert emulator is not None
    emulator.advance()
    ledger.last = _counters(app)
    boundary = _next_quarter(clock.now())
    while clock.now() < until:
        await clock.sleep((boundary - clock.now()).total_seconds())
        emulator.advance()
        price = app.price_now()
        _account(app, ledger, price.import_price if price else 0.0, price.export_price if price else 0.0)
        if not quiet:
            print(_status(app, boundary.astimezone(tz)), flush=True)
        boundary += timedelta(minutes=15)
    daemon.request_stop()


def _counters(app: HemsdApp) -> dict[str, float]:
    assert app.emulator is not None
    c = app.emulator.counters
    return {
        name: float(getattr(c, name))
        for name in ("pv_kwh", "load_kwh", "import_kwh", "export_kwh", "charge_kwh", "discharge_kwh")
    }


def _account(app: HemsdApp, ledger: Ledger, import_price: float, export_price: float) -> None:
    now = _counters(app)
    delta = {k: now[k] - ledger.last.get(k, 0.0) for k in now}
    ledger.last = now
    ledger.cost += delta["import_kwh"] * import_price - delta["export_kwh"] * export_price
    net = delta["load_kwh"] - delta["pv_kwh"]
    ledger.no_battery_cost += max(net, 0.0) * import_price - max(-net, 0.0) * export_price
    ledger.rows += 1


def _status(app: HemsdApp, at: datetime) -> str:
    snap = app.snapshot
    decision = app.parts.control.last_decision
    price = app.price_now()
    reading = (
        "no reading"
        if snap is None
        else f"SoC {snap.soc_pct:5.1f}%  PV {snap.pv_w / 1000:4.1f} kW  load {snap.load_w / 1000:4.1f} kW  grid {snap.grid_w / 1000:+5.1f} kW"
    )
    action = "-"
    if decision is not None:
        cmd = decision.command
        action = cmd.kind.value
        if cmd.kind is CommandKind.CHARGE and cmd.target_soc is not None:
            action += f" {cmd.power_w / 1000:.1f} kW up to {cmd.target_soc:.0f}%"
        elif cmd.kind is CommandKind.DISCHARGE and cmd.target_soc is not None:
            action += f" {cmd.power_w / 1000:.1f} kW down to {cmd.target_soc:.0f}%"
    price_text = f"{price.import_price:.2f}/{price.export_price:.2f}" if price else "-"
    return f"{at:%a %H:%M}  {reading}  | {action:<26} | {price_text} PLN/kWh"


STATUS_HEADER = (
    "each line: the readings at that instant (grid + = import) | the command in force then "
    "(a discharge stops at its SoC floor, and the house may draw less than its power) | "
    "import/export price"
)


def _next_quarter(t: datetime) -> datetime:
    base = t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)
    return base + timedelta(minutes=15)


async def _run(args: argparse.Namespace, state_dir: Path) -> int:
    tz = ZoneInfo(TIMEZONE)
    start = _start_of(args, tz)
    prices_csv = state_dir / "demo-prices.csv"
    write_price_csv(prices_csv, start - timedelta(days=1), days=int(args.hours // 24) + 4)
    try:
        config = _demo_config(args, state_dir, prices_csv)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    configure_logging(config.logging.level)
    # at this speed a poll may still run when the next one is due; skipping it is expected
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    clock = AcceleratedClock(start, args.speed)
    apps: list[HemsdApp] = []

    def factory(cfg: HemsdConfig, clk: Clock) -> HemsdApp:
        app = create_application(cfg, clk)
        apps.append(app)
        return app

    daemon = Daemon(config=config, app_factory=factory, clock=clock, notifier=Notifier(""))
    ledger = Ledger(config.site.currency)
    if args.web is not None:
        print(f"dashboard: http://127.0.0.1:{args.web}/#token={args.web_token}")
    print(
        f"hemsd demo: {args.hours:g} simulated hours from {start:%Y-%m-%d %H:%M %Z} at {args.speed:g}x; state in {state_dir}"
    )
    print(
        "an emulated GoodWe ET with 8 kWp of PV (the sun and a drawn weather of that date at 52 N), "
        "a 10 kWh battery and a 12 kWh/day house; synthetic day-ahead prices (a typical Polish day's "
        "shape, not a real day's) with G11 fees and VAT"
    )
    if not args.quiet:
        print(STATUS_HEADER)
    watcher = asyncio.create_task(
        _watch(apps, clock, timedelta(hours=args.hours), daemon, ledger, args.quiet)
    )
    code = await daemon.run()
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    if apps:
        await _summary(apps[0], ledger, daemon)
    _next_steps(args, state_dir)
    return code


def _next_steps(args: argparse.Namespace, state_dir: Path) -> None:
    print()
    print("next")
    if args.state_dir is None:
        print(f"  {state_dir} is deleted now; keep a run's database with --state-dir DIR, then")
        print("  hemsd analytics energy --state-dir DIR (and sessions, db check) read it")
    else:
        print(f"  the database stays in {state_dir}: hemsd analytics energy --state-dir {state_dir}")
    if args.web is None:
        print("  see the dashboard while it runs: hemsd demo --web 8780")
    print("  your own site: copy config/hemsd.example.toml, hemsd check-config FILE, hemsd run --config FILE")
    print("  what hemsd would have done with your history: hemsd import ha-csv ..., then")
    print(
        "  hemsd analytics scenario --out site_pln.csv and hemsd backtest site_pln.csv --forecast realistic"
    )


async def _summary(app: HemsdApp, ledger: Ledger, daemon: Daemon) -> None:
    assert app.emulator is not None
    c = app.emulator.counters
    writes = app.emulator.writes_total
    failures = sum(s.failures for s in daemon.stats.values())
    print()
    print("summary")
    print(f"  PV produced       {c.pv_kwh:8.2f} kWh    house used     {c.load_kwh:8.2f} kWh")
    print(f"  imported          {c.import_kwh:8.2f} kWh    exported       {c.export_kwh:8.2f} kWh")
    print(f"  battery charged   {c.charge_kwh:8.2f} kWh    discharged     {c.discharge_kwh:8.2f} kWh")
    print(
        f"  cost with hemsd   {ledger.cost:8.2f} {ledger.currency}    with no battery {ledger.no_battery_cost:8.2f} {ledger.currency}"
    )
    print(
        f"  saved             {ledger.no_battery_cost - ledger.cost:8.2f} {ledger.currency} over {ledger.rows} quarter-hours"
    )
    print(f"  inverter writes   {writes:8d}        job failures   {failures:8d}")
    print(f"  final state       {app.status_line()}")


def run_command(args: argparse.Namespace) -> int:
    args.web_token = secrets.token_hex(16)
    if args.hours <= 0 or args.speed <= 0:
        print("hemsd demo: --hours and --speed must be > 0", file=sys.stderr)
        return 2
    if args.state_dir is not None:
        args.state_dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_run(args, args.state_dir))
    state_dir = Path(tempfile.mkdtemp(prefix="hemsd-demo-"))
    try:
        return asyncio.run(_run(args, state_dir))
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
