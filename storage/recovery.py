"""A database that cannot be trusted at start: found, moved aside, replaced by the newest good backup.

- A header that is not SQLite's, an empty file, or (after an unclean stop, which the marker file
  ``hemsd.sqlite3.open`` records) a failing ``PRAGMA quick_check``: the file and its ``-wal`` and
  ``-shm`` are renamed ``hemsd.sqlite3.damaged-<time>`` (never deleted), and the newest backup that
  passes the same check is copied into place; with none, the daemon starts on an empty database.
  What happened is a :class:`Recovery`, logged and recorded as an event by the data manager.
- A database that is missing while backups exist is not replaced by an empty one (the state
  directory may not be mounted): :class:`DatabaseMissingError` says how to restore.
- ``hemsd db`` checks, lists and restores by hand, with the daemon stopped (:func:`lock`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage import StorageError

HEADER = b"SQLite format 3\x00"
OPEN_MARKER = ".open"  # beside the database while a daemon has it open: left behind by a crash
LOCK_SUFFIX = ".lock"
COMPANIONS = ("-wal", "-shm")
BACKUP_NAME = re.compile(r"^hemsd-\d{8}T\d{6}Z\.sqlite3$")  # hemsd-<UTC time>.sqlite3


class DatabaseMissingError(StorageError):
    """The database is gone while backups of it exist: nothing is created in its place."""


class DatabaseLockedError(StorageError):
    """Another process (a running daemon) holds the database."""


@dataclass(frozen=True, slots=True)
class Recovery:
    reason: str  # why the database was not trusted
    moved_to: Path  # the damaged file, kept
    restored: Path | None  # the backup copied into place (None: an empty database)

    def message(self) -> str:
        start = f"restored from {self.restored.name}" if self.restored else "started on an empty database"
        return f"the database was damaged ({self.reason}): moved aside to {self.moved_to.name}, {start}"


def damage(path: Path, *, deep: bool) -> str | None:
    """Why ``path`` is not a usable database, or None; ``deep`` adds ``PRAGMA quick_check``."""
    try:
        with path.open("rb") as file:
            header = file.read(len(HEADER))
    except OSError as exc:
        return f"cannot be read: {exc}"
    if not header:
        return "the file is empty"
    if header != HEADER:
        return "its header is not SQLite's"
    if not deep:
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        return f"quick_check failed: {exc}"
    results = [str(row[0]) for row in rows]
    return None if results == ["ok"] else f"quick_check: {'; '.join(results[:3])}"


def backups(directory: Path) -> list[Path]:
    """The backups in ``directory``, newest first (their names carry their UTC time)."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if BACKUP_NAME.match(p.name)), reverse=True)


def first_good(candidates: list[Path]) -> Path | None:
    """The first of ``candidates`` that passes the deep check, or None."""
    return next((c for c in candidates if damage(c, deep=True) is None), None)


def unclean(path: Path) -> bool:
    """The previous daemon did not close the database (kill -9, a power cut)."""
    return path.with_name(path.name + OPEN_MARKER).exists()


def mark_open(path: Path, is_open: bool) -> None:
    marker = path.with_name(path.name + OPEN_MARKER)
    if is_open:
        marker.touch(mode=0o600)
    else:
        marker.unlink(missing_ok=True)


def move_aside(path: Path, now: datetime) -> Path:
    """Rename the database and its companions; the new name of the database file."""
    stamp = f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(target)
    for suffix in COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target


def restore(backup: Path, path: Path) -> None:
    """Copy ``backup`` into place as the database (private, like the original)."""
    for suffix in COMPANIONS:
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    partial = path.with_name(path.name + ".restoring")
    shutil.copyfile(backup, partial)
    partial.chmod(0o600)
    os.replace(partial, path)


def recover(path: Path, backup_dir: Path, now: datetime) -> Recovery | None:
    """Check the database before it is opened and replace it when it cannot be trusted (see the
    module docstring); None when it is fine or new."""
    saved = backups(backup_dir)
    if not path.exists():
        if saved:
            raise DatabaseMissingError(
                f"{path} is missing but {backup_dir} holds {len(saved)} backup(s): if the state directory "
                f"is where it should be, restore the newest with 'hemsd db restore', or move the backups "
                f"away to start afresh"
            )
        return None  # a new site: SQLite creates the database
    if path.stat().st_size == 0 and not saved:
        return None  # created by a start that stopped before SQLite wrote to it
    reason = damage(path, deep=unclean(path))
    if reason is None:
        return None
    moved = move_aside(path, now)
    good = first_good(saved)
    if good is not None:
        restore(good, path)
    return Recovery(reason, moved, good)


def lock(path: Path) -> int:
    """Take the database's lock file (held by the daemon while it runs); its descriptor, to
    :func:`unlock`. DatabaseLockedError if another process holds it."""
    lock_path = path.with_name(path.name + LOCK_SUFFIX)
    lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise DatabaseLockedError(f"{path} is in use by another process (a running hemsd?)") from exc
    return fd


def unlock(fd: int) -> None:
    os.close(fd)  # closing the descriptor releases the lock
