"""Influx sink against real servers: InfluxDB 1.x (/write, InfluxQL) and VictoriaMetrics (v2 write API).

Round trips through both write paths, outages (every point arrives exactly once and in order), a
permanently rejected point moved aside, a dead server costing nothing per tick, raw history read
back from InfluxDB after a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.servers import (
    ServerProcess,
    free_port,
    influx_create_database,
    influx_query,
    start_influxd,
    start_victoria_metrics,
    victoria_export,
)

from drivers.inverter.types import Snapshot
from storage.datamanager import DataManager, StorageOptions
from storage.influx import InfluxApi, InfluxSettings
from storage.lineprotocol import encode
from storage.records import (
    MEASUREMENT_BY_NAME,
    MEASUREMENTS,
    DataStatus,
    forecast_point,
    plan_point,
    price_point,
    snapshot_point,
)

T0 = (datetime.now(UTC) - timedelta(hours=12)).replace(microsecond=0)  # all points in the past
SITE, DEVICE = "home", "ET-1234"


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[ServerProcess]:
    with start_influxd(tmp_path) as server:
        influx_create_database(server, "hemsd")
        yield server


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[ServerProcess]:
    with start_victoria_metrics(tmp_path) as server:
        yield server


def settings(url: str, api: InfluxApi, **kw: object) -> InfluxSettings:
    base: dict[str, object] = {
        "url": url,
        "api": api,
        "database": "hemsd",
        "bucket": "hemsd",
        "token": "t",
        "flush_interval_s": 0.05,
        "timeout_s": 2.0,
        "retries": 1,
        "retry_base_s": 0.01,
        "breaker_reset_s": 0.2,
        "breaker_max_reset_s": 0.5,
        "batch_size": 500,
        "max_buffer_points": 2000,
    }
    base.update(kw)
    return InfluxSettings(**base)  # type: ignore[arg-type]


def manager(tmp_path: Path, influx: InfluxSettings) -> DataManager:
    return DataManager(StorageOptions(tmp_path / "state", site=SITE, device=DEVICE, influx=influx))


def snap(i: int, **kw: float) -> Snapshot:
    return Snapshot(
        time=T0 + timedelta(seconds=10 * i),
        pv_w=float(i),
        load_w=kw.get("load_w", 400.0),
        grid_w=-100.0,
        battery_w=50.0,
        soc_pct=60.0,
        grid_v=(230.1, 231.2, 229.8),
        grid_hz=50.01,
        temperatures={"battery": 21.5},
        counters_kwh={"grid_import": 1000.0 + i},
    )


async def wait_until_drained(dm: DataManager, timeout_s: float = 30.0) -> None:
    assert dm.sink is not None
    deadline = time.monotonic() + timeout_s
    while (dm.sink.spool_depth or dm.sink.buffered) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert (dm.sink.spool_depth, dm.sink.buffered) == (0, 0), dm.sink.report()


def test_lines_follow_the_published_measurements() -> None:
    point = snapshot_point(snap(3), SITE, DEVICE)
    line = encode(point)
    assert line.startswith("snapshot,device=ET-1234,site=home ")
    assert "grid_import_kwh=1003" in line
    assert "temp_battery_c=21.5" in line
    assert "pv_w=3" in line
    assert not any(part.endswith("i") for part in line.split(" ")[1].split(","))  # floats, never integers
    assert line.endswith(str(int(point.time.timestamp() * 1000)))
    assert {m.name for m in MEASUREMENTS} == {"snapshot", "price", "forecast", "plan"}
    for name, field in (("price", "import_price"), ("forecast", "pv_w"), ("plan", "cost")):
        assert MEASUREMENT_BY_NAME[name].allows(field)


async def test_v1_write_path_round_trip(influxd: ServerProcess, tmp_path: Path) -> None:
    dm = manager(tmp_path, settings(influxd.url, InfluxApi.V1))
    await dm.start()
    for i in range(100):
        await dm.record(snap(i))
    await dm.record_points(
        [
            price_point(T0, 0.61, 0.25, SITE, DEVICE),
            forecast_point(T0, 2500.0, 600.0, SITE, DEVICE),
            plan_point(T0, 55.0, 1200.0, -300.0, 0.12, SITE, DEVICE),
        ]
    )
    await dm.close()
    rows = influx_query(influxd, "hemsd", "SELECT pv_w, grid_v2, temp_battery_c, device, site FROM snapshot")
    assert len(rows) == 100
    assert [r[1] for r in rows] == [float(i) for i in range(100)]
    assert rows[7] == [int((T0 + timedelta(seconds=70)).timestamp() * 1000), 7, 231.2, 21.5, DEVICE, SITE]
    field_types = influx_query(influxd, "hemsd", "SHOW FIELD KEYS FROM snapshot")
    assert {t for _, t in field_types} == {"float"}
    assert influx_query(influxd, "hemsd", "SELECT import_price, export_price FROM price")[0][1:] == [
        0.61,
        0.25,
    ]
    assert influx_query(influxd, "hemsd", "SELECT soc_pct, cost FROM plan")[0][1:] == [55, 0.12]
    assert len(influx_query(influxd, "hemsd", "SELECT pv_w FROM forecast")) == 1


async def test_v2_write_path_round_trip(victoria: ServerProcess, tmp_path: Path) -> None:
    dm = manager(tmp_path, settings(victoria.url, InfluxApi.V2, gzip=True))
    await dm.start()
    for i in range(100):
        await dm.record(snap(i))
    await dm.record_points([price_point(T0, 0.61, 0.25, SITE, DEVICE)])
    await dm.close()
    [pv] = victoria_export(victoria, '{__name__="snapshot_pv_w"}')
    assert pv["metric"] == {"__name__": "snapshot_pv_w", "site": SITE, "device": DEVICE}
    assert pv["values"] == [float(i) for i in range(100)]
    assert pv["timestamps"] == [int(snap(i).time.timestamp() * 1000) for i in range(100)]
    names = {s["metric"]["__name__"] for s in victoria_export(victoria, '{__name__=~"(snapshot|price)_.*"}')}  # type: ignore[index]
    assert {
        "snapshot_grid_v3",
        "snapshot_grid_import_kwh",
        "price_import_price",
        "price_export_price",
    } <= names


async def test_v2_path_against_a_server_without_it_keeps_every_point(
    influxd: ServerProcess, tmp_path: Path
) -> None:
    dm = manager(tmp_path, settings(influxd.url, InfluxApi.V2))  # influxd 1.6 has no /api/v2/write
    await dm.start()
    for i in range(20):
        await dm.record(snap(i))
    assert dm.sink is not None
    await dm.sink.flush()
    assert dm.sink.spool_depth == 20
    assert dm.sink.written == 0
    assert "HTTP 404" in dm.sink.breaker.last_error
    await dm.close()
    assert influx_query(influxd, "hemsd", "SELECT count(pv_w) FROM snapshot") == []


@pytest.mark.parametrize("api", [InfluxApi.V1, InfluxApi.V2])
async def test_outage_every_point_arrives_once_and_in_order(
    api: InfluxApi, influxd: ServerProcess, victoria: ServerProcess, tmp_path: Path
) -> None:
    server = influxd if api is InfluxApi.V1 else victoria
    dm = manager(tmp_path, settings(server.url, api))
    await dm.start()
    assert dm.sink is not None
    for i in range(50):
        await dm.record(snap(i))
    await wait_until_drained(dm)
    server.stop()
    for i in range(50, 3050):  # a long outage: 3000 points, more than the memory buffer holds
        await dm.record(snap(i))
        if i % 500 == 0:
            await dm.sink.flush()
    await dm.sink.flush()
    assert dm.sink.breaker.state.value == "open"
    assert dm.sink.spool_depth + dm.sink.buffered == 3000
    server.start()
    # recorded while the spool is still replaying: must reach the server after the spooled points
    await dm.record(snap(3049, load_w=999.0))
    await wait_until_drained(dm)
    await dm.close()
    if api is InfluxApi.V1:
        rows = influx_query(influxd, "hemsd", "SELECT pv_w, load_w FROM snapshot")
        assert [r[1] for r in rows] == [float(i) for i in range(3050)]  # each time once, none missing
        assert rows[-1][2] == 999.0  # the later write of the same time won: it arrived last
    else:
        # VictoriaMetrics keeps duplicates: a point sent twice would show up twice here
        [pv] = victoria_export(victoria, '{__name__="snapshot_pv_w"}')
        assert pv["timestamps"] == [int(snap(i).time.timestamp() * 1000) for i in [*range(3050), 3049]]
        [load] = victoria_export(victoria, '{__name__="snapshot_load_w"}')
        assert sorted(load["values"][-2:]) == [400.0, 999.0]  # type: ignore[index]


async def test_a_rejected_point_is_moved_aside_and_counted(influxd: ServerProcess, tmp_path: Path) -> None:
    import urllib.request  # noqa: PLC0415

    conflict = f'price,device={DEVICE},site={SITE} import_price="text" {int(T0.timestamp() * 1000) - 1000}'
    request = urllib.request.Request(f"{influxd.url}/write?db=hemsd&precision=ms", data=conflict.encode())
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 204
    dm = manager(tmp_path, settings(influxd.url, InfluxApi.V1))
    await dm.start()
    for i in range(10):
        await dm.record(snap(i))
    await dm.record_points([price_point(T0, 0.5, 0.1, SITE, DEVICE)])
    await dm.close()
    assert len(influx_query(influxd, "hemsd", "SELECT pv_w FROM snapshot")) == 10
    assert dm.sink is not None
    assert dm.sink.rejected == 1
    assert dm.sink.spool_depth == 0
    async with dm.store:
        assert await dm.store.rejected_count() == 1
        [(line, error)] = await dm.store.fetchall("SELECT line, error FROM spool_rejected")
    assert line.startswith("price,")
    assert "HTTP 400" in error
    assert "conflict" in error


async def test_a_dead_server_costs_nothing_per_tick(tmp_path: Path) -> None:
    dm = manager(tmp_path, settings(f"http://127.0.0.1:{free_port()}", InfluxApi.V1, breaker_reset_s=60.0))
    await dm.start()
    assert dm.sink is not None
    for i in range(5):
        await dm.record(snap(i))
        await dm.sink.flush()
    assert dm.sink.breaker.state.value == "open"
    failures = dm.sink.breaker.total_failures
    started = time.perf_counter()
    for i in range(5, 105):
        await dm.record(snap(i))
        await dm.sink.flush()
    per_tick_ms = (time.perf_counter() - started) * 1000 / 100
    assert dm.sink.breaker.total_failures == failures  # no connection attempts while open
    assert dm.sink.spool_depth == 105
    health = await dm.health()
    assert health["influx"]["circuit"]["state"] == "open"  # type: ignore[index]
    await dm.close()
    assert per_tick_ms < 50, per_tick_ms


async def test_raw_history_after_a_restart_is_read_from_influxdb(
    influxd: ServerProcess, tmp_path: Path
) -> None:
    influx = settings(influxd.url, InfluxApi.V1)
    async with manager(tmp_path, influx) as first:
        for i in range(360):
            await first.record(snap(i))
    async with manager(tmp_path, influx) as second:  # empty ring buffer
        result = await second.history(["pv_w", "grid_v1"], T0, T0 + timedelta(hours=1))
    assert (result.status, result.source) == (DataStatus.REAL, "influx")
    assert result.data is not None
    assert result.data.fields["pv_w"].mean.tolist() == [float(i) for i in range(360)]


async def test_raw_history_falls_back_when_the_server_cannot_answer(
    victoria: ServerProcess, tmp_path: Path
) -> None:
    influx = settings(victoria.url, InfluxApi.V2)  # VictoriaMetrics has no InfluxQL /query
    async with manager(tmp_path, influx) as first:
        for i in range(360):
            await first.record(snap(i))
    async with manager(tmp_path, influx) as second:
        result = await second.history(["pv_w"], T0, T0 + timedelta(hours=1))
    assert (result.status, result.source) == (DataStatus.FALLBACK, "sqlite")
    assert "influx:" in result.message
    assert result.data is not None
    assert result.data.fields["pv_w"].count.sum() == 360


async def test_a_spool_failing_at_shutdown_loses_the_buffer_loudly_and_still_shuts_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dm = manager(tmp_path, settings(f"http://127.0.0.1:{free_port()}", InfluxApi.V1, breaker_reset_s=60.0))
    await dm.start()
    sink = dm.sink
    assert sink is not None
    await sink.add([f"snapshot,site=t pv_w={i} {i}" for i in range(3)])
    db = dm.store._writer()
    async with db.execute("PRAGMA page_count") as cursor:
        row = await cursor.fetchone()
    await db.execute(f"PRAGMA max_page_count = {int(row[0]) if row else 1}")  # the disk is full
    await sink.add([f"snapshot,site=t pv_w={i} {i}" for i in range(3, 600)])
    await dm.close()
    assert sink.buffered == 0
    assert sink.dropped >= 600 - sink.spooled
    assert "neither written nor spooled at shutdown, lost" in caplog.text


async def test_a_v1_server_without_the_database_gets_it_created(tmp_path: Path) -> None:
    with start_influxd(tmp_path) as server:  # a fresh influxd: nobody ran CREATE DATABASE
        dm = manager(tmp_path, settings(server.url, InfluxApi.V1))
        await dm.start()
        for i in range(10):
            await dm.record(snap(i))
        await dm.close()
        assert len(influx_query(server, "hemsd", "SELECT pv_w FROM snapshot")) == 10
        sink_report = dm.sink.report() if dm.sink else {}
        assert (sink_report.get("dropped"), sink_report.get("rejected")) == (0, 0)
