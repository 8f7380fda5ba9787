"""Helpers for tests against the GoodWe ET emulator (import them; they are not pytest fixtures).

``running_emulator()`` starts the emulator on free loopback ports (TCP and UDP) at an accelerated
clock; ``driver_for()`` builds the real goodwe-library driver for it with small timeouts so fault
tests stay fast.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from controller.clock import AcceleratedClock
from controller.sim.emulator.server import GoodWeEmulator
from drivers.inverter.goodwe import GoodWeConfig, GoodWeDriver
from support.shared import SHARED, missing_shared

START = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # a sunny late morning: PV well above the load
GOODWE_DATA = SHARED / "data" / "goodwe"
ET_DUMPS = GOODWE_DATA / "marcelblijleven_goodwe_tests_sample" / "et"
DECODED_JSON = GOODWE_DATA / "goodwe_samples_decoded_with_pypi_goodwe-0.4.10.json"
TRANSPORTS = ("tcp", "udp")


@asynccontextmanager
async def running_emulator(speed: float = 60.0, **kwargs: Any) -> AsyncIterator[GoodWeEmulator]:
    kwargs.setdefault("tcp_port", 0)
    kwargs.setdefault("udp_port", 0)
    emu = GoodWeEmulator(clock=AcceleratedClock(START, speed), **kwargs)
    async with emu:
        yield emu


def port_of(emu: GoodWeEmulator, transport: str) -> int:
    return emu.udp_port if transport == "udp" else emu.tcp_port


def driver_for(emu: GoodWeEmulator, transport: str, **overrides: Any) -> GoodWeDriver:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port_of(emu, transport),
        "protocol": transport,
        "timeout_s": 0.1,
        "retries": 1,
        "stale_after_failures": 3,
        "backoff_initial_s": 0.0,
        "backoff_max_s": 0.0,
    }
    options.update(overrides)
    return GoodWeDriver(GoodWeConfig(**options), now=emu.clock.now)


def require_dumps() -> dict[str, Any]:
    """The decoded real register dumps, or skip when ../shared is not beside the checkout."""
    for needed in (ET_DUMPS, DECODED_JSON):
        if not needed.exists():
            missing_shared(needed)
    samples: dict[str, Any] = json.loads(DECODED_JSON.read_text())["samples"]
    return samples


def dump_frame(name: str) -> bytes:
    """A recorded UDP reply (AA55 + Modbus RTU frame) from the shared dumps."""
    return bytes.fromhex((ET_DUMPS / name).read_text().strip())


def frame_registers(frame: bytes, base: int) -> dict[int, int]:
    """Registers of a recorded read reply: AA55, address, function, byte count, data, CRC."""
    data = frame[5 : 5 + frame[4]]
    return {base + i: int.from_bytes(data[2 * i : 2 * i + 2], "big") for i in range(len(data) // 2)}
