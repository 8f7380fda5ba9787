"""Analytics benchmark: a one-year voltage report and a 20-size what-if sweep; time and memory.

    .venv/bin/python bench/bench_analytics.py [--days 365] [--repeat 3] [--planner] [--no-voltage]

1. ``--days`` of 1-minute samples (three phase voltages, grid, PV, load) generated and rolled up
   into SQLite, then ``voltage_report()`` over all of them, twice: with the 1-min rollups kept for
   the whole span (10-min means from minutes, the slowest path) and with the default 90 days of
   minutes (older weeks from 15-min rollups). Median and p95 of ``--repeat`` runs, and the peak of
   traced memory (tracemalloc: Python objects and numpy arrays) during one run.
2. What-if: a year at 15 min (the PL scenario from ../shared when present, else a synthetic year)
   replayed with self-consumption for 20 battery sizes (1..20 kWh) at once, and the same with three
   tariffs (60 variants). Median and p95 of ``--repeat`` runs, traced peak. ``--planner`` adds the
   day-ahead planner for the 20 sizes (one run; the traced peak is of the reference alone: the
   planner runs one variant at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.analytics_fixtures import Injected, generate

from controller.physics import BatteryParams
from controller.sim.scenario import Scenario, load_scenario
from controller.sim.tariffs import parse_tariff
from controller.sim.variants import Variant
from controller.sim.whatif import sweep
from storage.analytics import voltage_report
from storage.datamanager import DataManager, StorageOptions
from storage.sqlite import Retention

SCENARIO = Path(__file__).resolve().parents[2] / "shared" / "scenarios" / "kn4_pl_rce_2025-26_15min_pln.csv"
WARSAW = ZoneInfo("Europe/Warsaw")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summary(label: str, timings: list[float], peak_mb: float) -> None:
    print(
        f"  {label:<58} median {statistics.median(timings):7.2f} s, p95 {np.percentile(timings, 95):7.2f} s, "
        f"traced peak {peak_mb:6.1f} MB"
    )


def traced_peak(run: Callable[[], object]) -> float:
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return peak


async def traced_peak_async(run: Callable[[], Awaitable[object]]) -> float:
    tracemalloc.start()
    await run()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return peak


async def bench_voltage(tmp: Path, days: int, repeat: int) -> None:
    start = datetime(2025, 1, 6, tzinfo=UTC)
    end = start + timedelta(days=days)
    now = end + timedelta(minutes=5)
    events = tuple(
        Injected("grid_v1", start + timedelta(days=d, hours=12), (255.0,) * 30) for d in range(3, days, 17)
    )
    started = time.perf_counter()
    keep_minutes = StorageOptions(
        tmp, sample_interval_s=60.0, retention=Retention(minute_days=days + 10), cache_entries=0
    )  # as hemsd analytics reads
    async with DataManager(keep_minutes, now=lambda: now) as data:
        for first in range(0, days, 30):
            part = generate(
                min(30, days - first),
                impedance_ohm=0.3,
                seed=first,
                start=start + timedelta(days=first),
                injected=tuple(e for e in events if first <= (e.start - start).days < first + 30),
            )
            await data.ingest(part.times, part.columns)
    print(
        f"  generated {days * 1440:,} minutes x 6 fields into rollups in {time.perf_counter() - started:.0f} s"
    )
    for label, options in (
        ("1-min rollups for the whole span", keep_minutes),
        (
            "default retention (90 days of minutes)",
            StorageOptions(tmp, sample_interval_s=60.0, cache_entries=0),
        ),
    ):
        data = DataManager(options, now=lambda: now)
        await data.store.open()
        try:
            timings = []
            for _ in range(repeat):
                t = time.perf_counter()
                report = await voltage_report(data, start, end, WARSAW)
                timings.append(time.perf_counter() - t)
            peak = await traced_peak_async(lambda data=data: voltage_report(data, start, end, WARSAW))
        finally:
            await data.close()
        summary(f"voltage report, {days} days, {label}", timings, peak)
        print(
            f"    {report.status.value}, means {report.resolution}, {sum(report.intervals.values()):,} judged, "
            f"{len(report.events)} events ({len(events)} injected), {len(report.critical)} with context"
        )


def year_scenario() -> tuple[Scenario, str]:
    if SCENARIO.exists():
        return load_scenario(SCENARIO), SCENARIO.name
    rng = np.random.default_rng(1)
    n = 365 * 96
    hour = (np.arange(n) % 96) / 4
    pv = 6000 * np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * np.repeat(rng.uniform(0.2, 1, 365), 96)
    load = 300 + 400 * rng.random(n) + 1500 * ((hour >= 17) & (hour < 21))
    price = 0.6 + 0.5 * ((hour >= 17) & (hour < 21)) + rng.normal(0, 0.05, n)
    return Scenario(
        "synthetic year",
        "PLN",
        datetime(2025, 1, 1, tzinfo=UTC),
        timedelta(minutes=15),
        0,
        price,
        price / 3,
        pv,
        load,
    ), "synthetic year (../shared absent)"


def bench_whatif(repeat: int, planner: bool) -> None:
    scenario, name = year_scenario()
    base = BatteryParams(capacity_kwh=10.0, min_soc_pct=10.0)
    sizes = [Variant(float(c)) for c in range(1, 21)]
    tariffs = [parse_tariff(t) for t in ("recorded", "1.10/0.25", "G12:peak=1.30,offpeak=0.70/0.25")]
    with_tariffs = [Variant(v.capacity_kwh, tariff=t) for v in sizes for t in tariffs]
    print(f"  {name}: {len(scenario):,} intervals of 15 min")
    for label, variants in (("20 sizes", sizes), ("20 sizes x 3 tariffs", with_tariffs)):
        timings = []
        for _ in range(repeat):
            t = time.perf_counter()
            result = sweep(scenario, base, Variant(10.0), variants, tz=WARSAW)
            timings.append(time.perf_counter() - t)
        peak = traced_peak(
            lambda variants=variants: sweep(scenario, base, Variant(10.0), variants, tz=WARSAW)
        )
        summary(f"what-if, self-consumption, {label}", timings, peak)
    best = min(result.rows, key=lambda r: r.annual_cost)
    print(f"    cheapest per year: {best.outcome.label} ({best.annual_cost:.0f} {result.currency})")
    if planner:
        t = time.perf_counter()
        sweep(scenario, base, Variant(10.0), sizes, strategy="planner", tz=WARSAW)
        elapsed = time.perf_counter() - t
        peak = traced_peak(lambda: sweep(scenario, base, Variant(10.0), [], strategy="planner", tz=WARSAW))
        summary("what-if, day-ahead planner, 20 sizes (one run; peak of one)", [elapsed], peak)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=365, help="days of 1-min voltage history (default 365)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each measurement (default 3)")
    parser.add_argument("--planner", action="store_true", help="also sweep 20 sizes with the planner (slow)")
    parser.add_argument("--no-voltage", action="store_true", help="skip the voltage report (part 1)")
    args = parser.parse_args()
    print("analytics benchmark")
    if not args.no_voltage:
        with tempfile.TemporaryDirectory(prefix="hemsd-bench-") as tmp:
            await bench_voltage(Path(tmp), args.days, args.repeat)
    bench_whatif(args.repeat, args.planner)
    print(f"peak RSS of the process {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
