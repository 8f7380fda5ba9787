"""SQLite store: migrations, every table's round trip, spool, retention, backups, rollup merging, crash safety."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import numpy as np
import pytest

from storage.records import (
    DecisionRecord,
    EventRecord,
    JsonValue,
    OverrideRecord,
    PlanRecord,
    Resolution,
    SessionKind,
    SessionRecord,
    SessionStatus,
    SessionTrigger,
    Severity,
)
from storage.rollups import aggregate
from storage.schema import LATEST_VERSION
from storage.series import SeriesStore
from storage.sqlite import (
    FETCH_CHUNK_ROWS,
    PAGE_CACHE_KIB,
    DatabaseError,
    Retention,
    SchemaTooNewError,
    SqliteStore,
    database_path,
)

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(database_path(tmp_path), now=lambda: T0)
    await s.open()
    yield s
    await s.close()


async def test_open_creates_schema_in_wal_mode(store: SqliteStore) -> None:
    assert await store.fetchone("PRAGMA user_version") == (LATEST_VERSION,)
    assert await store.fetchone("PRAGMA journal_mode") == ("wal",)
    assert await store.fetchone("PRAGMA cache_size") == (-PAGE_CACHE_KIB,)
    tables = {r[0] for r in await store.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sessions", "plans", "decisions", "events", "config_versions", "spool", "rollup_1min"} <= tables
    assert await store.integrity_check() == "ok"


async def test_reopening_applies_no_migration_twice(tmp_path: Path) -> None:
    path = database_path(tmp_path)
    for _ in range(2):
        async with SqliteStore(path) as s:
            assert await s.fetchone("SELECT COUNT(*) FROM sources") == (1,)


async def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = database_path(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE future (x)")
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(SchemaTooNewError, match=f"schema version {LATEST_VERSION + 1} is newer"):
        await SqliteStore(path).open()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not Path(f"{path}-wal").exists()


async def test_sessions_round_trip_and_update(store: SqliteStore) -> None:
    session = SessionRecord(
        "s1", SessionKind.CHARGE, T0, soc_start=20.0, trigger=SessionTrigger.PLAN, grid_kwh=1.5, cost=0.9
    )
    await store.upsert_session(session)
    closed = SessionRecord(
        "s1",
        SessionKind.CHARGE,
        T0,
        soc_start=20.0,
        trigger=SessionTrigger.PLAN,
        status=SessionStatus.CLOSED,
        end=T0 + timedelta(hours=1),
        soc_end=80.0,
        grid_kwh=6.0,
        pv_kwh=0.5,
        avg_price=0.41,
        cost=2.46,
    )
    await store.upsert_session(closed)
    await store.upsert_session(
        SessionRecord(
            "s2",
            SessionKind.DISCHARGE,
            T0 + timedelta(hours=3),
            soc_start=90.0,
            trigger=SessionTrigger.OVERRIDE,
        )
    )
    assert await store.session("s1") == closed
    listed = await store.sessions()
    assert [s.id for s in listed] == ["s2", "s1"]
    assert [s.id for s in await store.sessions(status=SessionStatus.OPEN)] == ["s2"]
    assert [s.id for s in await store.sessions(since=T0 + timedelta(hours=1))] == ["s2"]
    assert await store.session("missing") is None


def test_session_record_rejects_bad_values() -> None:
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the mistake under test
    with pytest.raises(ValueError, match=r"SessionRecord\.start must be timezone-aware"):
        SessionRecord("x", SessionKind.CHARGE, naive, soc_start=1.0, trigger=SessionTrigger.PLAN)
    with pytest.raises(ValueError, match=r"soc_end must be within 0\.\.100 %, got 120"):
        SessionRecord("x", SessionKind.CHARGE, T0, soc_start=1.0, soc_end=120.0, trigger=SessionTrigger.PLAN)
    with pytest.raises(ValueError, match="'sideways' is not a valid SessionTrigger"):
        SessionRecord("x", SessionKind.CHARGE, T0, soc_start=1.0, trigger="sideways")  # type: ignore[arg-type]


async def test_plans_decisions_events_overrides_state(store: SqliteStore) -> None:
    slots: tuple[dict[str, JsonValue], ...] = (
        {"start": T0.isoformat(), "action": "charge", "target_soc": 80.0},
        {"action": "self_use"},
    )
    plan = PlanRecord(
        T0, T0, T0 + timedelta(hours=24), "abc", 12.5, slots, totals={"cost": 3.2}, explanation="x"
    )
    plan_id = await store.add_plan(plan)
    [back] = await store.plans(limit=1)
    assert back.id == plan_id
    assert back.slots == slots
    assert back.totals == {"cost": 3.2}

    with pytest.raises(ValueError, match=r"PlanRecord\.slots is not JSON-serialisable"):
        await store.add_plan(PlanRecord(T0, T0, T0 + timedelta(hours=1), "d", 1.0, ({"v": float("nan")},)))

    decision = DecisionRecord(
        T0, "charge", "cheap", {"power_w": 3000}, plan_id=plan_id, source="import", source_key="7"
    )
    assert await store.add_decisions([decision, decision]) == 1
    assert await store.add_decisions([decision]) == 0
    assert await store.add_decisions([DecisionRecord(T0, "hold"), DecisionRecord(T0, "hold")]) == 2
    assert len(await store.decisions()) == 3

    await store.add_event(EventRecord(T0, "stale", "no data", Severity.WARNING, {"age_s": 95}))
    await store.add_event(EventRecord(T0 + timedelta(seconds=1), "write", "mode=charge"))
    assert [e.kind for e in await store.events()] == ["write", "stale"]
    [stale] = await store.events(kinds=["stale"])
    assert stale.data == {"age_s": 95}
    assert stale.severity is Severity.WARNING

    override_id = await store.add_override(
        OverrideRecord(T0, "force_charge", "cli", T0 + timedelta(hours=2), 3000, 90)
    )
    assert await store.cancel_override(override_id, T0 + timedelta(minutes=5))
    assert not await store.cancel_override(override_id, T0 + timedelta(minutes=6))
    [override] = await store.overrides()
    assert override.cancelled_at == T0 + timedelta(minutes=5)
    assert override.power_w == 3000

    await store.put_state("executor", {"mode": "charge", "since": T0.isoformat()})
    assert await store.get_state("executor") == {"mode": "charge", "since": T0.isoformat()}
    assert await store.get_state("nothing") is None


async def test_config_versions_number_accepted_texts(store: SqliteStore) -> None:
    v1 = await store.add_config_version("a = 1\n", "file")
    assert (await store.add_config_version("a = 1\n", "file")).version == v1.version  # unchanged text
    v2 = await store.add_config_version("a = 2\n", "mqtt")
    v3 = await store.add_config_version("a = 1\n", "rollback")
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    assert [v.source for v in await store.config_versions()] == ["rollback", "mqtt", "file"]
    assert (await store.config_version(2)).text == "a = 2\n"  # type: ignore[union-attr]
    assert await store.config_version(9) is None


async def test_spool_keeps_order_and_bounds_its_size(tmp_path: Path) -> None:
    async with SqliteStore(database_path(tmp_path), spool_max_points=10) as s:
        assert await s.spool_append([f"m v={i}" for i in range(6)]) == 0
        assert await s.spool_append([f"m v={i}" for i in range(6, 14)]) == 4  # the 4 oldest go
        rows = await s.spool_peek(100)
        assert [line for _, line in rows] == [f"m v={i}" for i in range(4, 14)]
        await s.spool_delete(rows[0][0], rows[4][0])
        assert await s.spool_depth() == 5
        assert [line for _, line in await s.spool_peek(2)] == ["m v=9", "m v=10"]
        await s.spool_reject([("bad line", "HTTP 400: unable to parse")])
        assert await s.rejected_count() == 1


async def test_spooled_points_damaged_on_disk_are_set_aside_not_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A spooled line that is not UTF-8 (damaged behind the store's back) is never handed to the
    server as a point: it is moved to the rejected points, counted and logged, and the good ones
    behind it come through in order, even after a whole batch of damaged ones."""
    path = database_path(tmp_path)
    async with SqliteStore(path) as s:
        assert await s.spool_append(["m v=1"]) == 0
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO spool (queued_ms, line) VALUES (0, ?)", [(b"m v=\xff\xfe",)] * 3)
        db.execute("INSERT INTO spool (queued_ms, line) VALUES (0, 'm v=2')")
    async with SqliteStore(path) as s:
        rows = await s.spool_peek(1)
        assert [line for _, line in rows] == ["m v=1"]
        await s.spool_delete(rows[0][0], rows[0][0])
        # a batch of two damaged points, then one damaged beside the good one
        assert [line for _, line in await s.spool_peek(2)] == ["m v=2"]
        assert await s.rejected_count() == 3
        assert await s.spool_depth() == 1
    assert "2 point(s) damaged on disk" in caplog.text
    assert "1 point(s) damaged on disk" in caplog.text


