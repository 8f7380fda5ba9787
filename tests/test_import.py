"""Imports (optimiser database, Home Assistant CSV) are idempotent; the storage CLI lists, rolls back, imports."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from controller.cli.storage import configure_parser, run_command
from controller.config.models import EXIT_CONFIG
from storage.importer import (
    HOME_ASSISTANT_SOURCE,
    OPTIMISER_SOURCE,
    ImportDataError,
    import_home_assistant_csv,
    import_optimiser_db,
    parse_entity_map,
)
from storage.records import Resolution, SessionKind, SessionRecord, SessionStatus, SessionTrigger
from storage.series import SeriesStore
from storage.sqlite import SqliteStore, database_path

WARSAW = ZoneInfo("Europe/Warsaw")
DAY0 = (datetime.now(WARSAW) - timedelta(days=5)).replace(
    hour=0, minute=0, second=0, microsecond=0, tzinfo=None
)

# The optimiser's published schema (src/database/schema.py, version 4), as its databases hold it.
OPTIMISER_SCHEMA = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT DEFAULT CURRENT_TIMESTAMP, description TEXT);
CREATE TABLE energy_data (
    timestamp TEXT PRIMARY KEY, battery_soc REAL, pv_power INTEGER, grid_power INTEGER, house_consumption INTEGER,
    battery_power INTEGER, grid_voltage REAL, grid_frequency REAL, battery_voltage REAL, battery_current REAL,
    battery_temperature REAL, price_pln REAL, grid_import_total_kwh REAL, grid_export_total_kwh REAL,
    house_consumption_total_kwh REAL, pv_generation_total_kwh REAL, tariff_zone TEXT,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE coordinator_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT NOT NULL, decision_type TEXT, action TEXT, reason TEXT,
    parameters TEXT, source_module TEXT, created_at TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE charging_sessions (
    session_id TEXT PRIMARY KEY, start_time TEXT NOT NULL, end_time TEXT, target_soc INTEGER, energy_kwh REAL,
    cost_pln REAL, status TEXT, avg_price REAL, created_at TEXT DEFAULT CURRENT_TIMESTAMP);
"""
READINGS = 2 * 288  # two days every 5 minutes


