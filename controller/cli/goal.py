"""``hemsd goal``: set, cancel or list the battery goals of the running daemon.

A goal is validated as the MQTT and HTTP commands are (the same payload, parser and limits) and
written to the daemon's SQLite database (controller.control.goals); the daemon takes it up on its
next tick and re-plans.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from controller.cli import add_config_options, finite, load_for_tool, nest_config_options
from controller.cli.state_store import run_on_store
from controller.config.models import EXIT_CONFIG, WEEKDAYS, HemsdConfig
from controller.control import goals
from controller.control.applier import control_limits
from controller.control.commands import (
    CancelGoalCommand,
    CommandRejectedError,
    ControlCommand,
    GoalReserveCommand,
    GoalTargetCommand,
    parse_command,
)
from storage.sqlite import SqliteStore


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_config_options(parser, state_dir=False)
    sub = parser.add_subparsers(dest="goal_action", metavar="ACTION", required=True)
    target = sub.add_parser("target", help="reach an SoC by a time (replaces the target set before)")
    target.add_argument("soc", type=finite, help="the SoC to reach, percent")
    when = target.add_mutually_exclusive_group(required=True)
    when.add_argument("--by", help="local time HH:MM: with --days weekly, else its next occurrence")
    when.add_argument("--at", help="one instant, ISO 8601 with offset (at most 7 days ahead)")
    target.add_argument("--days", help=f"comma-separated days with --by ({','.join(WEEKDAYS)})")
    reserve = sub.add_parser("reserve", help="keep at least an SoC until a time (storm mode)")
    reserve.add_argument("soc", type=finite, help="the SoC to keep, percent")
    end = reserve.add_mutually_exclusive_group(required=True)
    end.add_argument("--hours", type=finite, help="from now, at most 168")
    end.add_argument("--until", help="ISO 8601 with offset (at most 7 days ahead)")
    cancel = sub.add_parser("cancel", help="cancel the target or the reserve set at run time")
    cancel.add_argument("kind", choices=("target", "reserve"))
    sub.add_parser("list", help="the goals in force: the file's and the run-time ones")
    nest_config_options(parser, state_dir=False)


def _payload(args: argparse.Namespace) -> tuple[str, bytes]:
    """The command key and payload the arguments make (the MQTT command's)."""
    if args.goal_action == "cancel":
        return "goal_cancel", args.kind.encode()
    body: dict[str, object] = {"soc_pct": args.soc}
    if args.goal_action == "target":
        if args.at is not None:
            body["at"] = args.at
        else:
            body["by"] = args.by
        if args.days is not None:
            body["days"] = [d.strip() for d in args.days.split(",") if d.strip()]
        return "goal_target", json.dumps(body).encode()
    if args.until is not None:
        body["until"] = args.until
    else:
        body["hours"] = args.hours
    return "goal_reserve", json.dumps(body).encode()


def _command(args: argparse.Namespace, config: HemsdConfig, now: datetime) -> ControlCommand:
    key, payload = _payload(args)
    return parse_command(key, payload, control_limits(config), now)


async def _execute(store: SqliteStore, args: argparse.Namespace, config: HemsdConfig, now: datetime) -> int:
    stored = goals.RuntimeGoals.from_json(await store.get_state(goals.STATE_KEY))
    tz = config.site.zone
    if args.goal_action == "list":
        targets, reserves = goals.file_goals(config.goals, tz)
        current = stored.current(now)
        targets += [current.target] if current.target is not None else []
        reserves += [current.reserve] if current.reserve is not None else []
        lines = [f"target  {t.describe(tz):<40} from {t.source}" for t in targets if not t.expired(now)]
        lines += [f"reserve {r.describe(tz):<40} from {r.source}" for r in reserves if not r.expired(now)]
        print("\n".join(lines) if lines else "no goals")
        return 0
    command = _command(args, config, now)
    if not isinstance(command, GoalTargetCommand | GoalReserveCommand | CancelGoalCommand):
        raise TypeError(f"not a goal command: {command!r}")
    updated, summary = goals.updated(stored, command, "cli", now, config)
    await store.put_state(goals.STATE_KEY, updated.to_json())
    print(summary)
    return 0


def run_command(args: argparse.Namespace) -> int:
    config = load_for_tool(args)
    if config is None:
        return EXIT_CONFIG
    now = datetime.now(UTC)
    try:
        if args.goal_action != "list":
            _command(args, config, now)  # validate before touching the database
    except CommandRejectedError as exc:
        print(f"hemsd goal: {exc}", file=sys.stderr)
        return 2

    return run_on_store(
        "goal", config, lambda store: _execute(store, args, config, now), (CommandRejectedError,)
    )
