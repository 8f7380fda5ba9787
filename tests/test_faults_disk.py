"""A full disk under the state directory while InfluxDB is down too (so the spool is needed).

How the disk is filled: the state directory is a small tmpfs and a filler file takes all of its
space, so SQLite's writes fail with the kernel's ENOSPC exactly as on a full SD card (SQLite:
"database or disk is full"), and so do the price cache and backups. Mounting needs root with
CAP_SYS_ADMIN (this machine and CI run as root, but a container may lack the capability); without
it the test caps the database instead (``PRAGMA max_page_count`` at its current size), which makes
SQLite fail the same way with the same error, only for the database.

The daemon must keep running and controlling (an override ends on time although nothing can be
stored), report the failure (health: sqlite, with the error), keep what it measures in memory, and
lose nothing once the space is back: every reading in the rollups, every line in InfluxDB.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.config import FLAT_TARIFF
from support.servers import ServerProcess, influx_create_database, influx_query, start_influxd
from support.sim_harness import Site, close_site, open_site

import controller.status.report
from controller.control.overrides import OverrideRequest
from storage.influx import InfluxSink

TZ = ZoneInfo("Europe/Warsaw")
START = datetime(2026, 6, 15, 8, 0, tzinfo=TZ)
BODY = (
    """
[site]
id = "diskfull"
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 120
plan_interval_min = 60
publish_interval_s = 600
[executor]
min_dwell_s = 0
"""
    + FLAT_TARIFF
    + """[storage.influx]
flush_interval_s = 0.2
timeout_s = 1
[storage.influx.server]
type = "v1"
url = "{url}"
database = "hemsd"
"""
)


@contextlib.contextmanager
def small_filesystem(directory: Path) -> Iterator[bool]:
    """``directory`` as a 64 MB tmpfs when this process may mount one; yields whether it is."""
    directory.mkdir(parents=True)
    mounted = False
    if os.geteuid() == 0:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(directory)],
            capture_output=True,
            check=False,
        )
        mounted = result.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True, check=False)


def fill(filler: Path) -> None:
    """Writes ``filler`` until the filesystem (at most 64 MB) refuses with ENOSPC.

    Unbuffered on purpose: a buffered file would keep the tail of the last partial write and fail
    again with ENOSPC when it is closed."""
    chunk = bytes(1 << 16)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range((64 << 20) // len(chunk) + 1):
            os.write(fd, chunk)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
    else:
        raise AssertionError(f"{filler}: the filesystem took 64 MB without filling up")
    finally:
        os.close(fd)


@contextlib.asynccontextmanager
async def disk_full(site: Site, mounted: bool) -> AsyncIterator[None]:
    store = site.app.parts.data.store
    if mounted:
        filler = site.config.storage.state_dir / "filler"
        try:
            fill(filler)
            yield
        finally:
            filler.unlink(missing_ok=True)
    else:
        db = store._writer()
        async with db.execute("PRAGMA page_count") as cursor:
            row = await cursor.fetchone()
        await db.execute(f"PRAGMA max_page_count = {int(row[0]) if row else 1}")
        try:
            yield
        finally:
            await db.execute("PRAGMA max_page_count = 1073741823")


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[ServerProcess]:
    with start_influxd(tmp_path) as server:
        influx_create_database(server, "hemsd")
        yield server


async def test_a_full_disk_loses_nothing_and_stops_nothing(
    tmp_path: Path, influxd: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []
    add = InfluxSink.add

    async def recording_add(self: InfluxSink, batch: list[str]) -> None:
        lines.extend(batch)
        await add(self, batch)

    monkeypatch.setattr(InfluxSink, "add", recording_add)
    monkeypatch.setattr(controller.status.report, "STORAGE_HEALTH_S", 0.0)  # every publish reads fresh health
    with small_filesystem(tmp_path / "state") as mounted:
        site = await open_site(tmp_path, START, BODY.format(url=influxd.url), initial_soc_pct=30)
        try:
            data = site.app.parts.data
            sink = data.sink
            assert isinstance(sink, InfluxSink)
            sink.breaker.max_reset_s = 2.0  # real seconds: the circuits close again soon after the fault
            data.breaker.max_reset_s = 2.0
            readings = {site.app.snapshot.time} if site.app.snapshot else set()
            modes: list[tuple[datetime, str]] = []

            async def watch(s: Site) -> None:
                s.emulator.advance()
                modes.append((s.clock.now(), s.emulator.behaviour.mode))
                if s.app.snapshot is not None and not s.app.snapshot.stale:
                    readings.add(s.app.snapshot.time)

            override = OverrideRequest(
                "force_charge", "test", timedelta(minutes=90), power_w=2000, soc_pct=95
            )
            await data.save_override(override.record(site.clock.now()))
            await site.run(timedelta(minutes=30), during=watch)
            influxd.stop()  # the spool is needed from here on
            await site.run(timedelta(minutes=10), during=watch)
            async with disk_full(site, mounted):
                full_at = site.clock.now()
                await site.run(timedelta(hours=2), during=watch)
                await site.settle(0.5)
                health = await site.app.health(site.clock.now())
                assert "sqlite" in health.stale_sources
                assert health.last_error is not None
                assert "database or disk is full" in health.last_error
            await site.run(timedelta(minutes=30), during=watch)
            deadline = time.monotonic() + 10
            while data.breaker.state.value != "closed" and time.monotonic() < deadline:
                await site.run(timedelta(minutes=2), during=watch)  # the SQLite circuit probes again
                await site.settle(0.2)
            influxd.start()
            await site.run(timedelta(minutes=30), during=watch)
            assert not site.failures, [(t, job, repr(e)) for t, job, e in site.failures[:3]]

            # the override ended on time although nothing could be stored
            ended = full_at + timedelta(minutes=50)
            assert {mode for t, mode in modes if full_at <= t < ended - timedelta(minutes=2)} == {"charge"}
            after = {
                mode for t, mode in modes if ended + timedelta(minutes=2) <= t < full_at + timedelta(hours=2)
            }
            assert after
            assert "charge" not in after  # the plan decides again (hold or self-use)

            # nothing measured is lost: every reading in the rollups, every line in InfluxDB
            await data.flush()
            deadline = time.monotonic() + 30
            while (sink.spool_depth or sink.buffered) and time.monotonic() < deadline:
                await site.settle(0.2)
            assert (sink.spool_depth, sink.buffered, sink.dropped) == (0, 0, 0), sink.report()
            history = await data.history(
                ["soc_pct"], START, site.clock.now() + timedelta(minutes=1), resolution="1min"
            )
            assert history.data is not None
            assert int(history.data.fields["soc_pct"].count.sum()) == len(readings)
            snapshots = {line.rsplit(" ", 1)[1] for line in lines if line.startswith("snapshot,")}
            stored = {str(row[0]) for row in influx_query(influxd, "hemsd", 'SELECT * FROM "snapshot"')}
            assert snapshots == stored
            assert (await data.health())["sqlite"]["state"] == "closed"  # type: ignore[index]
        finally:
            await close_site(site)
