"""Soak: the daemon against the emulator for 30 simulated days; memory, CPU, writes, queues.

.venv/bin/python bench/soak.py [--days 30] [--poll 30] [--no-influx] [--no-mqtt] [--tracemalloc | --heap]

The application (``HemsdApp``: inverter driver, storage, prices, forecast, planner, executor,
MQTT) runs in this process, its jobs driven at their configured cadence on a virtual clock (as in
``tests/test_closed_loop.py``): a simulated day takes as long as its work does, nothing is
skipped. The emulated GoodWe ET runs in a process of its own, as an inverter is a device of its
own, and the daemon reaches it through the real goodwe library over loopback UDP; the emulator
reads the virtual time from memory this process shares with it, so what is measured here is the
daemon alone. Prices come from a CSV of varying day-ahead prices, so the battery charges and
discharges every day. When the Debian packages are installed, InfluxDB 1.x and mosquitto run
as real servers on loopback ports (the influx sink, its spool and the MQTT client are part of
what is measured).

Printed per simulated day: RSS, CPU seconds, polls (in all), inverter writes, the Influx spool
depth (SQLite) and memory buffer, SQLite rows waiting for the next commit, raw ring samples and
MQTT messages dropped (and the emulator process's RSS). The commit and the Influx flush run on real time while a simulated day
takes about 30 s, so they run every 0.05 s here (a couple of simulated minutes) instead of every
2 and 5 s: with the daemon's defaults the buffer and the pending rows would hold hours of a fast
day, which a daemon on real time never holds. At the end: the daemon's RSS at start and end, the growth, CPU seconds per simulated day and the targets (RSS growth < 10 MB,
RSS < 100 MB). Not part of the test suite.

To find what grows (both off by default): ``--heap`` prints after each day glibc's heap (in use,
free, mmapped), SQLite's own memory and the RSS by kind of mapping (main heap, thread arenas, other
anonymous memory, files), which costs nothing measurable. ``--tracemalloc`` prints these too, the
traced Python memory, the most each job held at once above what it started with, and the
allocation sites (file:line) that grew most since the day before and since the start; tracing
slows the daemon and adds memory of its own, so its RSS figures are not comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import multiprocessing
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the real servers the tests start

from support.frontends import publisher_of  # noqa: E402

from controller.cli.demo import write_price_csv  # noqa: E402
from controller.clock import VirtualClock  # noqa: E402
from controller.config.loading import load_config_text  # noqa: E402
from controller.config.models import EmulatedInverterConfig  # noqa: E402
from controller.daemon.malloc import heap_info  # noqa: E402
from controller.daemon.parts import start_emulator  # noqa: E402
from controller.daemon.schedule import Job  # noqa: E402
from controller.daemon.wiring import create_application  # noqa: E402

TZ = ZoneInfo("Europe/Warsaw")
START = datetime(2026, 6, 1, tzinfo=TZ)
CONFIG = """
[site]
id = "soak"
timezone = "Europe/Warsaw"
[logging]
level = "WARNING"
[daemon]
poll_interval_s = {poll}
plan_interval_min = 15
publish_interval_s = 60
[inverter]
{inverter}
[battery]
min_soc_pct = 12
[executor]
min_dwell_s = 300
[storage]
state_dir = "{state}"
commit_interval_s = 0.05
[[prices.sources]]
type = "csv"
path = "{csv}"
currency = "PLN"
timezone = "Europe/Warsaw"
[prices.tariff]
vat = 0.23
[prices.tariff.fees.all]
distribution = 0.35
{influx}
{mqtt}
"""


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


EMULATOR = """type = "emulator"
protocol = "udp"
initial_soc_pct = 40
daily_load_kwh = 12"""


class SharedClock:
    """The soak's virtual time as the emulator process sees it: a double this process shares."""

    speed = float("inf")

    def __init__(self, timestamp: Synchronized[float]) -> None:
        self._timestamp = timestamp

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._timestamp.value, UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)

    def real_seconds(self, seconds: float) -> float:
        return 0.0

    def monotonic(self) -> float:
        return self._timestamp.value


