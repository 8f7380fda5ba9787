"""``hemsd sessions``, ``hemsd config`` and ``hemsd import``: the stored history on the command line.

- ``hemsd sessions list [--since DATE] [--limit N] [--json]``, ``hemsd sessions show ID [--json]``
- ``hemsd config history [--limit N] [--json]``; ``hemsd config rollback N`` validates version N and
  writes it to the configuration file (the running daemon reloads it) and records it as a new version.
- ``hemsd import optimiser DB_FILE`` (GoodWe Dynamic Price Optimiser) and
  ``hemsd import ha-csv CSV_FILE --map sensor.x=pv_w ...`` (Home Assistant history export);
  running an import twice changes nothing.

All three work on the daemon's database in the configured state directory (``--state-dir``
overrides it, e.g. when the configuration file itself is broken) and may run while the daemon runs.
One module serves the three sub-commands: ``configure_parser`` recognises which one by the parser's name.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controller.cli import add_config_options, load_for_tool, nest_config_options
from controller.config.loading import load_config_text
from controller.config.models import EXIT_CONFIG, ConfigError
from storage import StorageError
from storage.importer import import_home_assistant_csv, import_optimiser_db, parse_entity_map
from storage.records import SessionRecord
from storage.series import SeriesStore
from storage.sqlite import SqliteStore, database_path

EXIT_FAILURE = 1
SHORT_ID = 8  # characters of a session id shown in lists (unique prefixes are accepted)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    command = parser.prog.split()[-1]
    builders: dict[str, Callable[[argparse.ArgumentParser], None]] = {
        "sessions": _sessions_parser,
        "config": _config_parser,
        "import": _import_parser,
    }
    if command not in builders:
        raise ValueError(f"controller.cli.storage serves sessions, config and import, not {command!r}")
    add_config_options(parser, state_dir=True)
    builders[command](parser)
    nest_config_options(parser, state_dir=True)


def _sessions_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="storage_action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="charging/discharging sessions, newest first")
    listing.add_argument("--since", type=date.fromisoformat, default=None, help="first day, YYYY-MM-DD (UTC)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    listing.set_defaults(storage_run=_sessions_list)
    show = sub.add_parser("show", help="one session in full")
    show.add_argument("id", help="session id (as listed)")
    show.add_argument("--json", action="store_true", help="JSON instead of text")
    show.set_defaults(storage_run=_sessions_show)


def _config_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="storage_action", metavar="ACTION", required=True)
    history = sub.add_parser("history", help="every accepted configuration, newest first")
    history.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    history.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    history.set_defaults(storage_run=_config_history)
    rollback = sub.add_parser(
        "rollback", help="write configuration version N back to the file, after validation"
    )
    rollback.add_argument("version", type=int, help="version number (see config history)")
    rollback.set_defaults(storage_run=_config_rollback)


def _import_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="storage_action", metavar="SOURCE", required=True)
    optimiser = sub.add_parser("optimiser", help="the GoodWe Dynamic Price Optimiser's SQLite database")
    optimiser.add_argument("database", type=Path, help="its database file")
    optimiser.add_argument(
        "--grid-export-positive",
        action="store_true",
        help="its grid_power is + export (default: + import, as hemsd)",
    )
    ha_csv = sub.add_parser("ha-csv", help="a Home Assistant history export (entity_id,state,last_changed)")
    ha_csv.add_argument("csv", type=Path, help="the CSV file")
    ha_csv.add_argument(
        "--map",
        dest="mapping",
        action="append",
        type=parse_entity_map,
        required=True,
        metavar="ENTITY=FIELD[*SCALE]",
        help="e.g. sensor.pv_power=pv_w or sensor.pv_kw=pv_w*1000; repeat per sensor",
    )
    for child in (optimiser, ha_csv):
        child.add_argument(
            "--timezone",
            default=None,
            help="zone of times without UTC offset (default: the site's time zone)",
        )
    optimiser.set_defaults(storage_run=_import_optimiser)
    ha_csv.set_defaults(storage_run=_import_ha_csv)


Runner = Callable[[SqliteStore, argparse.Namespace], Coroutine[Any, Any, int]]


def run_command(args: argparse.Namespace) -> int:
    config = None
    wants_zone = getattr(args, "timezone", "") is None  # an import without --timezone: the site's zone
    if args.state_dir is None or (wants_zone and args.config.exists()):
        config = load_for_tool(args)
        if config is None and args.state_dir is None:
            return EXIT_CONFIG
    state_dir: Path = args.state_dir or config.storage.state_dir  # type: ignore[union-attr]
    args.site_zone = config.site.zone if config is not None else None
    path = database_path(state_dir)
    if not path.exists() and args.storage_action not in ("optimiser", "ha-csv"):
        print(
            f"hemsd: no database at {path} (has the daemon run with this state directory?)", file=sys.stderr
        )
        return EXIT_FAILURE
    run: Runner = args.storage_run
    try:
        return asyncio.run(_with_store(path, args, run))
    except (StorageError, ValueError) as exc:
        print(f"hemsd: {exc}", file=sys.stderr)
        return EXIT_FAILURE


async def _with_store(path: Path, args: argparse.Namespace, run: Runner) -> int:
    async with SqliteStore(path) as store:
        return await run(store, args)


# --- sessions ------------------------------------------------------------------------------------


def _session_json(s: SessionRecord) -> dict[str, object]:
    return {
        "id": s.id,
        "kind": s.kind.value,
        "start": s.start.isoformat(),
        "end": s.end.isoformat() if s.end else None,
        "soc_start": s.soc_start,
        "soc_end": s.soc_end,
        "grid_kwh": s.grid_kwh,
        "pv_kwh": s.pv_kwh,
        "out_kwh": s.out_kwh,
        "avg_price": s.avg_price,
        "cost": s.cost,
        "trigger": s.trigger.value,
        "status": s.status.value,
        "source": s.source,
    }


def _soc(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


async def _sessions_list(store: SqliteStore, args: argparse.Namespace) -> int:
    since = datetime.combine(args.since, datetime.min.time(), UTC) if args.since else None
    sessions = await store.sessions(since=since, limit=args.limit)
    if args.json:
        for s in sessions:
            print(json.dumps(_session_json(s)))
        return 0
    if not sessions:
        print("no sessions")
        return 0
    print(
        f"{'id':<{SHORT_ID}} {'kind':<9} {'start (UTC)':<16} {'hours':>5} {'SoC':>9} {'grid kWh':>8} {'cost':>8} trigger"
    )
    for s in sessions:
        hours = f"{(s.end - s.start).total_seconds() / 3600:.1f}" if s.end else "open"
        soc = f"{_soc(s.soc_start)}>{_soc(s.soc_end)}"
        print(
            f"{s.id[:SHORT_ID]:<{SHORT_ID}} {s.kind.value:<9} {s.start:%Y-%m-%d %H:%M} {hours:>5} {soc:>9} "
            f"{s.grid_kwh:>8.2f} {s.cost:>8.2f} {s.trigger.value}"
        )
    print(f"(ids shortened to {SHORT_ID} characters: 'hemsd sessions show ID' takes any unique beginning)")
    return 0


async def _sessions_show(store: SqliteStore, args: argparse.Namespace) -> int:
    session = await store.session(args.id)
    if session is None:  # hemsd's own ids are hex: any unique beginning of one will do
        found = await store.sessions_starting_with(str(args.id).strip().lower())
        if len(found) != 1:
            why = "no session" if not found else "more than one session starts with"
            print(f"hemsd: {why} {args.id!r} (see 'hemsd sessions list')", file=sys.stderr)
            return EXIT_FAILURE
        session = found[0]
    data = _session_json(session)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            print(f"{key:>10}: {_shown(key, value)}")
    return 0


DIGITS = {"soc_start": 1, "soc_end": 1, "grid_kwh": 3, "pv_kwh": 3, "out_kwh": 3, "avg_price": 4, "cost": 2}


def _shown(key: str, value: object) -> str:
    """A value as a person reads it: numbers to the digits they mean (JSON keeps them whole)."""
    if value is None:
        return "-"
    if isinstance(value, float) and key in DIGITS:
        return f"{value:.{DIGITS[key]}f}"
    return str(value)


# --- configuration history -------------------------------------------------------------------------


async def _config_history(store: SqliteStore, args: argparse.Namespace) -> int:
    versions = await store.config_versions(limit=args.limit)
    if versions and not args.json:
        print(f"{'version':>7}  {'accepted (UTC)':<23}  {'source':<9} sha256")
    for v in versions:
        if args.json:
            print(
                json.dumps(
                    {
                        "version": v.version,
                        "created_at": v.created_at.isoformat(),
                        "source": v.source,
                        "sha256": v.digest,
                        "text": v.text,
                    }
                )
            )
        else:
            print(f"{v.version:>7}  {v.created_at:%Y-%m-%d %H:%M:%S} UTC  {v.source:<9} {v.digest[:12]}")
    if not versions and not args.json:
        print("no configuration recorded yet")
    return 0


async def _config_rollback(store: SqliteStore, args: argparse.Namespace) -> int:
    version = await store.config_version(args.version)
    if version is None:
        newest = await store.config_versions(limit=1)
        last = f" (versions 1..{newest[0].version})" if newest else ""
        print(f"hemsd: no configuration version {args.version}{last}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        load_config_text(version.text, f"configuration version {version.version}")
    except ConfigError as exc:
        print(f"hemsd: configuration version {version.version} is not valid any more:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    target: Path = args.config
    await asyncio.to_thread(_write_atomically, target, version.text)
    recorded = await store.add_config_version(version.text, "rollback")
    print(
        f"{target}: configuration version {version.version} written back (recorded as version {recorded.version})"
    )
    return 0


def _write_atomically(target: Path, text: str) -> None:
    """Replace ``target`` in one rename, keeping its permissions."""
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o640
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- imports -------------------------------------------------------------------------------------------


def _zone(args: argparse.Namespace) -> tzinfo | None:
    if args.timezone is None:
        zone: tzinfo | None = args.site_zone
        return zone
    try:
        return ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"--timezone {args.timezone!r} is not an IANA time zone (e.g. Europe/Warsaw)"
        ) from None


async def _import_optimiser(store: SqliteStore, args: argparse.Namespace) -> int:
    report = await import_optimiser_db(
        SeriesStore(store), args.database, tz=_zone(args), grid_export_positive=args.grid_export_positive
    )
    print(report.summary())
    return 0


async def _import_ha_csv(store: SqliteStore, args: argparse.Namespace) -> int:
    report = await import_home_assistant_csv(SeriesStore(store), args.csv, args.mapping, tz=_zone(args))
    print(report.summary())
    return 0