async def test_a_write_cancelled_mid_statement_does_not_block_the_next_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with SqliteStore(database_path(tmp_path)) as s:
        assert await s.spool_append(["m v=1"]) == 0
        # what a call cancelled while BEGIN ran on the connection's thread leaves behind
        await s._writer().execute("BEGIN IMMEDIATE")
        await s._writer().execute("INSERT INTO spool (queued_ms, line) VALUES (0, 'm v=uncommitted')")
        assert await s.spool_append(["m v=2"]) == 0
        assert [line for _, line in await s.spool_peek(10)] == ["m v=1", "m v=2"]
        assert "left open by a cancelled write" in caplog.text


async def test_retention_deletes_only_what_is_old(tmp_path: Path) -> None:
    clock = [T0]
    s = SqliteStore(
        database_path(tmp_path), retention=Retention(minute_days=2, plan_days=1), now=lambda: clock[0]
    )
    await s.open()
    series = SeriesStore(s)
    for age, value in ((timedelta(days=3), 1.0), (timedelta(hours=1), 2.0)):
        clock[0] = T0 - age  # written when it was new
        times = np.array([clock[0].timestamp()])
        await series.add_samples("snapshot", times, {"pv_w": np.array([value])}, max_gap_s=60)
    clock[0] = T0
    await s.add_plan(PlanRecord(T0 - timedelta(days=2), T0, T0 + timedelta(hours=1), "old", 1.0, ()))
    await s.add_plan(PlanRecord(T0, T0, T0 + timedelta(hours=1), "new", 1.0, ()))
    deleted = await s.apply_retention()
    assert deleted["rollup_1min"] == 1
    assert deleted["rollup_1h"] == 0
    assert deleted["plans"] == 1
    assert [p.inputs_digest for p in await s.plans(limit=5)] == ["new"]
    hours = await series.read_rollups(Resolution.HOUR1, [("snapshot", "pv_w")], 0, T0.timestamp())
    assert hours[("snapshot", "pv_w")].count.sum() == 2
    await s.close()