def emulator_process(config_text: str, timestamp: Synchronized[float], conn: Connection) -> None:
    """Serve the emulated inverter; answer "stats" with its writes and RSS, stop on "stop"."""
    asyncio.run(_serve_emulator(config_text, timestamp, conn))


async def _serve_emulator(config_text: str, timestamp: Synchronized[float], conn: Connection) -> None:
    config = load_config_text(config_text)
    assert isinstance(config.inverter, EmulatedInverterConfig)
    async with start_emulator(config, config.inverter, SharedClock(timestamp)) as emulator:
        conn.send(emulator.udp_port)
        stopped = asyncio.Event()

        def answer() -> None:
            if conn.recv() == "stop":
                stopped.set()
            conn.send({"writes": emulator.writes_total, "rss_mb": rss_mb()})

        asyncio.get_running_loop().add_reader(conn.fileno(), answer)
        await stopped.wait()


def heap_mb() -> str:
    """glibc's view: heap in use, free inside the heap, mmapped blocks (MB); "" when not glibc."""
    info = heap_info()
    if info is None:
        return ""
    mb = 1024.0 * 1024.0
    heap = f"heap in use {info.uordblks / mb:.1f}, free {info.fordblks / mb:.1f}, mmapped {info.hblkhd / mb:.1f} MB"
    try:  # the SQLite library Python's sqlite3 module is linked with (one per process)
        sqlite = ctypes.CDLL("libsqlite3.so.0")
    except OSError:
        return heap
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    sqlite.sqlite3_memory_highwater.restype = ctypes.c_int64
    sqlite.sqlite3_memory_highwater.argtypes = (ctypes.c_int,)
    return (
        f"{heap}; SQLite {sqlite.sqlite3_memory_used() / mb:.1f} MB "
        f"(max {sqlite.sqlite3_memory_highwater(0) / mb:.1f})"
    )


def rss_by_mapping() -> str:
    """Resident memory (MB) by kind of mapping: glibc's main heap, its thread arenas (64 MiB
    aligned), other anonymous memory (Python's arenas, large blocks, stacks) and files."""
    kinds = dict.fromkeys(("heap", "thread arenas", "other anon", "files"), 0)
    kind = "files"
    with open("/proc/self/smaps", encoding="ascii", errors="replace") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                start = int(fields[0].split("-")[0], 16)
                name = fields[5] if len(fields) > 5 else ""
                if name == "[heap]":
                    kind = "heap"
                elif name and not name.startswith("[anon"):
                    kind = "files"
                elif start % (64 << 20) == 0:
                    kind = "thread arenas"
                else:
                    kind = "other anon"
            elif fields[0] == "Rss:":
                kinds[kind] += int(fields[1])
    return ", ".join(f"{name} {kib / 1024:.1f}" for name, kib in kinds.items())


def print_growers(
    snapshot: tracemalloc.Snapshot, before: tracemalloc.Snapshot, label: str, limit: int = 8
) -> None:
    for stat in snapshot.compare_to(before, "lineno")[:limit]:
        if stat.size_diff <= 0:
            break
        frame = stat.traceback[0]
        print(
            f"    {label}: {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks "
            f"{Path(frame.filename).relative_to(REPO) if frame.filename.startswith(str(REPO)) else frame.filename}:{frame.lineno}"
        )


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def maybe(
    start: Callable[[Path], contextlib.AbstractContextManager[object]], directory: Path, wanted: bool
) -> Iterator[object]:
    """A real server when asked for and installed; None otherwise."""
    if not wanted:
        yield None
        return
    try:
        context = start(directory)
        server = context.__enter__()
    except BaseException as exc:  # servers.require_binary skips (a pytest exception) when it is missing
        print(f"  (not started: {type(exc).__name__}: {exc})")
        yield None
        return
    try:
        yield server
    finally:
        context.__exit__(None, None, None)


