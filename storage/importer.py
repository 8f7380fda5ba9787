"""Bring existing history in: the GoodWe Dynamic Price Optimiser's SQLite database and Home Assistant CSV.

Both imports are idempotent: samples are kept per (source, series, time) and the source's rollups
are rebuilt where they fall, sessions are keyed by the optimiser's session id and decisions by its
row id. Running an import twice adds nothing. Imported rows carry their source
(``goodwe-optimiser``, ``home-assistant``); where live data covers the same minute, reads prefer it.

The optimiser (github.com/RMachnik/goodwe-dynamic-price-optimiser, ``src/database/schema.py``)
keeps ``energy_data`` (one row per reading, ``timestamp`` TEXT ISO-8601, powers in W), its
``coordinator_decisions`` (``parameters`` as JSON) and ``charging_sessions``. Its timestamps are
usually naive local time: give the site's time zone. Columns are looked up by name, so databases
from older schema versions (without the ``*_total_kwh`` counters) import as well.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import numpy as np

from storage import StorageError
from storage.records import (
    MEASUREMENT_BY_NAME,
    DecisionRecord,
    FloatArray,
    JsonValue,
    SeriesKind,
    SessionKind,
    SessionRecord,
    SessionStatus,
    SessionTrigger,
    split_series_name,
)
from storage.series import SeriesStore

OPTIMISER_SOURCE = "goodwe-optimiser"
HOME_ASSISTANT_SOURCE = "home-assistant"


class ImportDataError(StorageError):
    """The file to import cannot be read or holds a value that cannot be understood."""


@dataclass(frozen=True, slots=True)
class ColumnMap:
    column: str
    field: str  # series name: "pv_w", "price.import_price"
    scale: float = 1.0


# Counters take the names the GoodWe driver gives them, so imported and live history are one series.
OPTIMISER_ENERGY_COLUMNS: tuple[ColumnMap, ...] = (
    ColumnMap("pv_power", "pv_w"),
    ColumnMap("house_consumption", "load_w"),
    ColumnMap("grid_power", "grid_w"),
    ColumnMap("battery_power", "battery_w"),
    ColumnMap("battery_soc", "soc_pct"),
    ColumnMap("grid_voltage", "grid_v1"),
    ColumnMap("grid_frequency", "grid_hz"),
    ColumnMap("battery_temperature", "temp_battery_c"),
    ColumnMap("grid_import_total_kwh", "import_kwh"),
    ColumnMap("grid_export_total_kwh", "export_kwh"),
    ColumnMap("house_consumption_total_kwh", "load_kwh"),
    ColumnMap("pv_generation_total_kwh", "pv_kwh"),
    ColumnMap("price_pln", "price.import_price"),
)
SESSION_STATUS = {
    "completed": SessionStatus.CLOSED,
    "finished": SessionStatus.CLOSED,
    "done": SessionStatus.CLOSED,
}


@dataclass(slots=True)
class ImportReport:
    source: str
    samples_seen: int = 0
    samples_new: int = 0
    sessions_new: int = 0
    decisions_new: int = 0
    skipped: int = 0
    first: datetime | None = None
    last: datetime | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        span = (
            f"{self.first:%Y-%m-%d %H:%M} .. {self.last:%Y-%m-%d %H:%M} UTC"
            if self.first and self.last
            else "-"
        )
        lines = [
            f"{self.source}: {self.samples_new} new of {self.samples_seen} samples ({span}), "
            f"{self.sessions_new} new sessions, {self.decisions_new} new decisions, {self.skipped} values skipped"
        ]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def parse_time(text: str, tz: tzinfo | None, where: str) -> datetime:
    """An ISO-8601 instant; a naive one is local time in ``tz`` (an error without it)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ImportDataError(f"{where}: {text!r} is not an ISO-8601 time") from None
    if value.tzinfo is None:
        if tz is None:
            raise ImportDataError(
                f"{where}: {text!r} has no UTC offset; give the time zone it was written in"
            )
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _max_gap_s(times: FloatArray) -> float:
    """Energy integration cap for sparse imported samples: 2.5 typical intervals, 1 to 30 minutes."""
    if times.size < 2:
        return 60.0
    return float(np.clip(2.5 * np.median(np.diff(np.unique(times))), 60.0, 1800.0))


def _update_span(report: ImportReport, times: FloatArray) -> None:
    if times.size:
        first, last = (
            datetime.fromtimestamp(float(times.min()), UTC),
            datetime.fromtimestamp(float(times.max()), UTC),
        )
        report.first = min(report.first or first, first)
        report.last = max(report.last or last, last)


