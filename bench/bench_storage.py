"""Storage benchmark: Influx write and spool replay rates, record() cost, history() latency over a year, RSS.

    .venv/bin/python bench/bench_storage.py [--days 365] [--points 200000] [--repeat 20]

1. Line-protocol encoding (influxdb-client ``Point``) and batched writes through the sink into a real
   InfluxDB 1.x (``/write``) and VictoriaMetrics (v2 write API), 5000 points a batch, gzip on.
2. Spool replay: points parked in the SQLite spool, then replayed into VictoriaMetrics.
3. ``DataManager.record()`` per snapshot, without a sink.
4. One year of 10-second snapshots (12 fields; ~3.15 M snapshots) generated day by day and rolled
   up into SQLite, then ``history()`` at resolution "auto" for 1 day, 30 days and 1 year
   (cache off), median and p95 over ``--repeat`` runs.
The servers come from tests/support/servers.py (Debian packages influxdb and victoria-metrics).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.inverter.types import Snapshot
from storage.datamanager import DataManager, StorageOptions
from storage.influx import InfluxApi, InfluxSettings, InfluxSink, encode
from storage.records import snapshot_point
from storage.sqlite import SqliteStore, database_path
from tests.support.servers import (
    ServerProcess,
    influx_create_database,
    start_influxd,
    start_victoria_metrics,
)

FIELDS = ("pv_w", "load_w", "grid_w", "battery_w", "soc_pct", "grid_v1", "grid_v2", "grid_v3", "grid_hz")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def snapshot(i: int, t0: datetime) -> Snapshot:
    return Snapshot(
        time=t0 + timedelta(seconds=10 * i),
        pv_w=float(i % 5000),
        load_w=431.5,
        grid_w=-120.25,
        battery_w=300.0,
        soc_pct=55.5,
        grid_v=(231.2, 230.7, 229.9),
        grid_hz=50.02,
        temperatures={"battery": 22.5},
        counters_kwh={"grid_import": 1234.5 + i * 0.001, "grid_export": 678.9},
    )


@contextlib.contextmanager
def server(kind: str, tmp: Path) -> Iterator[ServerProcess | None]:
    starter = start_influxd if kind == "influxd" else start_victoria_metrics
    try:
        with starter(tmp) as s:
            if kind == "influxd":
                influx_create_database(s, "hemsd")
            yield s
    except BaseException as exc:  # pytest.skip from require_binary when the server is not installed
        if type(exc).__name__ != "Skipped":
            raise
        print(f"  {kind}: skipped ({exc})")
        yield None


async def bench_writes(lines: list[str], tmp: Path) -> None:
    for kind, api in (("influxd", InfluxApi.V1), ("victoria-metrics", InfluxApi.V2)):
        with server(kind, tmp) as s:
            if s is None:
                continue
            async with SqliteStore(database_path(tmp / kind / "state")) as store:
                settings = InfluxSettings(
                    url=s.url,
                    api=api,
                    database="hemsd",
                    token="t",
                    batch_size=5000,
                    max_buffer_points=len(lines) + 1,
                    flush_interval_s=3600,
                )
                sink = InfluxSink(settings, store)
                await sink.start()
                started = time.perf_counter()
                await sink.add(lines)
                await sink.flush()
                elapsed = time.perf_counter() - started
                await sink.close()
            assert sink.written == len(lines), sink.report()
            print(
                f"  write {kind:<17} ({api.value}): {len(lines) / elapsed:>9,.0f} points/s "
                f"({len(lines)} points, batches of 5000, gzip)"
            )
            if kind == "victoria-metrics":
                await bench_replay(lines, s, tmp / "replay")


async def bench_replay(lines: list[str], s: ServerProcess, tmp: Path) -> None:
    async with SqliteStore(database_path(tmp), spool_max_points=len(lines) + 1) as store:
        started = time.perf_counter()
        for k in range(0, len(lines), 5000):
            await store.spool_append(lines[k : k + 5000])
        spooled = time.perf_counter() - started
        settings = InfluxSettings(
            url=s.url, api=InfluxApi.V2, token="t", batch_size=5000, flush_interval_s=0.05
        )
        sink = InfluxSink(settings, store)
        started = time.perf_counter()
        await sink.start()
        for _ in range(60_000):  # at most 10 minutes
            if not sink.spool_depth:
                break
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await sink.close()
        assert sink.replayed == len(lines), sink.report()
    print(f"  spool append (SQLite)        : {len(lines) / spooled:>9,.0f} points/s")
    print(
        f"  spool replay victoria-metrics: {len(lines) / elapsed:>9,.0f} points/s (delete after acceptance)"
    )


async def bench_record(tmp: Path, count: int) -> None:
    t0 = datetime.now(UTC) - timedelta(days=1)
    async with DataManager(StorageOptions(tmp / "record", commit_interval_s=2.0)) as dm:
        started = time.perf_counter()
        for i in range(count):
            await dm.record(snapshot(i, t0))
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        await dm.flush()
        commit = time.perf_counter() - started
    print(
        f"  record() without sink        : {elapsed / count * 1e6:>9.1f} us/snapshot; "
        f"commit of {count} queued snapshots {commit * 1000:.0f} ms"
    )


def day_of_samples(
    day: int, start: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    times = start + day * 86400 + np.arange(0, 86400, 10.0)
    hour = (times % 86400) / 3600
    season = 0.6 + 0.4 * np.cos((day - 172) / 365 * 2 * np.pi)
    clouds = np.clip(rng.normal(0.8, 0.2, 1).item() + rng.normal(0, 0.05, times.size), 0, 1)
    pv = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * 6000 * season * clouds
    load = 300 + 200 * rng.random(times.size) + 1500 * ((hour > 17) & (hour < 21))
    battery = np.clip(load - pv, -4000, 4000)
    soc = np.clip(50 + np.cumsum(-battery) * 10 / 3600 / 100, 5, 100)
    volts = 230 + 0.8 * pv / 1000 + rng.normal(0, 0.8, (3, times.size))
    return times, {
        "pv_w": pv,
        "load_w": load,
        "grid_w": load - pv - battery,
        "battery_w": battery,
        "soc_pct": soc,
        "grid_v1": volts[0],
        "grid_v2": volts[1],
        "grid_v3": volts[2],
        "grid_hz": 50 + rng.normal(0, 0.02, times.size),
        "temp_battery_c": 20 + 5 * np.sin(hour / 24 * 2 * np.pi),
        "grid_import_kwh": 1000 + (day * 8640 + np.arange(times.size)) * 0.002,
        "grid_export_kwh": 500 + (day * 8640 + np.arange(times.size)) * 0.001,
    }


async def bench_history(tmp: Path, days: int, repeat: int) -> None:
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    rng = np.random.default_rng(1)
    rss_before = rss_mb()
    options = StorageOptions(tmp / "year", cache_entries=0, commit_interval_s=3600)
    async with DataManager(options) as dm:
        started = time.perf_counter()
        for day in range(days):
            times, columns = day_of_samples(day, start.timestamp(), rng)
            await dm.ingest(times, columns)
        ingest = time.perf_counter() - started
        size_mb = dm.options.db_path.stat().st_size / 1e6
        print(
            f"  generated {days * 8640:,} snapshots x 12 fields ({days} days) into rollups in {ingest:.1f} s "
            f"({days * 8640 / ingest:,.0f} snapshots/s); database {size_mb:.0f} MB"
        )
        fields = ["pv_w", "load_w", "grid_w", "battery_w", "soc_pct"]
        for label, span in (
            ("1 day", timedelta(days=1)),
            ("30 days", timedelta(days=30)),
            ("1 year", timedelta(days=days)),
        ):
            timings = []
            for _ in range(repeat):
                t = time.perf_counter()
                result = await dm.history(fields, end - span, end)
                timings.append((time.perf_counter() - t) * 1000)
            assert result.data is not None, result.message
            print(
                f"  history({len(fields)} fields, {label:<7}) auto={result.data.resolution.value:<5} "
                f"{result.data.times.size:>6} points: median {statistics.median(timings):7.1f} ms, "
                f"p95 {percentile(timings, 95):7.1f} ms  [{result.status.value}, {result.source}]"
            )
    print(f"  RSS growth over the year's ingest and queries: {rss_mb() - rss_before:+.0f} MB")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--days", type=int, default=365, help="days of 10-s snapshots to generate (default 365)"
    )
    parser.add_argument("--points", type=int, default=200_000, help="points written into each server")
    parser.add_argument("--repeat", type=int, default=20, help="runs of each history query")
    args = parser.parse_args()
    rss0 = rss_mb()
    print(f"storage benchmark (RSS at start {rss0:.0f} MB)")
    with tempfile.TemporaryDirectory(prefix="hemsd-bench-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = datetime.now(UTC) - timedelta(days=2)
        started = time.perf_counter()
        lines = [encode(snapshot_point(snapshot(i, t0), "home", "ET-1")) for i in range(args.points)]
        elapsed = time.perf_counter() - started
        print(f"  encode (Point -> line)       : {args.points / elapsed:>9,.0f} points/s (14 fields each)")
        await bench_writes(lines, tmp)
        del lines
        await bench_record(tmp, 20_000)
        await bench_history(tmp, args.days, args.repeat)
    print(f"RSS now {rss_mb():.0f} MB (growth {rss_mb() - rss0:+.0f} MB), peak {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
