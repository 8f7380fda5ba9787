"""Price pipeline costs: parsing each source's day, and the service serving two days from cache.

Reads the committed fixture bodies (tests/fixtures/prices); no network. Prints median and p95 per
operation and the peak Python memory of the service call.

.venv/bin/python bench/bench_prices.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.prices.awattar import parse_marketdata
from drivers.prices.cache import PriceCache
from drivers.prices.entsoe import parse_a44, select_day
from drivers.prices.nordpool import parse_day_ahead
from drivers.prices.pse import parse_report
from drivers.prices.service import PriceService
from drivers.prices.tariff import Tariff, TariffConfig, ZoneFees
from drivers.prices.tou import TouConfig, TouSource
from drivers.prices.zones import CalendarConfig

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "prices"
WARSAW = ZoneInfo("Europe/Warsaw")
AUTUMN = date(2025, 10, 26)


def _summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"{name:<36} n={len(ms):4d}  median {statistics.median(ms):7.3f} ms  p95 {p95:7.3f} ms"


def _time(repeat: int, call: Callable[[], object]) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def parsers(repeat: int) -> None:
    pse = (FIXTURES / "pse" / f"rce-pln_{AUTUMN}.json").read_text()
    a44 = (FIXTURES / "entsoe" / f"a44_PL_{AUTUMN}.xml").read_text()
    nordpool = (FIXTURES / "nordpool" / f"dayahead_SE3_{AUTUMN}.json").read_text()
    awattar = (FIXTURES / "awattar" / f"marketdata_{AUTUMN}.json").read_text()
    cases: list[tuple[str, Callable[[], object]]] = [
        ("pse rce-pln, 100 quarter-hours", lambda: parse_report(pse, report="rce-pln", day=AUTUMN)),
        (
            "entsoe A44 + select, 100 q-h",
            lambda: select_day(parse_a44(a44, where="b"), day=AUTUMN, tz=WARSAW, sequence=1, source="b"),
        ),
        (
            "nordpool, 100 quarter-hours",
            lambda: parse_day_ahead(nordpool, area="SE3", currency="EUR", where="b"),
        ),
        ("awattar, 25 hours", lambda: parse_marketdata(awattar, where="b")),
    ]
    for name, call in cases:
        print(_summary(name, _time(repeat, call)))


async def service(repeat: int) -> None:
    tariff = Tariff(
        TariffConfig(
            calendar=CalendarConfig(preset="G12w"),
            fees={"peak": ZoneFees(distribution=0.4276), "offpeak": ZoneFees(distribution=0.0845)},
            vat=0.23,
        ),
        currency="PLN",
        timezone=WARSAW,
    )
    with tempfile.TemporaryDirectory() as directory:
        tou = TouSource(TouConfig(prices={"peak": 0.5, "offpeak": 0.5}), tariff.calendar, currency="PLN")
        cached = PriceCache(Path(directory))
        for offset in range(2):
            day = AUTUMN + timedelta(days=offset)
            await cached.store("bench", day, await tou.fetch_day(day))
        tou.cache_key = "bench"  # served from the cache like a web source after a restart
        svc = PriceService([tou], tariff, timezone=WARSAW, cache=cached)
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            await svc.fetch(AUTUMN, AUTUMN + timedelta(days=1))
            samples.append(time.perf_counter() - start)
        print(_summary("service, 2 days from disk cache", samples))
        tracemalloc.start()
        result = await svc.fetch(AUTUMN, AUTUMN + timedelta(days=1))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{'service peak Python memory':<36} {peak / 1024:7.1f} KiB for {len(result.slots)} slots")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    parsers(args.repeat)
    asyncio.run(service(max(10, args.repeat // 4)))


if __name__ == "__main__":
    main()
