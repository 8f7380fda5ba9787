"""The SQLite database in the state directory (aiosqlite): sessions, plans, decisions, events, overrides,
executor state, config history, the Influx spool, retention and online backups.

One writer connection (WAL, ``synchronous=NORMAL``; ``FULL`` for the few writes that must survive a
power cut: sessions, config versions, overrides, state) serialised by a lock, and one read-only
connection so that queries do not wait behind writes. Migrations run at ``open()``; a database with
a newer schema than this code knows is refused before anything is written to it. The time series
tables (rollups, slot values, imported samples) live in ``storage.series``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import numpy as np
import numpy.typing as npt

from storage import StorageError
from storage import rows as row_tables
from storage.records import (
    ConfigVersion,
    DecisionRecord,
    EventRecord,
    JsonValue,
    OverrideRecord,
    PlanRecord,
    SessionRecord,
    SessionStatus,
    from_ms,
    to_ms,
)
from storage.recovery import Recovery, backups, lock, mark_open, recover, unlock
from storage.rows import ROW_ERRORS, Table, text_or_bytes
from storage.schema import LATEST_VERSION, MIGRATIONS, ROLLUP_TABLES

log = logging.getLogger(__name__)
SPOOL_DAMAGED_PEEKS = 8  # batches of damaged points set aside in one peek before it gives up for now
R = TypeVar("R")

DB_FILENAME = "hemsd.sqlite3"
BACKUP_DIRNAME = "backups"
# Page cache of each connection (SQLite's default is 2000 KiB), the backup's too. The kernel caches
# the file as well, outside the daemon's resident memory, so a smaller cache costs little on a Pi:
# the writer touches the newest pages of a few tables, and a day of every field's 1-min rollups
# (the largest regular read) does not fit in 1 MiB either. The two caches fill within the first
# simulated day of bench/soak.py and stay full.
PAGE_CACHE_KIB = 512
# Rows per fetch in fetch_floats. Each row arrives as a tuple of Python floats (~40 bytes a column):
# 2048 rows of rollups were ~0.8 MB of small objects at once, and the health report's data quality
# reads a day of every field's 1-min rollups every 5 minutes; the small-object arenas those bursts
# leave partly used kept ~0.7 MB more resident after a day (bench/soak.py --heap: 256 rows).
FETCH_CHUNK_ROWS = 256
DAMAGED_STATE_PREFIX = "damaged."  # a state value that does not read is kept under this prefix
DAMAGED_ROWS_SAID = 10_000  # damaged rows logged (once each); beyond, they are skipped unsaid


class DatabaseError(StorageError):
    """SQLite failed (I/O error, locked too long, full disk); the message says what and where."""


class SchemaTooNewError(StorageError):
    """The database was written by a newer hemsd; it is left untouched."""


def _number(value: object) -> float:
    """A stored value as a float; NaN where it is none (NULL, text, bytes)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan


def database_path(state_dir: Path) -> Path:
    return state_dir / DB_FILENAME


def utc_now() -> datetime:
    return datetime.now(UTC)