async def _store_columns(
    series: SeriesStore,
    source: str,
    times: FloatArray,
    columns: Mapping[str, FloatArray],
    report: ImportReport,
) -> None:
    """Sampled fields into imported samples and rollups, slotted ones into slot values (kept if present)."""
    by_measurement: dict[str, dict[str, FloatArray]] = {}
    for name, values in columns.items():
        measurement, field_name = split_series_name(name)
        by_measurement.setdefault(measurement, {})[field_name] = values
        report.samples_seen += int(np.count_nonzero(np.isfinite(values)))
    for measurement, fields in by_measurement.items():
        if MEASUREMENT_BY_NAME[measurement].kind is SeriesKind.SAMPLED:
            report.samples_new += await series.ingest_imported(
                source, measurement, times, fields, max_gap_s=_max_gap_s(times)
            )
        else:
            before = await _slot_count(series)
            times_ms = np.round(times * 1000).astype(np.int64).tolist()
            await series.add_slot_values(measurement, times_ms, fields, keep_existing=True)
            report.samples_new += await _slot_count(series) - before
    _update_span(report, times)


async def _slot_count(series: SeriesStore) -> int:
    row = await series.store.fetchone("SELECT COUNT(*) FROM slot_values")
    return int(row[0]) if row else 0


# --- the GoodWe Dynamic Price Optimiser ------------------------------------------------------------