async def soak(
    days: int,
    poll_s: float,
    directory: Path,
    influx_url: str | None,
    mqtt_port: int | None,
    trace: bool = False,
    heap: bool = False,
) -> None:
    csv = directory / "prices.csv"
    write_price_csv(csv, START - timedelta(days=1), days=days + 4)
    influx = (
        f'[storage.influx]\nflush_interval_s = 0.05\n[storage.influx.server]\ntype = "v1"\nurl = "{influx_url}"\n'
        if influx_url
        else ""
    )
    mqtt = f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n' if mqtt_port else ""

    def config_text(inverter: str) -> str:
        return CONFIG.format(
            poll=poll_s, state=directory / "state", csv=csv, influx=influx, mqtt=mqtt, inverter=inverter
        )

    spawn = multiprocessing.get_context("spawn")
    timestamp = spawn.Value("d", START.timestamp(), lock=False)
    conn, child_conn = spawn.Pipe()
    child = spawn.Process(
        target=emulator_process, args=(config_text(EMULATOR), timestamp, child_conn), daemon=True
    )
    child.start()
    port = conn.recv()

    def emulator_stats() -> dict[str, float]:
        conn.send("stats")
        stats: dict[str, float] = conn.recv()
        return stats

    config = load_config_text(
        config_text(f'type = "goodwe"\nhost = "127.0.0.1"\nport = {port}\nprotocol = "udp"')
    )
    clock = VirtualClock(START)
    if trace:
        tracemalloc.start(1)
    app = create_application(config, clock)
    await app.start()
    jobs: dict[str, tuple[float, Callable[[], Awaitable[None]]]] = {
        job.name: (job.interval_s, job.run) for job in app.jobs() if isinstance(job, Job)
    }  # the interval jobs the daemon runs
    due = {name: clock.now() + timedelta(seconds=period) for name, (period, _) in jobs.items()}
    failures = polls = 0
    gc.collect()
    rss0, cpu0, wall0 = rss_mb(), cpu_s(), time.monotonic()
    rss_max = rss_full = rss0
    print(
        f"start: RSS {rss0:.1f} MB after app.start() (storage, prices, MQTT, Influx; the emulator runs apart)"
    )
    print(
        f"{'day':>4} {'RSS MB':>7} {'CPU s':>7} {'polls':>6} {'writes':>6} {'spool':>6} {'buffer':>6} "
        f"{'pending':>7} {'ring':>6} {'mqtt drop':>9} {'emulator MB':>11}"
    )
    data = app.parts.data
    writes_total = writes_before = int(emulator_stats()["writes"])
    first = previous = tracemalloc.take_snapshot() if trace else None
    job_peaks: dict[str, int] = {}  # the most a job's run held at once above what was held before it
    if trace or heap:
        print(f"    {heap_mb()}\n    RSS by mapping: {rss_by_mapping()}")
    try:
        for day in range(1, days + 1):
            end = START + timedelta(days=day)
            cpu_day = cpu_s()
            while True:
                name = min(due, key=lambda n: due[n])
                if due[name] > end:
                    break
                await clock.sleep((due[name] - clock.now()).total_seconds())
                timestamp.value = clock.now().timestamp()
                if trace:
                    tracemalloc.reset_peak()
                    before = tracemalloc.get_traced_memory()[0]
                try:
                    await jobs[name][1]()
                    if trace:
                        peak = tracemalloc.get_traced_memory()[1] - before
                        job_peaks[name] = max(job_peaks.get(name, 0), peak)
                except Exception as exc:
                    failures += 1
                    print(f"  job {name} failed at {clock.now():%Y-%m-%d %H:%M}: {type(exc).__name__}: {exc}")
                polls += name == "poll"
                due[name] += timedelta(seconds=jobs[name][0])
            await asyncio.sleep(0)  # the real-time background work (commits, Influx, MQTT) gets its turn
            rss = rss_mb()
            rss_max = max(rss_max, rss)
            if day == 2:
                rss_full = rss  # the raw ring holds 48 h: from here on nothing should grow
            sink = data.sink
            client = publisher_of(app).client
            emulator = emulator_stats()
            writes_total = int(emulator["writes"])
            writes = writes_total - writes_before
            writes_before = writes_total
            print(
                f"{day:4d} {rss:7.1f} {cpu_s() - cpu_day:7.1f} {polls:6d} {writes:6d} "
                f"{sink.spool_depth if sink else 0:6d} {sink.buffered if sink else 0:6d} {len(data._pending):7d} "
                f"{len(data._ring):6d} {client.stats.dropped if client else 0:9d} {emulator['rss_mb']:11.1f}"
            )
            if heap and not trace:
                print(f"    {heap_mb()}\n    RSS by mapping: {rss_by_mapping()}")
            if first is not None and previous is not None:
                gc.collect()
                snapshot = tracemalloc.take_snapshot()
                traced, peak = tracemalloc.get_traced_memory()
                print(f"    traced {traced / 2**20:.1f} MB (peak {peak / 2**20:.1f}); {heap_mb()}")
                print(f"    RSS by mapping: {rss_by_mapping()}")
                peaks = sorted(job_peaks.items(), key=lambda item: -item[1])
                print("    job peaks: " + ", ".join(f"{n} {b / 2**20:.2f} MB" for n, b in peaks))
                job_peaks.clear()
                print_growers(snapshot, previous, "since the day before")
                print_growers(snapshot, first, "since start")
                previous = snapshot
    finally:
        await app.stop()
        conn.send("stop")
        conn.recv()
        child.join(timeout=10)
    gc.collect()
    rss1, cpu1, wall1 = rss_mb(), cpu_s(), time.monotonic()
    print()
    print(f"simulated days     {days} ({polls} polls every {poll_s:g} s, {failures} job failures)")
    print(
        f"RSS start / end    {rss0:.1f} MB / {rss1:.1f} MB (max {rss_max:.1f} MB): growth {rss1 - rss0:+.1f} MB"
    )
    print(f"RSS growth day 2-{days}  {rss1 - rss_full:+.1f} MB (after the 48-h raw ring has filled)")
    print(
        f"CPU                {cpu1 - cpu0:.1f} s in all, {(cpu1 - cpu0) / days:.1f} s per simulated day ({wall1 - wall0:.0f} s wall)"
    )
    print(f"inverter writes    {writes_total} in all, {writes_total / days:.1f} per day")
    growth_ok = rss1 - rss0 < 10.0
    size_ok = rss_max < 100.0
    print(
        f"targets            RSS growth < 10 MB: {'ok' if growth_ok else 'MISSED'}; RSS < 100 MB: {'ok' if size_ok else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--poll", type=float, default=30.0, help="poll interval, simulated seconds (default 30)"
    )
    parser.add_argument("--no-influx", action="store_true", help="no InfluxDB (the sink and spool idle)")
    parser.add_argument("--no-mqtt", action="store_true", help="no MQTT broker")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="per day: traced memory, glibc heap, top growing sites"
    )
    parser.add_argument(
        "--heap", action="store_true", help="per day: glibc heap, SQLite memory, RSS by mapping (no tracing)"
    )
    args = parser.parse_args()
    from support.servers import start_influxd, start_mosquitto  # noqa: PLC0415 - tests/ on the path above

    with tempfile.TemporaryDirectory(prefix="hemsd-soak-") as tmp:
        directory = Path(tmp)
        with (
            maybe(start_influxd, directory, not args.no_influx) as influxd,
            maybe(start_mosquitto, directory, not args.no_mqtt) as broker,
        ):
            if influxd is not None:
                from support.servers import influx_create_database  # noqa: PLC0415

                influx_create_database(influxd, "hemsd")  # type: ignore[arg-type]
            url = getattr(influxd, "url", None)
            port = getattr(broker, "port", None)
            print(f"hemsd soak: {args.days} simulated days; InfluxDB {url or 'off'}; MQTT {port or 'off'}")
            asyncio.run(soak(args.days, args.poll, directory, url, port, args.tracemalloc, args.heap))


if __name__ == "__main__":
    main()
