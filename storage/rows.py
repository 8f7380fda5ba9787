"""Rows of the SQLite tables read back as records, each checked column by column.

A row damaged on disk or edited by hand (text in a number column, a truncated JSON blob, NULL
where a value belongs, a time that is not epoch milliseconds, bytes that are not UTF-8) is a
:class:`DamagedRowError` naming the table, the row and the column with its value. The store skips
such a row where it reads the table (logged once per row); ``hemsd db check`` lists them all
through :func:`damaged_rows`. ``TABLES`` holds each table's columns and how its row becomes a record.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from storage import StorageError
from storage.records import (
    ConfigVersion,
    DecisionRecord,
    EventRecord,
    JsonValue,
    OverrideRecord,
    PlanRecord,
    SessionRecord,
    from_ms,
)

Row = Sequence[Any]


class DamagedRowError(StorageError):
    """A stored row that does not read as its record; the message names the column and value."""


def text_or_bytes(raw: bytes) -> str | bytes:
    """The connections' text factory: text that is not UTF-8 stays bytes, which no column takes,
    so the row reads as damaged instead of failing the whole query."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def _damaged(column: str, value: object, what: str) -> DamagedRowError:
    return DamagedRowError(f"{column} = {value!r:.60} is {what}")


def _text(row: Row, i: int, column: str) -> str:
    value = row[i]
    if not isinstance(value, str):
        raise _damaged(column, value, "not text")
    return value


def _opt_text(row: Row, i: int, column: str) -> str | None:
    return None if row[i] is None else _text(row, i, column)


def _int(row: Row, i: int, column: str) -> int:
    value = row[i]
    if not isinstance(value, int) or isinstance(value, bool):
        raise _damaged(column, value, "not an integer")
    return value


def _opt_int(row: Row, i: int, column: str) -> int | None:
    return None if row[i] is None else _int(row, i, column)


def _real(row: Row, i: int, column: str) -> float:
    value = row[i]
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise _damaged(column, value, "not a finite number")
    return float(value)


def _opt_real(row: Row, i: int, column: str) -> float | None:
    return None if row[i] is None else _real(row, i, column)


def _time(row: Row, i: int, column: str) -> datetime:
    value = _int(row, i, column)
    try:
        return from_ms(value)
    except (OverflowError, ValueError, OSError):
        raise _damaged(column, value, "not a time in epoch milliseconds") from None


def _opt_time(row: Row, i: int, column: str) -> datetime | None:
    return None if row[i] is None else _time(row, i, column)


def _json(row: Row, i: int, column: str) -> JsonValue:
    text = _text(row, i, column)
    try:
        value: JsonValue = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _damaged(column, text, f"not JSON ({type(exc).__name__})") from None
    return value


def _json_object(row: Row, i: int, column: str) -> dict[str, JsonValue]:
    value = _json(row, i, column)
    if not isinstance(value, dict):
        raise _damaged(column, row[i], "not a JSON object")
    return value


def _json_objects(row: Row, i: int, column: str) -> tuple[dict[str, JsonValue], ...]:
    value = _json(row, i, column)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _damaged(column, row[i], "not a JSON list of objects")
    return tuple(item for item in value if isinstance(item, dict))


def session(r: Row) -> SessionRecord:
    return SessionRecord(
        id=_text(r, 0, "id"),
        kind=_text(r, 1, "kind"),  # type: ignore[arg-type]  # validated by the record
        start=_time(r, 2, "start_ms"),
        end=_opt_time(r, 3, "end_ms"),
        soc_start=_real(r, 4, "soc_start"),
        soc_end=_opt_real(r, 5, "soc_end"),
        grid_kwh=_real(r, 6, "grid_kwh"),
        pv_kwh=_real(r, 7, "pv_kwh"),
        out_kwh=_real(r, 8, "out_kwh"),
        avg_price=_opt_real(r, 9, "avg_price"),
        cost=_real(r, 10, "cost"),
        trigger=_text(r, 11, "trigger"),  # type: ignore[arg-type]
        status=_text(r, 12, "status"),  # type: ignore[arg-type]
        source=_text(r, 13, "source"),
    )


