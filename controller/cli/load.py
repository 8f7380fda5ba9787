"""``hemsd load``: set, cancel or list the flexible loads' requirements in the running daemon.

A requirement ("dishwasher done by 17:00", "boiler at 60 degC by 06:30", weekly with ``--days``:
"dishwasher done by 17:00 on mon-fri") is validated as the
MQTT and HTTP commands are (the ``load_goal`` payload, its parser and the checks against the
configured load) and written to the daemon's SQLite database (controller.control.load_goals);
the daemon takes it up on its next tick and re-plans.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, tzinfo

from controller.cli import add_config_options, finite, load_for_tool, nest_config_options
from controller.cli.state_store import run_on_store
from controller.config.models import EXIT_CONFIG, HemsdConfig
from controller.control import load_goals
from controller.control.applier import control_limits
from controller.control.commands import (
    CancelLoadGoalCommand,
    CommandRejectedError,
    LoadGoalCommand,
    parse_command,
)
from controller.daemon.load_marks import MARKS_KEY
from storage.sqlite import SqliteStore


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_config_options(parser, state_dir=False)
    sub = parser.add_subparsers(dest="load_action", metavar="ACTION", required=True)
    goal = sub.add_parser(
        "goal",
        help="an appliance's run done by a time, or a store at a temperature by one (once, or weekly with "
        "--days; replaces the one-off goal, or the weekly one at the same time)",
    )
    goal.add_argument("name", help="the load ([[loads]] name)")
    when = goal.add_mutually_exclusive_group(required=True)
    when.add_argument("--by", help="local time HH:MM: its next occurrence (with --days: on those days)")
    when.add_argument("--at", help="one instant, ISO 8601 with offset (at most 7 days ahead)")
    goal.add_argument("--days", help="weekly, with --by: days of the week, e.g. mon,tue,wed,thu,fri")
    goal.add_argument(
        "--temperature", type=finite, help="degC: a water heater's or heat pump's (required for them)"
    )
    cancel = sub.add_parser(
        "cancel", help="cancel one of a load's goals: its weekly one at --by, else the one due next"
    )
    cancel.add_argument("name", help="the load ([[loads]] name)")
    cancel.add_argument("--by", help="local time HH:MM: the weekly goal at that time")
    sub.add_parser("list", help="the loads, their goals and which are marked unreliable")
    nest_config_options(parser, state_dir=False)


def _command(
    args: argparse.Namespace, config: HemsdConfig, now: datetime
) -> LoadGoalCommand | CancelLoadGoalCommand:
    """The command the arguments make (the MQTT ``load_goal`` / ``load_goal_cancel`` payload's)."""
    if args.load_action == "cancel":
        payload = args.name if args.by is None else json.dumps({"load": args.name, "by": args.by})
        command = parse_command("load_goal_cancel", payload.encode(), control_limits(config), now)
    else:
        body: dict[str, object] = {"load": args.name}
        body.update({"at": args.at} if args.at is not None else {"by": args.by})
        if args.days is not None:
            body["days"] = [d.strip() for d in args.days.split(",")]
        if args.temperature is not None:
            body["temperature_c"] = args.temperature
        command = parse_command("load_goal", json.dumps(body).encode(), control_limits(config), now)
    if not isinstance(command, LoadGoalCommand | CancelLoadGoalCommand):
        raise TypeError(f"not a load goal command: {command!r}")
    return command


async def _execute(store: SqliteStore, args: argparse.Namespace, config: HemsdConfig, now: datetime) -> int:
    tz = config.site.zone
    stored = load_goals.LoadGoals.from_json(await store.get_state(load_goals.STATE_KEY)).current(now, tz)
    if args.load_action == "list":
        marks = await store.get_state(MARKS_KEY)
        marks = marks if isinstance(marks, dict) else {}
        for load in config.loads:
            goals = stored.of(load.name)
            text = "; ".join(f"goal {g.describe(tz)} (from {g.source})" for g in goals) or "no goal"
            if load.name in marks:
                text += "; " + _marked(marks[load.name], tz)
            print(f"{load.name:<16} {load.type:<13} {text}")
        if not config.loads:
            print("no loads configured")
        return 0
    updated, summary = load_goals.updated(stored, _command(args, config, now), "cli", now, config)
    await store.put_state(load_goals.STATE_KEY, updated.to_json())
    print(summary)
    return 0


def _marked(until: object, tz: tzinfo) -> str:
    """A stored unreliable mark in words."""
    if until is None:
        return "marked unreliable until said reliable again"
    try:
        when = datetime.fromisoformat(str(until))
    except ValueError:
        return f"marked unreliable (its end {until!r} does not read)"
    return f"marked unreliable, tried again at {when.astimezone(tz):%Y-%m-%d %H:%M}"


def run_command(args: argparse.Namespace) -> int:
    config = load_for_tool(args)
    if config is None:
        return EXIT_CONFIG
    now = datetime.now(UTC)
    try:
        if args.load_action != "list":
            command = _command(args, config, now)
            if isinstance(command, LoadGoalCommand):  # it fits the load: checked before the database
                load_goals.updated(load_goals.NO_LOAD_GOALS, command, "cli", now, config)
    except CommandRejectedError as exc:
        print(f"hemsd load: {exc}", file=sys.stderr)
        return 2

    return run_on_store(
        "load", config, lambda store: _execute(store, args, config, now), (CommandRejectedError,)
    )
