"""The emulated GoodWe's first eco group, and a driver that writes self-expiring groups, for the
tests of modes that end on the inverter by themselves (``eco_window_min``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from controller.clock import VirtualClock
from controller.sim.emulator import registers as regs
from controller.sim.emulator.server import GoodWeEmulator
from drivers.inverter.goodwe import GoodWeConfig, GoodWeDriver

WRITE_DAY_TZ = ZoneInfo("Europe/Warsaw")


def group(emulator: GoodWeEmulator) -> regs.EcoGroup:
    return regs.decode_eco_v2([emulator.settings[47547 + i] for i in range(6)])


def driver(emulator: GoodWeEmulator, clock: VirtualClock, window: int | None = 30) -> GoodWeDriver:
    config = GoodWeConfig(
        host="127.0.0.1",
        port=emulator.tcp_port,
        protocol="tcp",
        eco_window_min=window,
        write_day_tz=WRITE_DAY_TZ,
    )
    return GoodWeDriver(config, now=clock.now)
