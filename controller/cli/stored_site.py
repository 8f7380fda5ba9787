"""What the analyses and the what-if share: the configured site (its zone, battery, currency and
storage, or defaults where there is none), the window of days asked for, and the database opened
read-only for one command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from controller.cli import load_for_tool
from controller.config.models import EXIT_CONFIG, HemsdConfig
from controller.daemon.parts import storage_options
from controller.physics import BatteryParams
from controller.sim.scenario import ScenarioError
from drivers.days import day_window
from storage import StorageError
from storage.datamanager import DataManager, StorageOptions
from storage.sqlite import database_path

EXIT_FAILURE = 1


def day_options(parser: argparse.ArgumentParser) -> None:
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


@dataclass(frozen=True)
class StoredSite:
    config: HemsdConfig | None
    options: StorageOptions | None
    tz: ZoneInfo
    battery: BatteryParams
    currency: str


def stored_site(args: argparse.Namespace, needs_db: bool) -> StoredSite | None:
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


def window(args: argparse.Namespace, tz: tzinfo, days: int) -> tuple[datetime, datetime]:
    until = args.until or datetime.now(tz).date()
    since = args.since or until - timedelta(days=days - 1)
    if since > until:
        raise ValueError(f"--since {since} is after --until {until}")
    return day_window(since, tz)[0].astimezone(tz), day_window(until, tz)[1].astimezone(
        tz
    )  # local: printed as days


def run(args: argparse.Namespace, runner: Runner, *, days: int, needs_db: bool = True) -> int:
    """Run one analysis over the window ``--since``..``--until`` (``days`` back by default) with
    the configured site and its database (``needs_db``); errors printed, an exit code returned."""
    site = stored_site(args, needs_db)
    if site is None:
        return EXIT_CONFIG
    if needs_db and (site.options is None or not database_path(site.options.state_dir).exists()):
        where = database_path(site.options.state_dir) if site.options else "(no state directory)"
        print(
            f"hemsd: no database at {where} (has the daemon run with this state directory?)", file=sys.stderr
        )
        return EXIT_FAILURE
    try:
        start, end = window(args, site.tz, days)
        return asyncio.run(runner(site, args, start, end))
    except (StorageError, ScenarioError, ValueError) as exc:
        print(f"hemsd: {exc}", file=sys.stderr)
        return EXIT_FAILURE


async def with_data(site: StoredSite, use: Callable[[DataManager], Awaitable[int]]) -> int:
    assert site.options is not None  # checked by run_command
    data = DataManager(site.options)
    await data.store.open()  # not start(): no commit, retention or backup jobs
    try:
        return await use(data)
    finally:
        await data.close()


def print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


def number(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def local_time(t: datetime, tz: tzinfo) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M")


Runner = Callable[[StoredSite, argparse.Namespace, datetime, datetime], Coroutine[object, object, int]]
