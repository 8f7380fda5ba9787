"""The emulator's cost per poll, in process (no sockets): what a daemon simulation pays for it.

A poll as the goodwe library makes it on ET firmware: running data, battery and meter blocks at
one simulated instant, then the clock moves on by the poll interval.

.venv/bin/python bench/bench_emulator.py [--polls 3000] [--interval-s 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from controller.clock import VirtualClock
from controller.sim.emulator import registers as regs
from controller.sim.emulator.server import GoodWeEmulator

POLL = (regs.RUNNING_DATA, regs.BATTERY_INFO, regs.METER_DATA)


def per_poll_us(polls: int, interval_s: float) -> tuple[float, float]:
    """(wall, CPU) microseconds per poll over ``polls`` polls of a fresh emulator."""
    clock = VirtualClock(datetime(2026, 6, 1, 4, 0, tzinfo=UTC))
    emu = GoodWeEmulator(clock=clock)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(polls):
        clock.advance(interval_s)
        for block in POLL:
            emu.registers(block.address, block.count)
    return (time.perf_counter() - wall) / polls * 1e6, (time.process_time() - cpu) / polls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=3000)
    parser.add_argument("--interval-s", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs = [per_poll_us(args.polls, args.interval_s) for _ in range(args.repeats)]
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    print(
        f"{args.polls} polls every {args.interval_s:g} s: median {wall:.0f} us wall, {cpu:.0f} us CPU per poll"
    )


if __name__ == "__main__":
    main()
