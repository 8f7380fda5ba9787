"""Rows of the sessions, plans, decisions, events, overrides and config history damaged on disk.

Each table gets a good row through the store and damaged ones behind its back with ``sqlite3``
(text in a number column, a truncated JSON blob, a time that is not epoch milliseconds, bytes that
are not UTF-8). The store, the CLI, the web API and the daemon (against the GoodWe emulator and a
real mosquitto, Home Assistant listening) skip them with one ERROR line each naming the table and
row; ``hemsd db check`` lists them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.mqtt_fixtures import Observer, mosquitto
from support.processes import emulator_process, hemsd, inverter_command, start_daemon
from support.servers import free_port
from support.waiting import wait_until
from test_safety_restart import CONFIG, write_prices

from drivers.inverter.types import CommandKind
from storage import rows
from storage.records import (
    DecisionRecord,
    EventRecord,
    OverrideRecord,
    PlanRecord,
    SessionKind,
    SessionRecord,
    SessionStatus,
    SessionTrigger,
)
from storage.sqlite import DB_FILENAME, SqliteStore

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
MS = int(NOW.timestamp() * 1000)
TOO_LATE = 10**18  # epoch milliseconds past the calendar's end

# (table, the row's id, the damaged row as INSERT columns and values)
DAMAGED: tuple[tuple[str, object, str, tuple[object, ...]], ...] = (
    (
        "sessions",
        "bad1",
        "id, kind, start_ms, soc_start, grid_kwh, pv_kwh, out_kwh, cost, trigger, status, source, updated_ms",
        ("bad1", "charge", MS, "forty", 0, 0, 0, 0, "plan", "open", "live", MS),
    ),
    (
        "sessions",
        "bad2",
        "id, kind, start_ms, soc_start, grid_kwh, pv_kwh, out_kwh, cost, trigger, status, source, updated_ms",
        ("bad2", "sideways", MS, 40, 0, 0, 0, 0, "plan", "closed", "live", MS),
    ),
    (
        "plans",
        901,
        "id, created_ms, horizon_start_ms, horizon_end_ms, inputs_digest, solve_ms, trigger, explanation, "
        "slots_json, totals_json",
        (901, MS + 1, MS, MS + 3_600_000, "d", 1.0, "schedule", "", '[{"start": "2026-', "{}"),
    ),
    (
        "decisions",
        902,
        "id, time_ms, action, reason, command_json, plan_id, trigger, applied, source, source_key",
        (902, MS + 1, "charge", "", "{}", "one", "plan", 1, "live", None),
    ),
    (
        "events",
        903,
        "id, time_ms, kind, severity, message, data_json",
        (903, "yesterday", "test.damaged", "info", "x", "{}"),
    ),
    (
        "events",
        904,
        "id, time_ms, kind, severity, message, data_json",
        (904, MS + 1, "test.damaged", "info", b"\xff\xfe not utf-8", "{}"),
    ),
    (
        "overrides",
        905,
        "id, created_ms, mode, source, expires_ms, power_w, soc_pct, cancelled_ms",
        (905, MS + 1, "force_charge", "cli", TOO_LATE, 3000, 80, None),
    ),
    (
        "config_versions",
        906,
        "version, created_ms, source, digest, text",
        (906, MS + 1, "file", "d", b"\x80[site]"),
    ),
)
TABLES = sorted({table for table, *_ in DAMAGED})


async def good_rows(store: SqliteStore) -> None:
    await store.upsert_session(
        SessionRecord(
            "good1",
            SessionKind.CHARGE,
            NOW,
            40.0,
            SessionTrigger.PLAN,
            SessionStatus.CLOSED,
            end=NOW + timedelta(minutes=10),
        )
    )
    end = NOW + timedelta(hours=1)
    await store.add_plan(PlanRecord(NOW, NOW, end, "d", 1.0, ({"start": NOW.isoformat()},), {"cost": 1.0}))
    await store.add_decisions([DecisionRecord(NOW, "self_use", command={"kind": "self_use"})])
    await store.add_event(EventRecord(NOW, "test.good", "fine"))
    await store.add_override(OverrideRecord(NOW, "self_use", "cli", expires_at=NOW + timedelta(minutes=1)))
    await store.add_config_version("[site]\n", "file")


def damage(path: Path) -> None:
    with sqlite3.connect(path) as db:
        for table, _, columns, values in DAMAGED:
            marks = ", ".join("?" * len(values))
            db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)


async def damaged_database(state: Path) -> Path:
    async with SqliteStore(state / DB_FILENAME) as store:
        await good_rows(store)
    damage(state / DB_FILENAME)
    return state / DB_FILENAME


async def read(store: SqliteStore, table: str) -> list[object]:
    readers = {
        "sessions": store.sessions,
        "plans": lambda: store.plans(limit=10),
        "decisions": store.decisions,
        "events": store.events,
        "overrides": store.overrides,
        "config_versions": store.config_versions,
    }
    return list(await readers[table]())


@pytest.mark.parametrize("table", TABLES)
async def test_a_damaged_row_is_skipped_and_said_once(
    tmp_path: Path, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = await damaged_database(tmp_path)
    async with SqliteStore(path) as store:
        with caplog.at_level(logging.ERROR, logger="storage.sqlite"):
            caplog.clear()  # what opening the store said (a migration, at INFO where a test set that level)
            first = await read(store, table)
            again = await read(store, table)
    assert len(first) == len(again) == 1  # the good row
    ids = [row_id for name, row_id, *_ in DAMAGED if name == table]
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == len(ids), lines  # once each, not on every read
    for row_id in ids:
        assert sum(f"{table} row {row_id!r} is damaged and skipped" in line for line in lines) == 1, lines


async def test_single_reads_of_damaged_rows_are_none(tmp_path: Path) -> None:
    path = await damaged_database(tmp_path)
    async with SqliteStore(path) as store:
        assert await store.session("bad1") is None
        assert await store.sessions_starting_with("bad") == []  # hex prefixes only: none
        assert await store.config_version(906) is None
        assert (await store.config_version(1)) is not None
        # the newest version does not read: the same text again is stored as a new version
        assert (await store.add_config_version("[site]\n", "file")).version == 907


@pytest.mark.parametrize(
    ("record", "row", "column"),
    [
        (
            rows.session,
            ("x", "charge", None, None, 40, None, 0, 0, 0, None, 0, "plan", "open", "live"),
            "start_ms",
        ),
        (rows.plan, (1, 0, 0, 1, "d", 1.0, "s", "", "[1, 2]", "{}"), "slots_json"),
        (rows.decision, (1, 0, "a", "", "[]", None, "p", 1, "live", None), "command_json"),
        (rows.event, (1, 0, "k", "info", None, "{}"), "message"),
        (rows.override, (1, 0, "hold", "cli", None, float("nan"), None, None), "power_w"),
        (rows.config_version, (1, 0, None, "d", "t"), "source"),
    ],
)
def test_null_and_wrong_types_name_the_column(
    record: rows.Callable[[rows.Row], object], row: tuple[object, ...], column: str
) -> None:
    with pytest.raises(rows.DamagedRowError, match=f"^{column} = "):
        record(row)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(hemsd(*args), capture_output=True, text=True, timeout=60, check=False)


async def test_the_cli_goes_on_and_db_check_names_the_rows(tmp_path: Path) -> None:
    state = tmp_path / "state"
    await damaged_database(state)
    checked = run("db", "check", "--state-dir", str(state))
    assert checked.returncode == 1
    for table, row_id, *_ in DAMAGED:
        assert f"damaged row: {table} row {row_id!r}: " in checked.stdout, checked.stdout
    assert f"{len(DAMAGED)} damaged rows" in checked.stdout
    config = tmp_path / "hemsd.toml"
    config.write_text(f'[storage]\nstate_dir = "{state}"\n', encoding="utf-8")
    for args in (
        ("sessions", "list"),
        ("sessions", "show", "good1"),
        ("config", "history"),
        ("analytics", "energy", "--since", f"{NOW - timedelta(days=1):%Y-%m-%d}"),
    ):
        done = run(*args, "--config", str(config))
        assert done.returncode == 0, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert "good1" in run("sessions", "list", "--config", str(config)).stdout
    shown = run("sessions", "show", "bad1", "--config", str(config))
    assert shown.returncode != 0
    assert "Traceback" not in shown.stderr


@pytest.fixture
def emulator_port(tmp_path: Path) -> Iterator[int]:
    yield from emulator_process(tmp_path, "--soc", "30", "--tz", "Europe/Warsaw")


def get(port: int, path: str) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": "Bearer 0123456789abcdef0123"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_the_daemon_its_web_api_and_home_assistant_go_on(tmp_path: Path, emulator_port: int) -> None:
    state, prices = tmp_path / "state", tmp_path / "prices.csv"
    asyncio.run(damaged_database(state))
    web = free_port()
    write_prices(prices, cheap_now=True)
    log = tmp_path / "daemon.log"
    with mosquitto(tmp_path) as broker:
        config = tmp_path / "hemsd.toml"
        config.write_text(
            CONFIG.format(port=emulator_port, state=state, prices=prices, inverter="")
            + f'[web]\nenabled = true\nport = {web}\ntoken = "0123456789abcdef0123"\n'
            + f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n',
            encoding="utf-8",
        )
        observer = Observer(broker.port, ("hemsd/restart/#",))
        daemon = start_daemon(config, log)
        try:
            wait_until(lambda: "hemsd running" in log.read_text(), 30, "daemon ready")
            # the plan's charge is commanded: the damaged open session and override did not stop it
            wait_until(lambda: inverter_command(emulator_port) is CommandKind.CHARGE, 30, "the plan charges")
            sessions = get(web, "/api/sessions")
            assert "good1" in json.dumps(sessions)
            assert "bad1" not in json.dumps(sessions)
            history = get(web, "/api/config/history")
            assert "906" not in json.dumps(history)
            assert isinstance(get(web, "/api/plan"), dict)
            assert isinstance(get(web, "/api/state"), dict)
            # Home Assistant gets the plan, the action and the override (the damaged one skipped)
            topics = ("plan", "action", "override")
            wait_until(lambda: all(observer.last(f"hemsd/restart/{t}") for t in topics), 15, "the state")
        finally:
            observer.close()
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=15) == 0
    text = log.read_text()
    assert "Traceback" not in text
    assert "sessions row 'bad1' is damaged and skipped" in text
    assert "overrides row 905 is damaged and skipped" in text
    assert text.count("sessions row 'bad1' is damaged") == 1
