"""The ``hemsd`` command line.

Each sub-command lives in its own module that defines ``configure_parser(parser)`` and
``run_command(args) -> int``; this table lists them, so the parser is data rather than code.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controller import __version__
from controller.config.loading import load_config
from controller.config.models import EXIT_CONFIG, ConfigError, HemsdConfig

DEFAULT_CONFIG = Path("/etc/hemsd/hemsd.toml")


@dataclass(frozen=True, slots=True)
class SubCommand:
    name: str
    module: str
    help: str


SUBCOMMANDS: tuple[SubCommand, ...] = (
    SubCommand("run", "controller.cli", "run the daemon (as systemd does)"),
    SubCommand("check-config", "controller.cli", "validate a configuration file; exit 0 or 78"),
    SubCommand(
        "demo", "controller.cli.demo", "run the whole controller against an emulated inverter, accelerated"
    ),
    SubCommand(
        "override", "controller.cli.override", "force a mode for a while, end or undo overrides, list them"
    ),
    SubCommand(
        "goal", "controller.cli.goal", "battery goals: an SoC target by a time, a backup reserve; list them"
    ),
    SubCommand(
        "load", "controller.cli.load", "flexible loads: a run done by a time, a store warm by one; list them"
    ),
    SubCommand("sessions", "controller.cli.storage", "list charging/discharging sessions, or show one"),
    SubCommand("config", "controller.cli.storage", "configuration history and rollback"),
    SubCommand(
        "import", "controller.cli.storage", "import history from the GoodWe optimiser or Home Assistant"
    ),
    SubCommand(
        "backtest", "controller.cli.backtest", "replay a site time series through the planner and baselines"
    ),
    SubCommand(
        "analytics", "controller.cli.analytics", "grid voltage quality, events, energy reports, data quality"
    ),
    SubCommand(
        "simulate", "controller.cli.simulate", "what-if: battery size, PV scale or tariff over the history"
    ),
    SubCommand("db", "controller.cli.database", "check the database, list its backups, restore one"),
    SubCommand("emulator", "controller.cli.emulator", "GoodWe ET emulator on Modbus TCP / UDP"),
)


def _add_config_argument(parser: argparse.ArgumentParser, *, positional: bool = False) -> None:
    if positional:
        parser.add_argument("config", type=Path, help="path of the TOML configuration file")
    else:
        parser.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_CONFIG,
            help=f"configuration file (default {DEFAULT_CONFIG})",
        )
    parser.add_argument(
        "--credentials-dir",
        type=Path,
        default=None,
        help="directory of secret files such as mqtt__password (default: $CREDENTIALS_DIRECTORY)",
    )


def finite(text: str) -> float:
    """An option's number: argparse names the option and the value when it is not a finite one
    (``nan``, ``inf``, ``1e999``), rather than the command's JSON refusing its NaN as a payload."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def add_config_options(parser: argparse.ArgumentParser, *, state_dir: bool, nested: bool = False) -> None:
    """--config, --credentials-dir and (``state_dir``) --state-dir, the same for every command
    that reads the configuration; ``nested``: on an action's own parser, so that they may also
    follow the action (``hemsd override list --config F``)."""
    default: object = argparse.SUPPRESS if nested else None
    parser.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS if nested else DEFAULT_CONFIG,
        help=f"configuration file (default {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--credentials-dir",
        type=Path,
        default=default,
        help="directory of secret files such as mqtt__password (default: $CREDENTIALS_DIRECTORY)",
    )
    if state_dir:
        parser.add_argument(
            "--state-dir",
            type=Path,
            default=default,
            help="state directory holding hemsd.sqlite3 (default: from config)",
        )


def nest_config_options(parser: argparse.ArgumentParser, *, state_dir: bool) -> None:
    """The options of :func:`add_config_options` on every action of ``parser`` as well."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                add_config_options(child, state_dir=state_dir, nested=True)


def load_for_tool(args: argparse.Namespace) -> HemsdConfig | None:
    """The configuration for a command that reads the state directory: secrets it does not use
    (the web token) are not required; problems are printed and None returned."""
    return load_or_report(args.config, args.credentials_dir, need_secrets=False)


def load_or_report(
    path: Path, credentials_dir: Path | None = None, *, need_secrets: bool = True
) -> HemsdConfig | None:
    """Load the configuration, or print one line per problem to stderr and return None."""
    try:
        return load_config(path, credentials_dir, need_secrets=need_secrets)
    except ConfigError as exc:
        print(f"hemsd: invalid configuration {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    from controller.clock import SystemClock  # noqa: PLC0415
    from controller.daemon.runner import Daemon, configure_logging  # noqa: PLC0415
    from controller.daemon.wiring import create_application  # noqa: PLC0415 - heavy imports only for `run`

    config = load_or_report(args.config, args.credentials_dir)
    if config is None:
        return EXIT_CONFIG
    configure_logging(config.logging.level)
    path: Path = args.config
    daemon = Daemon(
        config=config,
        app_factory=functools.partial(create_application, config_path=path),
        clock=SystemClock(),
        config_path=path,
        credentials_dir=args.credentials_dir,
    )
    return asyncio.run(daemon.run())


def _check_config(args: argparse.Namespace) -> int:
    config = load_or_report(args.config, args.credentials_dir)
    if config is None:
        return EXIT_CONFIG
    print(f"{args.config}: valid (site {config.site.id!r}, inverter {config.inverter.type})")
    return 0


BUILTIN = {"run": (_run, False), "check-config": (_check_config, True)}


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``selected``'s module is imported (the others are listed with their help),
    so that a quick command such as check-config does not load numpy, pymodbus and aiohttp."""
    parser = argparse.ArgumentParser(
        prog="hemsd",
        description="Home-energy controller: plans a home battery at least cost and drives the inverter.",
    )
    parser.add_argument("--version", action="version", version=f"hemsd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in SUBCOMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        if command.name in BUILTIN:
            _add_config_argument(child, positional=BUILTIN[command.name][1])
            child.set_defaults(handler=BUILTIN[command.name][0])
        elif command.name == selected:
            module = importlib.import_module(command.module)
            module.configure_parser(child)
            child.set_defaults(handler=module.run_command)
    return parser


def _selected(argv: Sequence[str]) -> str | None:
    names = {c.name for c in SUBCOMMANDS}
    return next((a for a in argv if a in names), None)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_selected(arguments))
    args = parser.parse_args(arguments)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