def build_optimiser_db(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(OPTIMISER_SCHEMA)
        rows = []
        for i in range(READINGS):
            t = DAY0 + timedelta(minutes=5 * i)
            rows.append(
                (
                    t.isoformat(),
                    20 + i % 80,
                    1000 + i,
                    300,
                    1500,
                    -200,
                    231.5,
                    50.01,
                    52.1,
                    -3.8,
                    24.0,
                    0.5 + (i % 96) / 100,
                    1000 + i * 0.1,
                    500.0,
                    2000 + i * 0.1,
                    3000 + i * 0.1,
                    "T1",
                )
            )
        conn.executemany(
            "INSERT INTO energy_data VALUES (" + ",".join("?" * 17) + ", CURRENT_TIMESTAMP)", rows
        )
        decisions = [
            (
                (DAY0 + timedelta(hours=2)).isoformat(),
                "charging",
                "start_charging",
                "cheap",
                '{"price": 0.41}',
            ),
            ((DAY0 + timedelta(hours=5)).isoformat(), "charging", "stop_charging", "full", "not json"),
            ((DAY0 + timedelta(hours=9)).isoformat(), "battery_selling", None, "peak", None),
        ]
        conn.executemany(
            "INSERT INTO coordinator_decisions (timestamp, decision_type, action, reason, parameters) "
            "VALUES (?, ?, ?, ?, ?)",
            decisions,
        )
        sessions = [
            ("a1", DAY0 + timedelta(hours=2), DAY0 + timedelta(hours=5), 90, 6.2, 2.54, "completed", 0.41),
            ("a2", DAY0 + timedelta(hours=26), None, 80, 1.0, 0.5, "active", 0.5),
            (
                "a3",
                DAY0 - timedelta(days=3),
                DAY0 - timedelta(days=3, hours=-1),
                80,
                1.0,
                0.5,
                "completed",
                0.5,
            ),
        ]
        conn.executemany(
            "INSERT INTO charging_sessions (session_id, start_time, end_time, target_soc, energy_kwh, cost_pln, "
            "status, avg_price) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(s[0], s[1].isoformat(), s[2].isoformat() if s[2] else None, *s[3:]) for s in sessions],
        )


def build_ha_csv(path: Path) -> None:
    start = datetime.combine(DAY0.date(), datetime.min.time(), UTC)
    lines = ["entity_id,state,last_changed"]
    for i in range(240):
        t = (start + timedelta(seconds=30 * i)).isoformat().replace("+00:00", "Z")
        lines.append(f"sensor.pv_power,{1000 + i},{t}")
        lines.append(f"sensor.grid_kw,{'unavailable' if i % 40 == 0 else 0.5},{t}")
        lines.append(f"sensor.other,{i},{t}")
    for q in range(8):
        lines.append(f"sensor.price,{0.4 + q / 10},{(start + timedelta(minutes=15 * q)).isoformat()}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def table_rows(store: SqliteStore) -> dict[str, list[tuple[object, ...]]]:
    tables = (
        "rollup_1min",
        "rollup_15min",
        "rollup_1h",
        "imported_samples",
        "slot_values",
        "sessions",
        "decisions",
    )
    out = {}
    for table in tables:
        columns = (
            "*" if table != "sessions" else "id, kind, start_ms, end_ms, soc_start, soc_end, grid_kwh, cost"
        )
        out[table] = [tuple(r) for r in await store.fetchall(f"SELECT {columns} FROM {table} ORDER BY 1, 2")]
    return out


async def test_optimiser_import_twice_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "optimiser.db"
    build_optimiser_db(db)
    async with SqliteStore(database_path(tmp_path / "state")) as store:
        series = SeriesStore(store)
        first = await import_optimiser_db(series, db, tz=WARSAW)
        snapshot = await table_rows(store)
        second = await import_optimiser_db(series, db, tz=WARSAW)
        assert await table_rows(store) == snapshot
        sessions = await store.sessions()
        decisions = await store.decisions()
        hours = await series.read_rollups(
            Resolution.HOUR1, [("snapshot", "pv_w"), ("snapshot", "import_kwh")], 0, 2e9
        )
    fields = 12  # every mapped column except the price
    assert first.samples_new == first.samples_seen == READINGS * (fields + 1)
    assert (first.sessions_new, first.decisions_new) == (2, 3)
    assert (second.samples_new, second.sessions_new, second.decisions_new) == (0, 0, 0)
    assert "1 charging sessions skipped" in " ".join(first.notes)
    assert first.first == DAY0.replace(tzinfo=WARSAW).astimezone(UTC)
    assert int(hours[("snapshot", "pv_w")].count.sum()) == READINGS
    assert float(hours[("snapshot", "import_kwh")].last.max()) == pytest.approx(1000 + (READINGS - 1) * 0.1)
    by_id = {s.id: s for s in sessions}
    done = by_id[f"{OPTIMISER_SOURCE}:a1"]
    assert done.status is SessionStatus.CLOSED
    assert (done.grid_kwh, done.cost, done.avg_price, done.source) == (6.2, 2.54, 0.41, OPTIMISER_SOURCE)
    assert done.soc_start == 20 + 24 % 80  # the reading at 02:00 local
    assert by_id[f"{OPTIMISER_SOURCE}:a2"].status is SessionStatus.ABORTED  # never resumed as open
    assert {d.action for d in decisions} == {"start_charging", "stop_charging", "battery_selling"}
    assert {json.dumps(d.command) for d in decisions} >= {'{"price": 0.41}', '{"raw": "not json"}'}


async def test_naive_times_without_a_zone_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "optimiser.db"
    build_optimiser_db(db)
    async with SqliteStore(database_path(tmp_path / "state")) as store:
        with pytest.raises(ImportDataError, match=r"energy_data\.timestamp: '.*' has no UTC offset"):
            await import_optimiser_db(SeriesStore(store), db, tz=None)


async def test_home_assistant_csv_import_twice_changes_nothing(tmp_path: Path) -> None:
    csv_file = tmp_path / "history.csv"
    build_ha_csv(csv_file)
    mapping = [
        parse_entity_map("sensor.pv_power=pv_w"),
        parse_entity_map("sensor.grid_kw=grid_w*1000"),
        parse_entity_map("sensor.price=price.import_price"),
        parse_entity_map("sensor.absent=load_w"),
    ]
    async with SqliteStore(database_path(tmp_path / "state")) as store:
        series = SeriesStore(store)
        first = await import_home_assistant_csv(series, csv_file, mapping)
        snapshot = await table_rows(store)
        second = await import_home_assistant_csv(series, csv_file, mapping)
        assert await table_rows(store) == snapshot
        start = datetime.combine(DAY0.date(), datetime.min.time(), UTC).timestamp()
        minutes = await series.read_rollups(
            Resolution.MIN1, [("snapshot", "pv_w"), ("snapshot", "grid_w")], start, start + 7200
        )
        slots = await series.read_slots([("price", "import_price")], start, start + 7200)
    assert (first.samples_new, first.skipped) == (240 + 234 + 8, 6)
    assert second.samples_new == 0
    assert first.notes == ["sensor.absent: not in history.csv"]
    assert minutes[("snapshot", "pv_w")].count.tolist() == [2] * 120
    assert set(minutes[("snapshot", "grid_w")].high.tolist()) == {500.0}
    np.testing.assert_allclose(slots[("price", "import_price")][1], [0.4 + q / 10 for q in range(8)])
    assert HOME_ASSISTANT_SOURCE in {r[0] for r in await_sources(tmp_path)}


def await_sources(tmp_path: Path) -> list[tuple[str]]:
    with sqlite3.connect(database_path(tmp_path / "state")) as conn:
        return conn.execute("SELECT name FROM sources").fetchall()


def test_entity_maps_are_checked() -> None:
    assert parse_entity_map("sensor.x=pv_w*0.001").scale == 0.001
    with pytest.raises(ValueError, match="expected ENTITY_ID=FIELD"):
        parse_entity_map("sensor.x")
    with pytest.raises(ValueError, match="snapshot has no field 'pv'"):
        parse_entity_map("sensor.x=pv")
    with pytest.raises(ValueError, match="scale must be a finite non-zero number"):
        parse_entity_map("sensor.x=pv_w*0")


# --- the CLI ------------------------------------------------------------------------------------------


def cli(command: str, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog=f"hemsd {command}")
    configure_parser(parser)
    return run_command(parser.parse_args(list(argv)))


def config_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "hemsd.toml"
    path.write_text(f'[storage]\nstate_dir = "{tmp_path / "state"}"\n{extra}', encoding="utf-8")
    return path


def test_cli_imports_and_lists_sessions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "optimiser.db"
    build_optimiser_db(db)
    config = config_file(tmp_path)  # the site's zone (Europe/Warsaw) applies to naive times
    assert cli("import", "--config", str(config), "optimiser", str(db)) == 0
    assert "2 new sessions, 3 new decisions" in capsys.readouterr().out
    assert cli("import", "--config", str(config), "optimiser", str(db)) == 0
    assert "0 new of" in capsys.readouterr().out
    assert cli("sessions", "--config", str(config), "list", "--json") == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [s["id"] for s in listed] == [f"{OPTIMISER_SOURCE}:a2", f"{OPTIMISER_SOURCE}:a1"]
    assert cli("sessions", "--state-dir", str(tmp_path / "state"), "show", f"{OPTIMISER_SOURCE}:a1") == 0
    assert "grid_kwh: 6.2" in capsys.readouterr().out
    assert cli("sessions", "--config", str(config), "show", "nope") == 1
    assert "no session 'nope'" in capsys.readouterr().err


def test_cli_config_rollback_writes_a_validated_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio  # noqa: PLC0415

    config = config_file(tmp_path)
    good_old = config.read_text()
    current = good_old + "[site]\nname = 'New'\n"
    broken = good_old + "[site]\nnmae = 'typo'\n"

    async def record_versions() -> None:
        async with SqliteStore(database_path(tmp_path / "state")) as store:
            for text, source in ((good_old, "file"), (broken, "file"), (current, "mqtt")):
                await store.add_config_version(text, source)

    asyncio.run(record_versions())
    config.write_text(current)
    assert cli("config", "--config", str(config), "rollback", "2") == EXIT_CONFIG
    assert "nmae: unknown key" in capsys.readouterr().err
    assert config.read_text() == current
    assert cli("config", "--config", str(config), "rollback", "9") == 1
    assert "no configuration version 9 (versions 1..3)" in capsys.readouterr().err
    assert cli("config", "--config", str(config), "rollback", "1") == 0
    assert config.read_text() == good_old
    assert "recorded as version 4" in capsys.readouterr().out
    assert cli("config", "--config", str(config), "history") == 0
    history = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in history] == ["version", "4", "3", "2", "1"]  # a header, then rows
    assert "rollback" in history[1]


def test_cli_without_a_database_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path)
    assert cli("sessions", "--config", str(config), "list") == 1
    assert "no database at" in capsys.readouterr().err
    assert cli("sessions", "--config", str(tmp_path / "missing.toml"), "list") == EXIT_CONFIG


async def two_sessions_alike(state: Path) -> None:
    """Two sessions whose ids share their first four characters."""
    start = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    async with SqliteStore(database_path(state)) as store:
        for ident in ("0a1b2c3d" + "0" * 24, "0a1b9999" + "0" * 24):
            await store.upsert_session(
                SessionRecord(
                    id=ident, kind=SessionKind.CHARGE, start=start, soc_start=20.0, grid_kwh=0.09997261083333334,
                    trigger=SessionTrigger.PLAN,
                )
            )  # fmt: skip


def test_cli_sessions_show_takes_a_unique_beginning_and_rounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    asyncio.run(two_sessions_alike(state))
    assert cli("sessions", "--state-dir", str(state), "list") == 0
    listed = capsys.readouterr().out
    assert "0a1b2c3d " in listed
    assert "0a1b2c3d" + "0" * 24 not in listed  # short ids in the list
    assert cli("sessions", "--state-dir", str(state), "show", "0a1b2c") == 0
    assert "grid_kwh: 0.100" in capsys.readouterr().out
    assert cli("sessions", "--state-dir", str(state), "show", "0a1b") == 1
    assert "more than one session starts with '0a1b'" in capsys.readouterr().err
