"""GoodWe driver against the emulator on loopback: read/apply latency (median, p95) and memory.

.venv/bin/python bench/bench_driver.py [--reads 200] [--applies 40]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from datetime import UTC, datetime

from controller.clock import AcceleratedClock
from controller.sim.emulator.server import GoodWeEmulator
from drivers.inverter.goodwe import GoodWeConfig, GoodWeDriver
from drivers.inverter.types import Command, CommandKind

COMMANDS = (
    Command(CommandKind.CHARGE, 3000, 80),
    Command(CommandKind.DISCHARGE, 2500, 40),
    Command(CommandKind.HOLD),
    Command.self_use(),
)


def _summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"{name:<28} n={len(ms):4d}  median {statistics.median(ms):7.2f} ms  p95 {p95:7.2f} ms"


async def run(reads: int, applies: int) -> None:
    clock = AcceleratedClock(datetime(2026, 6, 1, 10, tzinfo=UTC), 60)
    async with GoodWeEmulator(clock=clock, tcp_port=0, udp_port=0) as emu:
        for transport, port in (("udp", emu.udp_port), ("tcp", emu.tcp_port)):
            driver = GoodWeDriver(GoodWeConfig("127.0.0.1", port, protocol=transport), now=clock.now)
            await driver.read()
            read_s = []
            for _ in range(reads):
                t = time.perf_counter()
                await driver.read()
                read_s.append(time.perf_counter() - t)
            change_s, same_s = [], []
            for i in range(applies):
                command = COMMANDS[i % len(COMMANDS)]
                t = time.perf_counter()
                await driver.apply(command)
                change_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                await driver.apply(command)
                same_s.append(time.perf_counter() - t)
            print(_summary(f"{transport} read()", read_s))
            print(_summary(f"{transport} apply() changing", change_s))
            print(_summary(f"{transport} apply() unchanged", same_s))
            print(f"{transport} writes: {driver.writes_today} for {applies} changing commands")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--applies", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(run(args.reads, args.applies))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak RSS {rss_mb:.0f} MB (emulator and driver in one process)")


if __name__ == "__main__":
    main()