async def test_backup_is_a_valid_copy_and_keeps_n(tmp_path: Path) -> None:
    clock = [T0]
    s = SqliteStore(database_path(tmp_path), now=lambda: clock[0])
    await s.open()
    await s.upsert_session(
        SessionRecord("b1", SessionKind.CHARGE, T0, soc_start=10.0, trigger=SessionTrigger.PLAN)
    )
    directory = tmp_path / "backups"
    made = []
    for i in range(4):
        clock[0] = T0 + timedelta(hours=i)
        made.append(await s.backup(directory, keep=2))
    await s.close()
    assert sorted(p.name for p in directory.iterdir()) == [p.name for p in made[-2:]]
    async with SqliteStore(made[-1]) as copy:
        assert await copy.integrity_check() == "ok"
        assert (await copy.session("b1")) is not None


async def test_backup_connection_has_the_bounded_page_cache(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VACUUM INTO runs on a connection of its own: without the pragma it would cache up to
    SQLite's default 2000 KiB (bench/soak.py saw SQLite's memory peak at the daily backup)."""
    executed: list[tuple[int, str]] = []
    execute = aiosqlite.Connection.execute

    def recording(self: aiosqlite.Connection, sql: str, *args: object) -> object:
        executed.append((id(self), sql))
        return execute(self, sql, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(aiosqlite.Connection, "execute", recording)
    await store.backup(tmp_path / "backups", keep=1)
    connection = next(c for c, sql in executed if sql.startswith("VACUUM INTO"))
    assert (connection, f"PRAGMA cache_size = -{PAGE_CACHE_KIB}") in executed


async def test_locked_database_raises_a_clear_error(tmp_path: Path) -> None:
    path = database_path(tmp_path)
    async with SqliteStore(path, busy_timeout_ms=50) as s:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(DatabaseError, match="database is locked"):
                await s.put_state("k", 1)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await s.put_state("k", 2)
        assert await s.get_state("k") == 2


async def test_rollups_merged_over_commits_equal_one_aggregate(store: SqliteStore) -> None:
    rng = np.random.default_rng(7)
    times = T0.timestamp() + np.cumsum(rng.uniform(5, 15, 2000))
    values = rng.normal(0, 2000, times.size)
    values[rng.random(times.size) < 0.05] = np.nan
    series = SeriesStore(store)
    cuts = np.sort(rng.choice(np.arange(1, times.size), 25, replace=False))
    prev: float | None = None
    for chunk_t, chunk_v in zip(np.split(times, cuts), np.split(values, cuts), strict=True):
        await series.add_samples(
            "snapshot",
            chunk_t,
            {"grid_w": chunk_v},
            max_gap_s=60,
            prev_times=({"grid_w": prev} if prev is not None else {}),
        )
        valid = chunk_t[np.isfinite(chunk_v)]
        prev = float(valid[-1]) if valid.size else prev
    for resolution in (Resolution.MIN1, Resolution.MIN15, Resolution.HOUR1):
        stored = (await series.read_rollups(resolution, [("snapshot", "grid_w")], 0, 2e9))[
            ("snapshot", "grid_w")
        ]
        whole = aggregate(times, values, resolution.seconds, energy=True, max_gap_s=60)
        np.testing.assert_array_equal(stored.start, whole.start)
        np.testing.assert_array_equal(stored.count, whole.count)
        np.testing.assert_allclose(stored.total, whole.total)
        np.testing.assert_array_equal(stored.low, whole.low)
        np.testing.assert_array_equal(stored.high, whole.high)
        np.testing.assert_array_equal(stored.last, whole.last)
        np.testing.assert_allclose(stored.pos_wh, whole.pos_wh)  # type: ignore[arg-type]
        np.testing.assert_allclose(stored.neg_wh, whole.neg_wh)  # type: ignore[arg-type]


WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from drivers.inverter.types import Snapshot
    from storage.datamanager import DataManager, StorageOptions

    async def main():
        dm = DataManager(StorageOptions(Path(sys.argv[1]), commit_interval_s=float(sys.argv[2])))
        await dm.start()
        t0 = datetime.now(UTC) - timedelta(days=1)
        for i in range(1_000_000):
            await dm.record(Snapshot(t0 + timedelta(seconds=10 * i), float(i), 1.0, 0.0, 0.0, 50.0))
            print(i, time.monotonic(), flush=True)
            await asyncio.sleep(0.004)

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_kill_minus_nine_loses_at_most_the_last_commit_interval(tmp_path: Path) -> None:
    commit_interval = 0.25
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), str(commit_interval)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    printed: list[tuple[int, float]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        index, stamp = line.split()
        printed.append((int(index), float(stamp)))
        if len(printed) >= 400:
            break
    os.kill(proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    rest, _ = proc.communicate(timeout=10)
    printed += [(int(a), float(b)) for a, b in (ln.split() for ln in rest.splitlines() if ln.strip())]
    assert len(printed) >= 400, "the writer did not get going"

    with sqlite3.connect(database_path(tmp_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        count, total = conn.execute(
            "SELECT SUM(n), SUM(total) FROM rollup_1min r JOIN series s ON s.id = r.series WHERE s.field = 'pv_w'"
        ).fetchone()
    recorded = printed[-1][0] + 1
    assert count is not None
    assert count <= recorded
    assert total == sum(range(count)), "what survived is exactly the first samples, in order"
    missing = recorded - count
    # the lost ones were recorded in the last commit interval (plus the time one commit takes)
    recent = sum(1 for _, stamp in printed if stamp >= killed_at - commit_interval - 0.25)
    assert missing <= recent, (missing, recent)


async def test_fetch_floats_reads_rows_in_chunks_into_one_array(store: SqliteStore) -> None:
    rows = 2 * FETCH_CHUNK_ROWS + 904  # three chunks, the last one partial
    sql = (
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "SELECT i, i * 0.5, CASE WHEN i % 1000 = 7 THEN NULL ELSE -i END FROM n"
    )
    data = await store.fetch_floats(sql, (rows - 1,), 3)
    assert data.shape == (rows, 3)
    index = np.arange(rows)
    assert np.array_equal(data[:, 0], index)
    assert np.array_equal(data[:, 1], index * 0.5)
    missing = index % 1000 == 7
    assert np.isnan(data[missing, 2]).all()
    assert np.array_equal(data[~missing, 2], -index[~missing])
    empty = await store.fetch_floats("SELECT 1, 2 WHERE 0", (), 2)
    assert empty.shape == (0, 2)


async def test_retention_bounds_versions_and_events_by_count_whatever_their_age(tmp_path: Path) -> None:
    retention = Retention(config_rows=5, event_rows=7)
    async with SqliteStore(database_path(tmp_path), retention=retention) as store:
        for i in range(12):
            await store.add_config_version(f"a = {i}\n", "mqtt")
            await store.add_event(EventRecord(datetime.now(UTC), "test", f"event {i}"))
        deleted = await store.apply_retention()
        assert (deleted["config_versions"], deleted["events"]) == (7, 5)
        versions = await store.config_versions(limit=100)
        assert [v.text for v in versions] == [f"a = {i}\n" for i in range(11, 6, -1)]  # the newest kept
        assert len(await store.events(limit=100)) == 7
