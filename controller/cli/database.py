"""``hemsd db``: the daemon's database when something went wrong with it.

- ``hemsd db check``: is the database readable and whole (``PRAGMA quick_check``), and does every
  row of the sessions, plans, decisions, events, overrides and config history read? The rows that
  do not (damaged on disk, edited by hand) are listed by table and id; the daemon skips them.
- ``hemsd db backups``: the backups, newest first, each checked.
- ``hemsd db restore [BACKUP]``: put a backup (the newest good one by default) in place of the
  database, which is moved aside, never deleted. Only with the daemon stopped.

The daemon does the same by itself at start when it finds the database damaged (see
``storage.recovery``); these commands are for the cases it leaves to a person: a database that is
missing while backups exist (is the state directory mounted?), or another backup than the newest.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from controller.cli import add_config_options, load_for_tool, nest_config_options
from controller.config.models import EXIT_CONFIG
from storage import StorageError
from storage.recovery import backups, damage, first_good, lock, move_aside, restore, unlock
from storage.rows import damaged_rows
from storage.sqlite import BACKUP_DIRNAME, database_path

EXIT_FAILURE = 1
ROWS_LISTED = 50  # damaged rows named one a line; beyond, counted


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_config_options(parser, state_dir=True)
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    actions.add_parser("check", help="check that the database is readable and whole")
    actions.add_parser("backups", help="list the backups, newest first, each checked")
    restore_parser = actions.add_parser(
        "restore", help="put a backup in place of the database (the daemon must be stopped)"
    )
    restore_parser.add_argument(
        "backup", type=Path, nargs="?", help="the backup (default: the newest good one)"
    )
    nest_config_options(parser, state_dir=True)


def run_command(args: argparse.Namespace) -> int:
    state_dir: Path | None = args.state_dir
    if state_dir is None:
        config = load_for_tool(args)
        if config is None:
            return EXIT_CONFIG
        state_dir = config.storage.state_dir
    path = database_path(state_dir)
    try:
        if args.db_action == "check":
            return _check(path)
        if args.db_action == "backups":
            return _backups(path.parent / BACKUP_DIRNAME)
        return _restore(path, args.backup)
    except (StorageError, OSError) as exc:
        print(f"hemsd db: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _check(path: Path) -> int:
    if not path.exists():
        print(f"{path}: missing")
        return EXIT_FAILURE
    problem = damage(path, deep=True)
    if problem:
        print(f"{path}: {problem}")
        return EXIT_FAILURE
    count = 0
    try:
        for count, row in enumerate(damaged_rows(path), start=1):
            if count <= ROWS_LISTED:
                print(f"{path}: damaged row: {row}")
    except sqlite3.Error as exc:
        print(f"{path}: rows cannot be read: {exc}")
        return EXIT_FAILURE
    if count > ROWS_LISTED:
        print(f"{path}: {count - ROWS_LISTED} more damaged rows")
    print(f"{path}: {f'{count} damaged rows (skipped when read)' if count else 'ok'}")
    return EXIT_FAILURE if count else 0


def _backups(directory: Path) -> int:
    found = backups(directory)
    if not found:
        print(f"no backups in {directory}")
        return EXIT_FAILURE
    for backup in found:
        size_mb = backup.stat().st_size / 1e6
        print(f"{backup}  {size_mb:8.1f} MB  {damage(backup, deep=True) or 'ok'}")
    return 0


def _restore(path: Path, chosen: Path | None) -> int:
    candidates = [chosen] if chosen is not None else backups(path.parent / BACKUP_DIRNAME)
    backup = first_good(candidates)
    if backup is None:
        what = (
            f"{chosen} is not a good backup"
            if chosen
            else f"no good backup in {path.parent / BACKUP_DIRNAME}"
        )
        print(f"hemsd db: {what}", file=sys.stderr)
        return EXIT_FAILURE
    fd = lock(path)  # refuses while the daemon runs
    try:
        moved = move_aside(path, datetime.now(UTC)) if path.exists() else None
        restore(backup, path)
    finally:
        unlock(fd)
    kept = f"; the database before is kept as {moved}" if moved else ""
    print(f"restored {backup} to {path}{kept}")
    return 0