def _dumps(value: object, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable: {exc}") from None


def _opt_ms(value: datetime | None) -> int | None:
    return None if value is None else to_ms(value)


def _opt_dt(value: int | None) -> datetime | None:
    return None if value is None else from_ms(value)


@dataclass(frozen=True, slots=True)
class Retention:
    minute_days: float = 90.0  # 1-min rollups
    rollup_days: float = 3650.0  # 15-min and 1-h rollups, slot values, imported samples
    plan_days: float = 30.0  # plans are large (every slot as JSON)
    log_days: float = 3650.0  # decisions and events
    rejected_rows: int = 100_000  # spool_rejected keeps the newest rows
    # bounds whatever the time: a flood of commands (each may re-plan and store a version) cannot
    # grow the database past them; a normal site stays far below (about 200 plans a day)
    plan_rows: int = 10_000
    config_rows: int = 2_000
    event_rows: int = 500_000


class SqliteStore:
    def __init__(
        self,
        path: Path,
        *,
        retention: Retention | None = None,
        spool_max_points: int = 5_000_000,
        now: Callable[[], datetime] = utc_now,
        busy_timeout_ms: int = 5000,
        owner: bool = False,
    ) -> None:
        """``owner``: the daemon's store, which holds the database's lock while open and checks the
        database before opening it (``storage.recovery``); the CLI's stores are not owners."""
        self.path = path
        self.owner = owner
        self.recovery: Recovery | None = None  # what the owner found and did at open
        self._lock_fd: int | None = None
        self.retention = retention or Retention()
        self.spool_max_points = spool_max_points
        self.now = now
        self._busy_timeout_ms = busy_timeout_ms
        self._db: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._damaged_said = False  # values that are not numbers were read (and logged)
        self._damaged_rows: set[tuple[str, object]] = set()  # (table, row id) logged as damaged

    # --- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        if self.owner:
            await self._check_and_lock()
        try:
            await self._connect()
        except BaseException:
            self._unlock()
            raise
        if self.owner:
            mark_open(self.path, True)

    async def _connect(self) -> None:
        try:
            await asyncio.to_thread(_private_database, self.path)
        except OSError as exc:
            raise DatabaseError(f"cannot open {self.path}: {exc}") from exc
        try:
            db = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open {self.path}: {exc}") from exc
        db.text_factory = text_or_bytes
        try:
            await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            version = self._check_version(await self._user_version(db))
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
            await self._migrate(db, version)
            reader = await aiosqlite.connect(self.path, isolation_level=None)
            reader.text_factory = text_or_bytes
            await reader.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            await reader.execute("PRAGMA query_only = 1")
            await reader.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        except sqlite3.Error as exc:
            await db.close()
            raise DatabaseError(f"cannot open {self.path}: {exc}") from exc
        except BaseException:
            await db.close()
            raise
        self._db, self._reader = db, reader

    async def _check_and_lock(self) -> None:
        try:
            self._lock_fd = await asyncio.to_thread(lock, self.path)
        except OSError as exc:
            raise DatabaseError(f"cannot lock {self.path}: {exc}") from exc
        try:
            backup_dir = self.path.parent / BACKUP_DIRNAME
            self.recovery = await asyncio.to_thread(recover, self.path, backup_dir, self.now())
        except OSError as exc:
            self._unlock()
            raise DatabaseError(f"cannot check {self.path}: {exc}") from exc
        except BaseException:
            self._unlock()
            raise
        if self.recovery is not None:
            log.error("%s", self.recovery.message())

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            unlock(self._lock_fd)
            self._lock_fd = None

    async def close(self) -> None:
        try:
            for conn in (self._reader, self._db):
                if conn is not None:
                    await conn.close()
            if self.owner and self._db is not None:
                mark_open(self.path, False)  # a clean stop: the next start skips the deep check
        finally:
            self._db = self._reader = None
            self._unlock()

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _check_version(self, version: int) -> int:
        if version > LATEST_VERSION:
            raise SchemaTooNewError(
                f"{self.path}: schema version {version} is newer than this hemsd knows ({LATEST_VERSION}); "
                "run a newer hemsd or restore a backup"
            )
        return version

    @staticmethod
    async def _user_version(db: aiosqlite.Connection) -> int:
        async with db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _migrate(self, db: aiosqlite.Connection, version: int) -> None:
        for migration in MIGRATIONS:
            if migration.version <= version:
                continue
            await db.execute("BEGIN IMMEDIATE")
            try:
                for statement in migration.statements:
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {migration.version}")
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")
            log.info(
                "database %s migrated to version %d: %s", self.path, migration.version, migration.description
            )

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def _writer(self) -> aiosqlite.Connection:
        if self._db is None:
            raise DatabaseError(f"{self.path} is not open")
        return self._db

    def _read_only(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise DatabaseError(f"{self.path} is not open")
        return self._reader

    @contextlib.asynccontextmanager
    async def transaction(self, *, durable: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (BEGIN IMMEDIATE .. COMMIT); ``durable`` fsyncs the commit."""
        db = self._writer()
        async with self._lock:
            if db.in_transaction:
                # a call cancelled while its statement ran on the connection's thread left this
                # transaction open; what it wrote was never committed, and its caller was told so
                log.warning("%s: rolling back a transaction left open by a cancelled write", self.path)
                with contextlib.suppress(sqlite3.Error):
                    await db.execute("ROLLBACK")
            try:
                if durable:
                    await db.execute("PRAGMA synchronous = FULL")
                await db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise DatabaseError(f"{self.path}: cannot begin a write: {exc}") from exc
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    await db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise DatabaseError(f"{self.path}: write failed: {exc}") from exc
                raise
            finally:
                if durable:
                    with contextlib.suppress(sqlite3.Error):
                        await db.execute("PRAGMA synchronous = NORMAL")

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row | tuple[Any, ...]]:
        """Rows of a read query on the read-only connection."""
        reader = self._read_only()
        try:
            async with reader.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: query failed: {exc}") from exc

    async def fetch_floats(self, sql: str, params: Sequence[Any], width: int) -> npt.NDArray[np.float64]:
        """A read query's rows (``width`` numeric columns each) as a 2-D float array (NULL is NaN).

        Rows arrive in chunks of FETCH_CHUNK_ROWS, so a day of 1-min rollups of every field (tens
        of thousands of rows) never exists as Python tuples all at once: such bursts of small
        objects would leave the small-object heap of a long-running daemon fragmented.
        """
        reader = self._read_only()
        chunks: list[npt.NDArray[np.float64]] = []
        try:
            async with reader.execute(sql, params) as cursor:
                while rows := await cursor.fetchmany(FETCH_CHUNK_ROWS):
                    chunks.append(self._floats(rows, width))
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: query failed: {exc}") from exc
        return np.concatenate(chunks) if chunks else np.empty((0, width))

    def _floats(self, rows: Iterable[Any], width: int) -> npt.NDArray[np.float64]:
        """Rows as floats (NULL is NaN). A value that is not a number (a damaged row: text or
        bytes in a numeric column) is read as missing, NaN, and said once in an ERROR line."""
        rows = list(rows)
        try:
            return np.array(rows, dtype=np.float64).reshape(-1, width)
        except (TypeError, ValueError):
            pass
        if not self._damaged_said:
            self._damaged_said = True
            log.error("%s: values that are not numbers (damaged rows) are read as missing", self.path)
        return np.array([[_number(v) for v in row] for row in rows], dtype=np.float64).reshape(-1, width)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        found = await self.fetchall(sql, params)
        return tuple(found[0]) if found else None

    def _records(
        self, table: Table, found: Iterable[Sequence[Any]], record: Callable[[Sequence[Any]], R]
    ) -> list[R]:
        """The rows as records; a row that does not read (damaged on disk) is skipped, and said
        once as an ERROR line naming the table, the row and the column (``hemsd db check`` lists them)."""
        out: list[R] = []
        for row in found:
            try:
                out.append(record(row))
            except ROW_ERRORS as exc:
                key = (table.name, row[0])
                if key not in self._damaged_rows and len(self._damaged_rows) < DAMAGED_ROWS_SAID:
                    self._damaged_rows.add(key)
                    log.error("%s: %s row %r is damaged and skipped: %s", self.path, table.name, row[0], exc)
        return out

    # --- sessions --------------------------------------------------------------------------------

    async def upsert_session(self, s: SessionRecord, state: tuple[str, JsonValue] | None = None) -> None:
        async with self.transaction(durable=True) as db:
            await db.execute(
                """INSERT INTO sessions (id, kind, start_ms, end_ms, soc_start, soc_end, grid_kwh, pv_kwh, out_kwh,
                       avg_price, cost, trigger, status, source, updated_ms)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, start_ms = excluded.start_ms,
                       end_ms = excluded.end_ms, soc_start = excluded.soc_start, soc_end = excluded.soc_end,
                       grid_kwh = excluded.grid_kwh, pv_kwh = excluded.pv_kwh, out_kwh = excluded.out_kwh,
                       avg_price = excluded.avg_price, cost = excluded.cost, trigger = excluded.trigger,
                       status = excluded.status, source = excluded.source, updated_ms = excluded.updated_ms""",
                self._session_row(s),
            )
            if state is not None:  # what belongs with the session (the reading it was accounted to)
                await self._put_state(db, *state)

    def _session_row(self, s: SessionRecord) -> tuple[Any, ...]:
        return (
            s.id,
            s.kind.value,
            to_ms(s.start),
            _opt_ms(s.end),
            s.soc_start,
            s.soc_end,
            s.grid_kwh,
            s.pv_kwh,
            s.out_kwh,
            s.avg_price,
            s.cost,
            s.trigger.value,
            s.status.value,
            s.source,
            to_ms(self.now()),
        )

    async def insert_sessions_if_absent(self, sessions: Iterable[SessionRecord]) -> int:
        """Insert sessions whose id is new (imports); returns how many were added."""
        async with self.transaction(durable=True) as db:
            before = db.total_changes
            await db.executemany(
                """INSERT OR IGNORE INTO sessions (id, kind, start_ms, end_ms, soc_start, soc_end, grid_kwh, pv_kwh,
                       out_kwh, avg_price, cost, trigger, status, source, updated_ms)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [self._session_row(s) for s in sessions],
            )
            return int(db.total_changes - before)

    _SESSION_COLUMNS = row_tables.SESSIONS.columns

    def _sessions(self, found: Iterable[Sequence[Any]]) -> list[SessionRecord]:
        return self._records(row_tables.SESSIONS, found, row_tables.session)

    async def session(self, session_id: str) -> SessionRecord | None:
        rows = await self.fetchall(
            f"SELECT {self._SESSION_COLUMNS} FROM sessions WHERE id = ?",  # noqa: S608 - constant
            (session_id,),
        )
        found = self._sessions(rows)
        return found[0] if found else None

    async def sessions_starting_with(self, prefix: str, limit: int = 2) -> list[SessionRecord]:
        """Sessions whose id starts with ``prefix`` (hex digits only), at most ``limit``."""
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            return []
        rows = await self.fetchall(
            f"SELECT {self._SESSION_COLUMNS} FROM sessions WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",  # noqa: S608
            (prefix, prefix + "g", limit),
        )
        return self._sessions(rows)

    async def sessions(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        status: SessionStatus | None = None,
        limit: int = 100,
    ) -> list[SessionRecord]:
        """Sessions starting in [since, until), newest first."""
        sql = f"SELECT {self._SESSION_COLUMNS} FROM sessions WHERE start_ms >= ? AND start_ms < ?"  # noqa: S608
        params: list[Any] = [to_ms(since) if since else -(2**62), to_ms(until) if until else 2**62]
        if status is not None:
            sql += " AND status = ?"
            params.append(SessionStatus(status).value)
        rows = await self.fetchall(sql + " ORDER BY start_ms DESC, id DESC LIMIT ?", (*params, limit))
        return self._sessions(rows)

    # --- plans and decisions ---------------------------------------------------------------------

    async def add_plan(self, p: PlanRecord) -> int:
        slots = _dumps([dict(s) for s in p.slots], "PlanRecord.slots")
        totals = _dumps(dict(p.totals), "PlanRecord.totals")
        async with self.transaction() as db:
            cursor = await db.execute(
                """INSERT INTO plans (created_ms, horizon_start_ms, horizon_end_ms, inputs_digest, solve_ms, trigger,
                       explanation, slots_json, totals_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    to_ms(p.created_at),
                    to_ms(p.horizon_start),
                    to_ms(p.horizon_end),
                    p.inputs_digest,
                    p.solve_ms,
                    p.trigger,
                    p.explanation,
                    slots,
                    totals,
                ),
            )
            return int(cursor.lastrowid or 0)

    async def plans(self, *, limit: int = 1, plan_id: int | None = None) -> list[PlanRecord]:
        """The newest plans (or the plan ``plan_id``)."""
        sql = f"SELECT {row_tables.PLANS.columns} FROM plans"  # noqa: S608 - constant
        rows = await (
            self.fetchall(sql + " WHERE id = ?", (plan_id,))
            if plan_id is not None
            else self.fetchall(sql + " ORDER BY created_ms DESC, id DESC LIMIT ?", (limit,))
        )
        return self._records(row_tables.PLANS, rows, row_tables.plan)

    async def add_decisions(self, decisions: Iterable[DecisionRecord]) -> int:
        """Store decisions; one whose (source, source_key) is already stored is skipped. Returns rows added."""
        rows = [
            (
                to_ms(d.time),
                d.action,
                d.reason,
                _dumps(dict(d.command), "DecisionRecord.command"),
                d.plan_id,
                d.trigger,
                int(d.applied),
                d.source,
                d.source_key,
            )
            for d in decisions
        ]
        async with self.transaction() as db:
            before = db.total_changes
            await db.executemany(
                """INSERT OR IGNORE INTO decisions (time_ms, action, reason, command_json, plan_id, trigger, applied,
                       source, source_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                rows,
            )
            return int(db.total_changes - before)

    async def decisions(self, *, since: datetime | None = None, limit: int = 100) -> list[DecisionRecord]:
        rows = await self.fetchall(
            """SELECT id, time_ms, action, reason, command_json, plan_id, trigger, applied, source, source_key
               FROM decisions WHERE time_ms >= ? ORDER BY time_ms DESC, id DESC LIMIT ?""",
            (to_ms(since) if since else -(2**62), limit),
        )
        return self._records(row_tables.DECISIONS, rows, row_tables.decision)

    # --- events, overrides, executor state --------------------------------------------------------

    async def add_event(self, e: EventRecord) -> int:
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO events (time_ms, kind, severity, message, data_json) VALUES (?, ?, ?, ?, ?)",
                (
                    to_ms(e.time),
                    e.kind,
                    e.severity.value,
                    e.message,
                    _dumps(dict(e.data), "EventRecord.data"),
                ),
            )
            return int(cursor.lastrowid or 0)

    async def events(
        self, *, since: datetime | None = None, kinds: Sequence[str] = (), limit: int = 100
    ) -> list[EventRecord]:
        sql = "SELECT id, time_ms, kind, severity, message, data_json FROM events WHERE time_ms >= ?"
        params: list[Any] = [to_ms(since) if since else -(2**62)]
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params.extend(kinds)
        rows = await self.fetchall(sql + " ORDER BY time_ms DESC, id DESC LIMIT ?", (*params, limit))
        return self._records(row_tables.EVENTS, rows, row_tables.event)

    async def add_override(self, o: OverrideRecord) -> int:
        async with self.transaction(durable=True) as db:
            cursor = await db.execute(
                """INSERT INTO overrides (created_ms, mode, source, expires_ms, power_w, soc_pct, cancelled_ms)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (
                    to_ms(o.created_at),
                    o.mode,
                    o.source,
                    _opt_ms(o.expires_at),
                    o.power_w,
                    o.soc_pct,
                    _opt_ms(o.cancelled_at),
                ),
            )
            return int(cursor.lastrowid or 0)

    async def cancel_override(self, override_id: int, at: datetime) -> bool:
        async with self.transaction(durable=True) as db:
            cursor = await db.execute(
                "UPDATE overrides SET cancelled_ms = ? WHERE id = ? AND cancelled_ms IS NULL",
                (to_ms(at), override_id),
            )
            return cursor.rowcount > 0

    async def overrides(self, *, limit: int = 20) -> list[OverrideRecord]:
        """Overrides, newest first."""
        rows = await self.fetchall(
            """SELECT id, created_ms, mode, source, expires_ms, power_w, soc_pct, cancelled_ms FROM overrides
               ORDER BY created_ms DESC, id DESC LIMIT ?""",
            (limit,),
        )
        return self._records(row_tables.OVERRIDES, rows, row_tables.override)

    async def put_state(self, key: str, value: JsonValue) -> None:
        """Keep a small JSON value under ``key`` (e.g. the executor's current command), durably."""
        async with self.transaction(durable=True) as db:
            await self._put_state(db, key, value)

    async def _put_state(self, db: aiosqlite.Connection, key: str, value: JsonValue) -> None:
        await db.execute(
            "INSERT OR REPLACE INTO state (key, value_json, updated_ms) VALUES (?, ?, ?)",
            (key, _dumps(value, f"state {key!r}"), to_ms(self.now())),
        )

    async def get_state(self, key: str) -> JsonValue:
        """The value kept under ``key``; None when there is none. A value that does not read
        (damaged on disk) is moved aside to ``damaged.<key>`` and kept there, logged as one
        ERROR line and read as none, so that what is stored under ``key`` next starts afresh."""
        row = await self.fetchone("SELECT value_json FROM state WHERE key = ?", (key,))
        if row is None:
            return None
        try:
            value: JsonValue = json.loads(row[0])
        except (TypeError, ValueError, RecursionError) as exc:
            aside = f"{DAMAGED_STATE_PREFIX}{key}"
            async with self.transaction(durable=True) as db:
                await db.execute("DELETE FROM state WHERE key = ?", (aside,))
                await db.execute("UPDATE state SET key = ? WHERE key = ?", (aside, key))
            log.error(
                "state %r does not read (%s: %.80r); moved aside to %r, read as none",
                key,
                type(exc).__name__,
                row[0],
                aside,
            )
            return None
        return value

    # --- configuration history --------------------------------------------------------------------

    async def add_config_version(self, text: str, source: str) -> ConfigVersion:
        """Record an accepted configuration; the same text as the newest version adds nothing."""
        digest = hashlib.sha256(text.encode()).hexdigest()
        async with self.transaction(durable=True) as db:
            async with db.execute(
                "SELECT version, created_ms, source, digest, text FROM config_versions ORDER BY version DESC LIMIT 1"
            ) as cursor:
                row = await cursor.fetchone()
            newest = self._records(
                row_tables.CONFIG_VERSIONS, [row] if row else [], row_tables.config_version
            )
            if newest and newest[0].digest == digest:
                return newest[0]
            created = self.now()
            cursor = await db.execute(
                "INSERT INTO config_versions (created_ms, source, digest, text) VALUES (?, ?, ?, ?)",
                (to_ms(created), source, digest, text),
            )
            return ConfigVersion(int(cursor.lastrowid or 0), from_ms(to_ms(created)), source, digest, text)

    async def config_versions(self, *, limit: int = 50) -> list[ConfigVersion]:
        rows = await self.fetchall(
            "SELECT version, created_ms, source, digest, text FROM config_versions ORDER BY version DESC LIMIT ?",
            (limit,),
        )
        return self._records(row_tables.CONFIG_VERSIONS, rows, row_tables.config_version)

    async def config_version(self, version: int) -> ConfigVersion | None:
        row = await self.fetchone(
            "SELECT version, created_ms, source, digest, text FROM config_versions WHERE version = ?",
            (version,),
        )
        found = self._records(row_tables.CONFIG_VERSIONS, [row] if row else [], row_tables.config_version)
        return found[0] if found else None

    # --- spool of line-protocol points waiting for InfluxDB ----------------------------------------

    async def spool_append(self, lines: Sequence[str]) -> int:
        """Append points in order; beyond ``spool_max_points`` the oldest are dropped. Returns the drop count."""
        if not lines:
            return 0
        queued = to_ms(self.now())
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO spool (queued_ms, line) VALUES (?, ?)", [(queued, ln) for ln in lines]
            )
            async with db.execute("SELECT COALESCE(MAX(id) - MIN(id) + 1, 0), MIN(id) FROM spool") as cursor:
                row = await cursor.fetchone()
            span, first = (int(row[0]), row[1]) if row else (0, None)
            excess = span - self.spool_max_points
            if excess > 0 and first is not None:
                cursor = await db.execute("DELETE FROM spool WHERE id < ?", (int(first) + excess,))
                return int(cursor.rowcount)
        return 0

    async def spool_peek(self, limit: int) -> list[tuple[int, str]]:
        """The oldest spooled points, read on the connection that appends and deletes them: the
        read-only connection may still hold the snapshot of a read in progress (a chunked history
        read), and points replayed from it again were counted off the spool's depth twice."""
        for _ in range(SPOOL_DAMAGED_PEEKS):
            async with self.transaction() as db:
                async with db.execute("SELECT id, line FROM spool ORDER BY id LIMIT ?", (limit,)) as cursor:
                    rows = await cursor.fetchall()
                damaged = [(int(r[0]), r[1]) for r in rows if not isinstance(r[1], str)]
                if damaged:  # not UTF-8 on disk: no server may read it as a point, so it is set aside
                    now = to_ms(self.now())
                    await db.executemany(
                        "INSERT INTO spool_rejected (rejected_ms, line, error) VALUES (?, ?, ?)",
                        [(now, repr(line)[:1000], "damaged on disk: not UTF-8 text") for _, line in damaged],
                    )
                    await db.executemany("DELETE FROM spool WHERE id = ?", [(i,) for i, _ in damaged])
                    log.error(
                        "influx spool: %d point(s) damaged on disk (not UTF-8) set aside as rejected",
                        len(damaged),
                    )
            good = [(int(r[0]), r[1]) for r in rows if isinstance(r[1], str)]
            if good or not damaged:
                return good
        return []

    async def spool_delete(self, first_id: int, last_id: int) -> None:
        async with self.transaction() as db:
            await db.execute("DELETE FROM spool WHERE id BETWEEN ? AND ?", (first_id, last_id))

    async def spool_depth(self) -> int:
        async with self.transaction() as db, db.execute("SELECT COUNT(*) FROM spool") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def spool_reject(self, rejected: Sequence[tuple[str, str]]) -> None:
        """Move permanently rejected points aside with the server's error."""
        now = to_ms(self.now())
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO spool_rejected (rejected_ms, line, error) VALUES (?, ?, ?)",
                [(now, line, error) for line, error in rejected],
            )

    async def rejected_count(self) -> int:
        row = await self.fetchone("SELECT COUNT(*) FROM spool_rejected")
        return int(row[0]) if row else 0

    # --- maintenance -----------------------------------------------------------------------------

    async def apply_retention(self) -> dict[str, int]:
        """Delete what is older than the retention periods; returns rows deleted per table."""
        now = self.now()
        r = self.retention

        def cutoff_s(days: float) -> int:
            return int((now - timedelta(days=days)).timestamp())

        statements = [  # (table, time column, unit per second, cutoff)
            (ROLLUP_TABLES["1min"], "bucket", 1, cutoff_s(r.minute_days)),
            (ROLLUP_TABLES["15min"], "bucket", 1, cutoff_s(r.rollup_days)),
            (ROLLUP_TABLES["1h"], "bucket", 1, cutoff_s(r.rollup_days)),
            ("slot_values", "t_ms", 1000, cutoff_s(r.rollup_days)),
            ("imported_samples", "t_ms", 1000, cutoff_s(r.rollup_days)),
            ("plans", "created_ms", 1000, cutoff_s(r.plan_days)),
            ("decisions", "time_ms", 1000, cutoff_s(r.log_days)),
            ("events", "time_ms", 1000, cutoff_s(r.log_days)),
        ]
        deleted: dict[str, int] = {}
        for table, column, unit, cutoff in statements:  # one transaction each: short locks
            async with self.transaction() as db:
                sql = f"DELETE FROM {table} WHERE {column} < ?"  # noqa: S608 - names are schema constants
                cursor = await db.execute(sql, (cutoff * unit,))
                deleted[table] = int(cursor.rowcount)
        for table, key, keep in (
            ("spool_rejected", "id", r.rejected_rows),
            ("plans", "id", r.plan_rows),
            ("config_versions", "version", r.config_rows),
            ("events", "id", r.event_rows),
        ):
            async with self.transaction() as db:
                sql = f"DELETE FROM {table} WHERE {key} <= (SELECT MAX({key}) FROM {table}) - ?"  # noqa: S608 - constants
                cursor = await db.execute(sql, (keep,))
                deleted[table] = deleted.get(table, 0) + int(cursor.rowcount)
        return deleted

    async def backup(self, directory: Path, keep: int) -> Path:
        """Online copy with ``VACUUM INTO``; keeps the ``keep`` newest copies in ``directory``."""
        target = directory / f"hemsd-{self.now().astimezone(UTC):%Y%m%dT%H%M%SZ}.sqlite3"
        await asyncio.to_thread(_prepare_backup_target, target)
        if self._db is None:
            raise DatabaseError(f"{self.path} is not open")
        try:  # a connection of its own: the copy reads a snapshot while writes go on
            async with aiosqlite.connect(self.path, isolation_level=None) as conn:
                async with conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}"):
                    pass
                async with conn.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}"):
                    pass
                async with conn.execute("VACUUM INTO ?", (str(target),)):
                    pass
        except sqlite3.Error as exc:
            raise DatabaseError(f"{self.path}: backup to {target} failed: {exc}") from exc
        await asyncio.to_thread(_prune_backups, directory, keep)
        return target

    async def integrity_check(self) -> str:
        row = await self.fetchone("PRAGMA integrity_check")
        return str(row[0]) if row else "no answer"


def _private_database(path: Path) -> None:
    """The state directory (created 0700) and the database file, 0600 whatever the umask: it holds the
    configuration history. SQLite gives its -wal and -shm files the database file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # an empty file is an empty database
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    if path.stat().st_mode & 0o077:
        try:
            path.chmod(0o600)
        except OSError as exc:  # e.g. another user's database, opened to read
            log.warning("%s is readable by others and cannot be made private: %s", path, exc)


def _prepare_backup_target(target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # VACUUM INTO fills an empty file


def _prune_backups(directory: Path, keep: int) -> None:
    for old in backups(directory)[max(keep, 1) :]:
        old.unlink()