def plan(r: Row) -> PlanRecord:
    return PlanRecord(
        id=_int(r, 0, "id"),
        created_at=_time(r, 1, "created_ms"),
        horizon_start=_time(r, 2, "horizon_start_ms"),
        horizon_end=_time(r, 3, "horizon_end_ms"),
        inputs_digest=_text(r, 4, "inputs_digest"),
        solve_ms=_real(r, 5, "solve_ms"),
        trigger=_text(r, 6, "trigger"),
        explanation=_text(r, 7, "explanation"),
        slots=_json_objects(r, 8, "slots_json"),
        totals=_json_object(r, 9, "totals_json"),
    )


def decision(r: Row) -> DecisionRecord:
    return DecisionRecord(
        id=_int(r, 0, "id"),
        time=_time(r, 1, "time_ms"),
        action=_text(r, 2, "action"),
        reason=_text(r, 3, "reason"),
        command=_json_object(r, 4, "command_json"),
        plan_id=_opt_int(r, 5, "plan_id"),
        trigger=_text(r, 6, "trigger"),
        applied=bool(_int(r, 7, "applied")),
        source=_text(r, 8, "source"),
        source_key=_opt_text(r, 9, "source_key"),
    )


def event(r: Row) -> EventRecord:
    return EventRecord(
        id=_int(r, 0, "id"),
        time=_time(r, 1, "time_ms"),
        kind=_text(r, 2, "kind"),
        severity=_text(r, 3, "severity"),  # type: ignore[arg-type]
        message=_text(r, 4, "message"),
        data=_json_object(r, 5, "data_json"),
    )


def override(r: Row) -> OverrideRecord:
    return OverrideRecord(
        id=_int(r, 0, "id"),
        created_at=_time(r, 1, "created_ms"),
        mode=_text(r, 2, "mode"),
        source=_text(r, 3, "source"),
        expires_at=_opt_time(r, 4, "expires_ms"),
        power_w=_opt_real(r, 5, "power_w"),
        soc_pct=_opt_real(r, 6, "soc_pct"),
        cancelled_at=_opt_time(r, 7, "cancelled_ms"),
    )


def config_version(r: Row) -> ConfigVersion:
    return ConfigVersion(
        _int(r, 0, "version"), _time(r, 1, "created_ms"), _text(r, 2, "source"), _text(r, 3, "digest"),
        _text(r, 4, "text"),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: str  # the first is the row's id
    record: Callable[[Row], object]


SESSIONS = Table(
    "sessions",
    "id, kind, start_ms, end_ms, soc_start, soc_end, grid_kwh, pv_kwh, out_kwh, avg_price, cost, trigger, "
    "status, source",
    session,
)
PLANS = Table(
    "plans",
    "id, created_ms, horizon_start_ms, horizon_end_ms, inputs_digest, solve_ms, trigger, explanation, "
    "slots_json, totals_json",
    plan,
)
DECISIONS = Table(
    "decisions",
    "id, time_ms, action, reason, command_json, plan_id, trigger, applied, source, source_key",
    decision,
)
EVENTS = Table("events", "id, time_ms, kind, severity, message, data_json", event)
OVERRIDES = Table(
    "overrides", "id, created_ms, mode, source, expires_ms, power_w, soc_pct, cancelled_ms", override
)
CONFIG_VERSIONS = Table("config_versions", "version, created_ms, source, digest, text", config_version)
TABLES: tuple[Table, ...] = (SESSIONS, PLANS, DECISIONS, EVENTS, OVERRIDES, CONFIG_VERSIONS)

# what a record's own checks raise besides DamagedRowError (an unknown kind, an end before its start)
ROW_ERRORS = (DamagedRowError, ValueError, TypeError)


def problem(table: Table, row: Row) -> str | None:
    """Why ``row`` of ``table`` does not read, or None."""
    try:
        table.record(row)
    except ROW_ERRORS as exc:
        return str(exc)
    return None


@dataclass(frozen=True, slots=True)
class DamagedRow:
    table: str
    row_id: object
    problem: str

    def __str__(self) -> str:
        return f"{self.table} row {self.row_id!r}: {self.problem}"


def damaged_rows(path: Path) -> Iterator[DamagedRow]:
    """Every row of ``TABLES`` in the database at ``path`` that does not read (read-only, row by row)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        db.text_factory = text_or_bytes
        for table in TABLES:
            cursor = db.execute(f"SELECT {table.columns} FROM {table.name}")  # noqa: S608 - constant
            for row in cursor:
                why = problem(table, row)
                if why is not None:
                    yield DamagedRow(table.name, row[0], why)