def _read_optimiser(path: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Columns and rows of the three tables (absent tables are left out)."""
    if not path.is_file():
        raise ImportDataError(f"{path}: no such file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ImportDataError(f"{path}: cannot open: {exc}") from exc
    out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in ("energy_data", "coordinator_decisions", "charging_sessions"):
            if table in tables:
                cursor = conn.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
                out[table] = ([d[0] for d in cursor.description], cursor.fetchall())
    except sqlite3.Error as exc:
        raise ImportDataError(f"{path}: not a readable SQLite database: {exc}") from exc
    finally:
        conn.close()
    return out


def _number(value: object) -> float:
    if value is None or value == "":
        return math.nan
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


async def import_optimiser_db(
    series: SeriesStore,
    path: Path,
    *,
    tz: tzinfo | None,
    grid_export_positive: bool = False,
) -> ImportReport:
    """Import energy readings, decisions and charging sessions from the optimiser's database.

    ``grid_export_positive``: the database's ``grid_power`` is + export (the inverter's own sign);
    by default it is taken as + import, hemsd's convention.
    """
    tables = await asyncio.to_thread(_read_optimiser, path)
    report = ImportReport(OPTIMISER_SOURCE)
    missing = [t for t in ("energy_data", "coordinator_decisions", "charging_sessions") if t not in tables]
    if missing:
        report.notes.append(f"no table {', '.join(missing)} in {path.name}")
    soc_times, soc_values = np.empty(0), np.empty(0)
    if "energy_data" in tables:
        columns, rows = tables["energy_data"]
        where = f"{path.name} energy_data"
        times = np.array(
            [
                parse_time(str(r[columns.index("timestamp")]), tz, f"{where}.timestamp").timestamp()
                for r in rows
            ]
        )
        values: dict[str, FloatArray] = {}
        for spec in OPTIMISER_ENERGY_COLUMNS:
            if spec.column in columns:
                index = columns.index(spec.column)
                column = np.array([_number(r[index]) for r in rows], dtype=np.float64) * spec.scale
                report.skipped += sum(
                    1 for r in rows if r[index] is not None and not math.isfinite(_number(r[index]))
                )
                values[spec.field] = column
        if grid_export_positive and "grid_w" in values:
            values["grid_w"] = -values["grid_w"]
        await _store_columns(series, OPTIMISER_SOURCE, times, values, report)
        if "soc_pct" in values:
            order = np.argsort(times)
            soc_times, soc_values = times[order], values["soc_pct"][order]
    if "coordinator_decisions" in tables:
        report.decisions_new = await series.store.add_decisions(
            _decisions(*tables["coordinator_decisions"], tz, path.name)
        )
    if "charging_sessions" in tables:
        sessions, unknown = _sessions(*tables["charging_sessions"], tz, path.name, soc_times, soc_values)
        if unknown:
            report.notes.append(
                f"{unknown} charging sessions skipped: no SoC reading within 15 min of their start"
            )
        report.sessions_new = await series.store.insert_sessions_if_absent(sessions)
    return report


def _decisions(
    columns: list[str], rows: list[tuple[Any, ...]], tz: tzinfo | None, name: str
) -> list[DecisionRecord]:
    out = []
    for row in rows:
        r = dict(zip(columns, row, strict=True))
        parameters: JsonValue = {}
        if r.get("parameters"):
            try:
                parameters = json.loads(r["parameters"])
            except (TypeError, ValueError):
                parameters = {"raw": str(r["parameters"])}
        out.append(
            DecisionRecord(
                time=parse_time(str(r["timestamp"]), tz, f"{name} coordinator_decisions.timestamp"),
                action=str(r.get("action") or r.get("decision_type") or "unknown"),
                reason=str(r.get("reason") or ""),
                command=parameters if isinstance(parameters, dict) else {"parameters": parameters},
                trigger=str(r.get("decision_type") or "plan"),
                source=OPTIMISER_SOURCE,
                source_key=str(r["id"]),
            )
        )
    return out


def _soc_near(times: FloatArray, values: FloatArray, at: float) -> float | None:
    if times.size == 0:
        return None
    i = int(np.clip(np.searchsorted(times, at), 0, times.size - 1))
    candidates = [
        j
        for j in (i - 1, i)
        if 0 <= j < times.size and abs(times[j] - at) <= 900 and math.isfinite(values[j])
    ]
    if not candidates:
        return None
    best = min(candidates, key=lambda j: abs(times[j] - at))
    return float(min(100.0, max(0.0, values[best])))


def _sessions(
    columns: list[str],
    rows: list[tuple[Any, ...]],
    tz: tzinfo | None,
    name: str,
    soc_times: FloatArray,
    soc_values: FloatArray,
) -> tuple[list[SessionRecord], int]:
    out, unknown = [], 0
    for row in rows:
        r = dict(zip(columns, row, strict=True))
        start = parse_time(str(r["start_time"]), tz, f"{name} charging_sessions.start_time")
        end = (
            parse_time(str(r["end_time"]), tz, f"{name} charging_sessions.end_time")
            if r.get("end_time")
            else None
        )
        stored_soc = _number(r.get("battery_soc_start"))
        soc_start = (
            stored_soc if math.isfinite(stored_soc) else _soc_near(soc_times, soc_values, start.timestamp())
        )
        if soc_start is None:
            unknown += 1
            continue
        soc_end = _number(r.get("battery_soc_end"))
        soc_end_value = (
            soc_end
            if math.isfinite(soc_end)
            else (_soc_near(soc_times, soc_values, end.timestamp()) if end else None)
        )
        energy = _number(r.get("energy_kwh"))
        cost = _number(r.get("cost_pln"))
        price = _number(r.get("avg_price"))
        status = SESSION_STATUS.get(str(r.get("status") or "").lower(), SessionStatus.ABORTED)
        out.append(
            SessionRecord(
                id=f"{OPTIMISER_SOURCE}:{r['session_id']}",
                kind=SessionKind.CHARGE,
                start=start,
                end=end if end and end >= start else None,
                soc_start=soc_start,
                soc_end=soc_end_value,
                trigger=SessionTrigger.PLAN,
                status=status if end else SessionStatus.ABORTED,  # never "open": the daemon would resume it
                grid_kwh=max(0.0, energy) if math.isfinite(energy) else 0.0,
                cost=cost if math.isfinite(cost) else 0.0,
                avg_price=price if math.isfinite(price) else None,
                source=OPTIMISER_SOURCE,
            )
        )
    return out, unknown


# --- Home Assistant history export ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntityMap:
    entity_id: str
    field: str
    scale: float = 1.0


def parse_entity_map(text: str) -> EntityMap:
    """``sensor.pv_power=pv_w`` or ``sensor.pv_kw=pv_w*1000`` (scale to hemsd's unit)."""
    entity, sep, target = text.partition("=")
    field_name, star, scale_text = target.partition("*")
    if not sep or not entity.strip() or not field_name.strip():
        raise ValueError(f"--map {text!r}: expected ENTITY_ID=FIELD or ENTITY_ID=FIELD*SCALE")
    try:
        split_series_name(field_name.strip())
        scale = float(scale_text) if star else 1.0
    except ValueError as exc:
        raise ValueError(f"--map {text!r}: {exc}") from None
    if not math.isfinite(scale) or scale == 0:
        raise ValueError(f"--map {text!r}: scale must be a finite non-zero number, got {scale_text!r}")
    return EntityMap(entity.strip(), field_name.strip(), scale)


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise ImportDataError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        needed = {"entity_id", "state", "last_changed"}
        if reader.fieldnames is None or not needed <= set(reader.fieldnames):
            raise ImportDataError(
                f"{path}: expected the columns entity_id,state,last_changed, got {reader.fieldnames}"
            )
        return list(reader)


async def import_home_assistant_csv(
    series: SeriesStore, path: Path, mapping: Sequence[EntityMap], *, tz: tzinfo | None = None
) -> ImportReport:
    """Import the mapped sensors of a Home Assistant history CSV export (other entities are ignored)."""
    if not mapping:
        raise ValueError("give at least one --map ENTITY_ID=FIELD")
    rows = await asyncio.to_thread(_read_csv, path)
    report = ImportReport(HOME_ASSISTANT_SOURCE)
    by_entity = {m.entity_id: m for m in mapping}
    samples: dict[str, list[tuple[float, float]]] = {}
    for line, row in enumerate(rows, start=2):
        spec = by_entity.get(row["entity_id"])
        if spec is None:
            continue
        value = _number(row["state"])
        if not math.isfinite(value):  # unavailable, unknown, empty
            report.skipped += 1
            continue
        t = parse_time(row["last_changed"], tz, f"{path.name} line {line} last_changed").timestamp()
        samples.setdefault(spec.field, []).append((t, value * spec.scale))
    for entity in by_entity:
        if not any(row["entity_id"] == entity for row in rows):
            report.notes.append(f"{entity}: not in {path.name}")
    for field_name, pairs in samples.items():
        data = np.array(sorted(pairs), dtype=np.float64)
        await _store_columns(series, HOME_ASSISTANT_SOURCE, data[:, 0], {field_name: data[:, 1]}, report)
    return report
