"""``hemsd override``: ask the running daemon for a mode, end overrides, undo the last one, list them.

The request is validated and written to the daemon's SQLite database (the same table the MQTT
and HTTP commands write); the daemon applies it on its next tick.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from controller.cli import add_config_options, finite, load_for_tool, nest_config_options
from controller.cli.state_store import run_on_store
from controller.config.models import EXIT_CONFIG
from controller.control.overrides import MODES, OverrideError, OverrideRequest, active, expiry, running
from storage.records import OverrideRecord
from storage.sqlite import SqliteStore


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_config_options(parser, state_dir=False)
    sub = parser.add_subparsers(dest="override_action", metavar="ACTION", required=True)
    for mode in MODES:
        child = sub.add_parser(
            mode, help=f"{mode.replace('_', ' ')}" + (" (end every override)" if mode == "auto" else "")
        )
        if mode != "auto":
            child.add_argument(
                "--minutes", type=finite, default=60.0, help="how long it lasts (default 60, at most 1440)"
            )
        if mode in ("force_charge", "force_discharge"):
            child.add_argument("--power-w", type=finite, required=True, help="charge or discharge power, W")
            what = "target SoC to charge to" if mode == "force_charge" else "SoC floor to discharge down to"
            child.add_argument("--soc", type=finite, required=True, help=f"{what}, percent")
    sub.add_parser("undo", help="cancel the newest override still in force")
    sub.add_parser("list", help="the recent overrides, newest first")
    nest_config_options(parser, state_dir=False)


def _request(args: argparse.Namespace) -> OverrideRequest:
    minutes = getattr(args, "minutes", 60.0)
    return OverrideRequest(
        mode=args.override_action,
        source="cli",
        duration=timedelta(minutes=minutes),
        power_w=getattr(args, "power_w", None),
        soc_pct=getattr(args, "soc", None),
    )


def _describe(record: OverrideRecord, now: datetime) -> str:
    state = (
        "cancelled"
        if record.cancelled_at
        else ("expired" if record.expires_at is None or expiry(record) <= now else "active")
    )
    extra = ""
    if record.power_w is not None:
        extra += f" {record.power_w:.0f} W"
    if record.soc_pct is not None:
        extra += f" SoC {record.soc_pct:.0f}%"
    until = record.expires_at.isoformat(timespec="minutes") if record.expires_at else "-"
    return f"{record.id:>5}  {record.created_at.isoformat(timespec='seconds')}  {record.mode:<16}{extra:<18} until {until}  {record.source:<5} {state}"


async def _execute(store: SqliteStore, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    records = await store.overrides(limit=50)
    action = args.override_action
    if action == "list":
        if not records:
            print("no overrides")
            return 0
        print(
            f"{'id':>5}  {'created (UTC)':<25} {'mode':<16}{'power, SoC':<18} {'until':<22} {'from':<5} state"
        )
        for record in records:
            print(_describe(record, now))
        return 0
    if action == "undo":
        current = active(records, now)
        if current is None or current.id is None:
            print("no override in force")
            return 1
        await store.cancel_override(current.id, now)
        print(f"cancelled override {current.id} ({current.mode})")
        return 0
    if action == "auto":  # as from Home Assistant or the web: every running override ends
        ended = running(records, now)
        for record in ended:
            await store.cancel_override(record.id or 0, now)
        print(f"mode auto: {len(ended)} override(s) ended")
        return 0
    request = _request(args)
    new_id = await store.add_override(request.record(now))
    print(f"override {new_id}: {request.mode} until {(now + request.duration).isoformat(timespec='minutes')}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    config = load_for_tool(args)
    if config is None:
        return EXIT_CONFIG
    try:
        if args.override_action not in ("list", "undo"):
            _request(args)  # validate before touching the database
    except OverrideError as exc:
        print(f"hemsd override: {exc}", file=sys.stderr)
        return 2

    return run_on_store("override", config, lambda store: _execute(store, args))
