"""A database that cannot be trusted at start (storage.recovery): damaged files are moved aside,
never deleted, the newest good backup takes their place, a missing database is not silently
replaced, one daemon at a time holds the database, and ``hemsd db`` does the same by hand."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.datamanager import DataManager, StorageOptions
from storage.records import EventRecord
from storage.recovery import DatabaseLockedError, DatabaseMissingError, damage
from storage.sqlite import BACKUP_DIRNAME, SqliteStore, database_path

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


async def a_database_with_a_backup(state: Path) -> tuple[Path, Path]:
    """A daemon's database holding one event, a backup of it, then a second event; closed cleanly."""
    async with DataManager(StorageOptions(state_dir=state), now=lambda: NOW, owner=True) as data:
        await data.log_event(EventRecord(NOW, "test.before_backup", "in the backup"))
        await data.flush()
        backup = await data.backup()
        await data.log_event(EventRecord(NOW, "test.after_backup", "only in the database"))
    return database_path(state), backup


def overwrite(path: Path, offset: int, length: int) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(b"\xa5" * length)


async def kinds(state: Path) -> set[str]:
    async with SqliteStore(database_path(state)) as store:
        return {e.kind for e in await store.events(limit=100)}


async def test_a_damaged_header_is_moved_aside_and_the_newest_backup_restored(tmp_path: Path) -> None:
    state = tmp_path / "state"
    db, backup = await a_database_with_a_backup(state)
    overwrite(db, 0, 100)
    async with DataManager(StorageOptions(state_dir=state), now=lambda: NOW, owner=True) as data:
        recovery = data.store.recovery
        assert recovery is not None
        assert recovery.restored == backup
        assert "header" in recovery.reason
        events = {e.kind: e for e in await data.events(limit=100)}
    assert "test.before_backup" in events  # the backup's content
    assert "test.after_backup" not in events
    assert events["storage.recovered"].data["moved_to"] == str(recovery.moved_to)
    assert recovery.moved_to.read_bytes()[:100] == b"\xa5" * 100  # kept


async def test_without_a_backup_it_starts_empty_and_keeps_the_damaged_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    db, backup = await a_database_with_a_backup(state)
    backup.unlink()
    overwrite(db, 0, 16)
    async with DataManager(StorageOptions(state_dir=state), now=lambda: NOW, owner=True) as data:
        recovery = data.store.recovery
        assert recovery is not None
        assert recovery.restored is None
        assert "empty database" in recovery.message()
        assert [e.kind for e in await data.events(limit=100)] == ["storage.recovered"]
    assert len(list(state.glob("hemsd.sqlite3.damaged-*"))) == 1


async def test_a_damaged_page_is_found_after_an_unclean_stop_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    db, _ = await a_database_with_a_backup(state)
    conn = sqlite3.connect(db)  # enough pages that one in the middle belongs to a table
    with conn:
        conn.execute("CREATE TABLE filler (x BLOB)")
        conn.executemany("INSERT INTO filler VALUES (?)", [(bytes(3000),)] * 200)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    overwrite(db, page * 40, page)
    assert damage(db, deep=False) is None  # the header is fine
    assert damage(db, deep=True) is not None
    (db.parent / (db.name + ".open")).touch()  # as a kill -9 leaves it
    async with DataManager(StorageOptions(state_dir=state), now=lambda: NOW, owner=True) as data:
        recovery = data.store.recovery
        assert recovery is not None
        assert "quick_check" in recovery.reason
    assert not (db.parent / (db.name + ".open")).exists()  # closed cleanly this time


async def test_a_missing_database_with_backups_is_not_replaced(tmp_path: Path) -> None:
    state = tmp_path / "state"
    db, _ = await a_database_with_a_backup(state)
    db.unlink()
    with pytest.raises(DatabaseMissingError, match="hemsd db restore"):
        await DataManager(StorageOptions(state_dir=state), owner=True).start()
    assert not db.exists()


async def test_one_daemon_holds_the_database_and_readers_still_read(tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with DataManager(StorageOptions(state_dir=state), owner=True):
        with pytest.raises(DatabaseLockedError, match="in use by another process"):
            await DataManager(StorageOptions(state_dir=state), owner=True).start()
        async with DataManager(StorageOptions(state_dir=state)) as reader:  # the CLI's kind
            assert await reader.events(limit=1) == []


def hemsd_db(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", "db", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_hemsd_db_checks_lists_and_restores(tmp_path: Path) -> None:
    state = tmp_path / "state"
    db, backup = await a_database_with_a_backup(state)
    assert hemsd_db(state, "check").returncode == 0
    listed = hemsd_db(state, "backups")
    assert listed.returncode == 0
    assert str(backup) in listed.stdout
    assert listed.stdout.rstrip().endswith("ok")
    overwrite(db, 0, 16)
    checked = hemsd_db(state, "check")
    assert checked.returncode == 1
    assert "header" in checked.stdout
    restored = hemsd_db(state, "restore")
    assert restored.returncode == 0, restored.stderr
    assert "kept as" in restored.stdout
    assert hemsd_db(state, "check").returncode == 0
    assert "test.before_backup" in await kinds(state)
    async with DataManager(StorageOptions(state_dir=state), owner=True):  # a running daemon
        refused = hemsd_db(state, "restore", str(backup))
    assert refused.returncode == 1
    assert "in use" in refused.stderr
    assert (state / BACKUP_DIRNAME).is_dir()
