"""Data manager: record fan-out, history by resolution and source, status, cache, breaker, quality, concurrency."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from drivers.inverter.types import Snapshot
from storage.datamanager import DataManager, StorageOptions
from storage.history import AUTO_RESOLUTION, choose_resolution
from storage.metrics import TtlCache
from storage.records import (
    DataStatus,
    DecisionRecord,
    EventRecord,
    OverrideRecord,
    PlanRecord,
    Resolution,
    SessionKind,
    SessionRecord,
    SessionTrigger,
    price_point,
)

T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def options(tmp_path: Path, **kw: object) -> StorageOptions:
    base: dict[str, object] = {"commit_interval_s": 3600.0}
    base.update(kw)
    return StorageOptions(tmp_path, **base)  # type: ignore[arg-type]


def snap(t: datetime, pv: float = 1200.0, **kw: object) -> Snapshot:
    values: dict[str, object] = {"load_w": 500.0, "grid_w": -700.0, "battery_w": 0.0, "soc_pct": 50.0}
    values.update(kw)
    return Snapshot(time=t, pv_w=pv, **values)  # type: ignore[arg-type]


@pytest.fixture
async def managed(tmp_path: Path) -> AsyncIterator[tuple[DataManager, Clock]]:
    clock = Clock(T0)
    dm = DataManager(options(tmp_path), now=clock)
    await dm.start()
    yield dm, clock
    await dm.close()


async def record_hour(dm: DataManager, clock: Clock, start: datetime, skip: range = range(0)) -> None:
    for i in range(360):
        if i in skip:
            continue
        clock.t = start + timedelta(seconds=10 * i)
        await dm.record(snap(clock.t, pv=1200.0, load_w=float(i)))
    clock.t = start + timedelta(hours=1)


def test_auto_resolution_follows_the_table() -> None:
    spans = {3600: "raw", 6 * 3600: "raw", 7 * 3600: "1min", 3 * 86400: "1min", 30 * 86400: "15min"}
    for span, expected in {**spans, 365 * 86400: "1h"}.items():
        assert choose_resolution(span).value == expected
    assert [limit for limit, _ in AUTO_RESOLUTION] == sorted(limit for limit, _ in AUTO_RESOLUTION)


async def test_recent_raw_history_comes_from_memory(managed: tuple[DataManager, Clock]) -> None:
    dm, clock = managed
    await record_hour(dm, clock, T0)
    result = await dm.history(["pv_w", "load_w"], T0, T0 + timedelta(hours=1))
    assert (result.status, result.source) == (DataStatus.REAL, "memory")
    assert result.data is not None
    assert result.data.resolution is Resolution.RAW
    np.testing.assert_array_equal(result.data.fields["load_w"].mean, np.arange(360.0))
    assert result.age_s == pytest.approx(10.0)
    latest = dm.latest()
    assert latest.data is not None
    assert latest.data.load_w == 359.0


async def test_rollups_after_commit(managed: tuple[DataManager, Clock]) -> None:
    dm, clock = managed
    await record_hour(dm, clock, T0)
    await dm.flush()
    result = await dm.history(["pv_w", "load_w"], T0, T0 + timedelta(hours=1), "1min")
    assert (result.status, result.source) == (DataStatus.REAL, "sqlite")
    history = result.data
    assert history is not None
    assert history.times.size == 60
    assert history.completeness == 1.0
    np.testing.assert_allclose(history.fields["load_w"].mean, np.arange(60) * 6 + 2.5)
    np.testing.assert_array_equal(history.fields["load_w"].last, np.arange(60) * 6 + 5)
    # 1200 W held for 359 intervals of 10 s (the first sample starts the integration)
    assert float(np.nansum(history.fields["pv_w"].energy_in_wh)) == pytest.approx(1200 * 3590 / 3600)
    assert not np.isnan(history.fields["load_w"].mean).any()
    hourly = await dm.history(["pv_w"], T0, T0 + timedelta(hours=1), "1h")
    assert hourly.data is not None
    assert hourly.data.fields["pv_w"].count.tolist() == [360.0]


async def test_gaps_make_the_result_partial(managed: tuple[DataManager, Clock]) -> None:
    dm, clock = managed
    await record_hour(dm, clock, T0, skip=range(60, 120))  # minutes 10..19 missing
    await dm.flush()
    result = await dm.history(["pv_w"], T0, T0 + timedelta(hours=1), "1min")
    assert result.status is DataStatus.PARTIAL
    assert result.data is not None
    assert result.data.completeness == pytest.approx(50 / 60)
    assert "completeness 83.3%" in result.message


async def test_raw_history_from_before_a_restart_falls_back_to_rollups(tmp_path: Path) -> None:
    clock = Clock(T0)
    async with DataManager(options(tmp_path), now=clock) as dm:
        await record_hour(dm, clock, T0)
    async with DataManager(options(tmp_path), now=clock) as again:
        result = await again.history(["pv_w"], T0, T0 + timedelta(hours=1))
    assert (result.status, result.source) == (DataStatus.FALLBACK, "sqlite")
    assert result.data is not None
    assert result.data.resolution is Resolution.MIN1
    assert "raw samples unavailable" in result.message


async def test_minute_rollups_beyond_retention_fall_back_to_15_min(tmp_path: Path) -> None:
    clock = Clock(T0)
    dm = DataManager(options(tmp_path), now=clock)
    await dm.start()
    await record_hour(dm, clock, T0)
    await dm.flush()
    clock.t = T0 + timedelta(days=120)
    await dm.maintain()
    result = await dm.history(["pv_w"], T0, T0 + timedelta(hours=1), "1min")
    await dm.close()
    assert result.status is DataStatus.FALLBACK
    assert result.data is not None
    assert result.data.resolution is Resolution.MIN15
    assert result.data.fields["pv_w"].count.tolist() == [90.0] * 4


async def test_slotted_values_keep_the_latest_revision(managed: tuple[DataManager, Clock]) -> None:
    dm, clock = managed
    slots = [T0 + timedelta(minutes=15 * i) for i in range(4)]
    await dm.record_points([price_point(t, 0.5 + i, 0.1, "home", "inv") for i, t in enumerate(slots)])
    await dm.record_points([price_point(slots[1], 9.0, 0.2, "home", "inv")])
    await dm.flush()
    clock.t = T0 + timedelta(hours=1)
    raw = await dm.history(["price.import_price", "price.export_price"], T0, T0 + timedelta(hours=1), "raw")
    assert raw.status is DataStatus.REAL
    assert raw.data is not None
    assert raw.data.fields["price.import_price"].mean.tolist() == [0.5, 9.0, 2.5, 3.5]
    assert raw.data.fields["price.export_price"].mean.tolist() == [0.1, 0.2, 0.1, 0.1]
    hourly = await dm.history(["price.import_price"], T0, T0 + timedelta(hours=1), "1h")
    assert hourly.data is not None
    assert hourly.data.fields["price.import_price"].mean.tolist() == [
        pytest.approx((0.5 + 9 + 2.5 + 3.5) / 4)
    ]


async def test_repeated_queries_hit_the_cache(managed: tuple[DataManager, Clock]) -> None:
    dm, clock = managed
    await record_hour(dm, clock, T0)
    first = await dm.history(["pv_w"], T0, T0 + timedelta(hours=1))
    second = await dm.history(["pv_w"], T0, T0 + timedelta(hours=1))
    assert not first.cached
    assert second.cached
    assert second.data is first.data
    assert dm.cache.report()["hit_rate"] == 0.5


async def test_history_cache_ages_on_the_data_managers_clock(managed: tuple[DataManager, Clock]) -> None:
    dm, clock = managed
    await record_hour(dm, clock, T0)
    window = (["pv_w"], T0, T0 + timedelta(hours=1))
    await dm.history(*window)
    assert (await dm.history(*window)).cached  # no time passed on its clock, however long this took
    clock.t += timedelta(seconds=dm.options.cache_ttl_s + 1)
    assert not (await dm.history(*window)).cached
    clock.t -= timedelta(hours=1)  # the clock stepped back: a result computed "later" is stale
    assert not (await dm.history(*window)).cached
    assert (await dm.history(*window)).cached


def test_ttl_cache_treats_a_clock_that_went_back_as_expired() -> None:
    now = [100.0]
    cache: TtlCache[str, int] = TtlCache(10, ttl_s=10.0, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    now[0] = 99.0
    assert cache.get("a") is None
    cache.put("c", 3)  # drops b, put "in the future"
    assert cache.report()["entries"] == 1.0
    assert cache.get("c") == 3


def test_ttl_cache_expires_and_evicts_least_recently_used() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(2, ttl_s=10.0, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # evicts b, the least recently used
    assert cache.get("b") is None
    assert cache.get("c") == 3
    now[0] = 11.0
    assert cache.get("a") is None
    assert cache.report()["evictions"] == 1.0


def test_ttl_cache_drops_expired_entries_on_put_even_if_never_asked_for_again() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(100, ttl_s=10.0, clock=lambda: now[0])
    for minute in range(50):  # a moving window: every key is new
        now[0] = minute * 3.0
        cache.put(f"window-{minute}", minute)
    assert cache.report()["entries"] == 4.0  # put at 138, 141, 144, 147: within 10 s of 147
    assert cache.get("window-49") == 49


async def test_a_locked_database_opens_the_breaker_and_loses_nothing(tmp_path: Path) -> None:
    clock = Clock(T0)
    dm = DataManager(options(tmp_path, busy_timeout_ms=20), now=clock)
    await dm.start()
    await record_hour(dm, clock, T0)
    blocker = sqlite3.connect(dm.options.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        for _ in range(3):
            await dm.flush()
        health = await dm.health()
        assert health["sqlite"]["state"] == "open"  # type: ignore[index]
        assert health["sqlite"]["pending"] == 360  # type: ignore[index]
        failures = dm.breaker.total_failures
        await dm.flush()  # open: not even tried
        assert dm.breaker.total_failures == failures
        refused = await dm.history(["pv_w"], T0, T0 + timedelta(hours=1), "1min")
        assert refused.status is DataStatus.ERROR
        assert "unavailable" in refused.message
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await asyncio.sleep(dm.breaker.reset_s + 0.05)
    await dm.flush()
    assert dm.breaker.state.value == "closed"
    result = await dm.history(["pv_w"], T0, T0 + timedelta(hours=1), "1h")
    await dm.close()
    assert result.data is not None
    assert result.data.fields["pv_w"].count.tolist() == [360.0]


async def test_concurrent_jobs_write_and_read_consistently(managed: tuple[DataManager, Clock]) -> None:
    dm, clock = managed
    clock.t = T0 + timedelta(hours=1)

    async def writer(k: int) -> None:
        for i in range(36):
            await dm.record(snap(T0 + timedelta(seconds=10 * (k * 36 + i))))
            if i % 9 == 0:
                await dm.flush()
            await asyncio.sleep(0)

    async def reader() -> None:
        for _ in range(10):
            result = await dm.history(["pv_w"], T0, T0 + timedelta(hours=1), "1min")
            assert result.status is not DataStatus.ERROR
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(k) for k in range(10)), *(reader() for _ in range(5)))
    await dm.flush()
    dm.cache.clear()
    result = await dm.history(["pv_w"], T0, T0 + timedelta(hours=1), "1h")
    assert result.data is not None
    assert result.data.fields["pv_w"].count.tolist() == [360.0]


async def test_quality_finds_gaps_stuck_values_range_and_counter_resets(
    managed: tuple[DataManager, Clock],
) -> None:
    dm, clock = managed
    day = T0.date()
    start = datetime.combine(day, datetime.min.time(), UTC)
    clock.t = start + timedelta(days=1, hours=1)
    times = start.timestamp() + np.arange(0, 86400, 10.0)
    rng = np.random.default_rng(3)
    volts: np.ndarray[tuple[int], np.dtype[np.float64]] = 230 + rng.normal(0, 1.5, times.size)
    minute = (times - start.timestamp()) // 60
    volts[(minute >= 600) & (minute < 645)] = 231.2  # stuck for 45 min
    volts[(minute >= 900) & (minute < 903)] = 300.0  # 3 min out of range
    counter = 1000 + np.arange(times.size, dtype=np.float64) * 0.001
    counter[minute >= 1200] -= 900  # a reset
    keep = ~((minute >= 300) & (minute < 320))  # a 20-minute gap
    await dm.ingest(times[keep], {"grid_v1": volts[keep], "grid_import_kwh": counter[keep]})
    result = await dm.quality(day, UTC)
    assert result.status is DataStatus.REAL
    assert result.data is not None
    by_field = {q.field: q for q in result.data}
    v = by_field["grid_v1"]
    assert (v.samples, v.expected) == (8640 - 120, 8640)
    assert v.completeness == pytest.approx((8640 - 120) / 8640)
    assert (v.gaps, v.longest_gap_s) == (1, 1200.0)
    assert (v.stuck_minutes, v.out_of_range_minutes, v.counter_resets) == (45, 3, 0)
    assert by_field["grid_import_kwh"].counter_resets == 1
    health = await dm.health()  # today by the clock: one hour passed, nothing recorded
    assert {(q["field"], q["samples"], q["expected"]) for q in health["quality"]} == {  # type: ignore[attr-defined]
        ("grid_v1", 0, 360),
        ("grid_import_kwh", 0, 360),
    }


async def test_records_round_trip_through_the_manager(managed: tuple[DataManager, Clock]) -> None:
    dm, _ = managed
    await dm.save_session(
        SessionRecord("s", SessionKind.CHARGE, T0, soc_start=10.0, trigger=SessionTrigger.EMERGENCY)
    )
    assert [s.id for s in await dm.open_sessions()] == ["s"]
    plan_id = await dm.save_plan(PlanRecord(T0, T0, T0 + timedelta(hours=1), "d", 3.0, ({"a": 1},)))
    assert (await dm.latest_plan()).id == plan_id  # type: ignore[union-attr]
    await dm.save_decision(DecisionRecord(T0, "charge", plan_id=plan_id))
    assert [d.action for d in await dm.decisions()] == ["charge"]
    await dm.log_event(EventRecord(T0, "override", "force_charge by cli"))
    assert [e.kind for e in await dm.events()] == ["override"]
    oid = await dm.save_override(OverrideRecord(T0, "hold", "mqtt"))
    assert await dm.cancel_override(oid, T0)
    assert (await dm.overrides())[0].cancelled_at == T0
    await dm.put_state("executor", {"kind": "charge"})
    assert await dm.get_state("executor") == {"kind": "charge"}
    assert (await dm.save_config_version("x = 1", "file")).version == 1
    assert [v.version for v in await dm.config_versions()] == [1]


async def test_health_and_perf_summary_report_every_backend(managed: tuple[DataManager, Clock]) -> None:
    dm, clock = managed
    await record_hour(dm, clock, T0)
    await dm.flush()
    await dm.history(["pv_w"], T0, T0 + timedelta(hours=1), "1min")
    health = await dm.health()
    assert set(health) >= {"sqlite", "influx", "ring", "cache", "queries", "quality"}
    assert health["influx"] == {"configured": False}
    assert health["ring"]["samples"] == 360  # type: ignore[index]
    assert "history.1min" in health["queries"]  # type: ignore[operator]
    perf = dm.perf_summary()
    assert perf["recorded"] == 360
    assert "record" in perf["timings"]  # type: ignore[operator]


async def test_bad_requests_name_the_problem(managed: tuple[DataManager, Clock]) -> None:
    dm, _ = managed
    with pytest.raises(ValueError, match="field 'pv_kw': snapshot has no field 'pv_kw'"):
        await dm.history(["pv_kw"], T0, T0 + timedelta(hours=1))
    with pytest.raises(ValueError, match="unknown measurement 'weather'"):
        await dm.history(["weather.temp"], T0, T0 + timedelta(hours=1))
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        await dm.history(["pv_w"], datetime(2026, 1, 1), T0)  # noqa: DTZ001
    with pytest.raises(ValueError, match="must be after start"):
        await dm.history(["pv_w"], T0, T0)
    with pytest.raises(ValueError, match="resolution '5min' is not one of auto, raw, 1min, 15min, 1h"):
        await dm.history(["pv_w"], T0, T0 + timedelta(hours=1), "5min")


async def test_a_bad_field_is_left_out_and_reported_not_fatal(managed: tuple[DataManager, Clock]) -> None:
    dm, clock = managed
    for i in range(3):
        reading = snap(T0 + timedelta(seconds=10 * i), pv=float("nan"), temperatures={"Inverter Air": 40.0})
        await dm.record(reading)
    await dm.flush()
    clock.t = T0 + timedelta(minutes=1)
    result = await dm.history(["load_w", "pv_w"], T0, T0 + timedelta(minutes=1), "1min")
    assert result.data is not None
    assert result.data.fields["load_w"].count.tolist() == [3.0]
    assert result.data.fields["pv_w"].count.tolist() == [0.0]
    health = await dm.health()
    assert health["sqlite"]["fields_left_out"] == {"pv_w": 3, "temp_Inverter Air_c": 3}  # type: ignore[index]
