"""Inverter readings at the edges of their register types, through the real goodwe library.

The emulator's registers are stuck at the words a real ET serves when a value is unset (0xFFFF),
saturated (0x8000 in a signed register) or out of range (a SoC of 101 %). A power no inverter of
the rating can carry, a SoC outside 0-100 % and a SoC further from the last good one than a
battery can move are refused: the driver serves the last good reading and, as for any failed
read, marks it stale after ``stale_after_failures``, which the guard answers with self-use. A SoC
that a second reading confirms is taken (a BMS that recalibrated). SoC 0 and 100 are readings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from controller.clock import VirtualClock
from controller.sim.emulator.server import Faults, GoodWeEmulator
from controller.sim.emulator.site import EmulatedSiteConfig
from drivers.inverter.goodwe import GoodWeConfig, GoodWeDriver
from drivers.inverter.goodwe_mapping import snapshot_from_runtime

START = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
GOOD = {"ppv": 3000, "pbattery1": -1000, "active_power": 500, "battery_soc": 60}


@pytest.mark.parametrize(
    ("sensor", "value", "rated", "refused"),
    [
        ("active_power", -32768, 25000, True),  # the s16 register's end, whatever the rating
        ("active_power", 32767, 25000, True),
        ("active_power", -29000, 10000, False),  # within three times the rating
        ("ppv", 65535, 10000, True),  # a u32 with only its low word set
        ("ppv", 65535, None, False),  # rating unknown: only the fixed bound
        ("pbattery1", 2**31 - 1, None, True),
        ("pbattery1", -1, 10000, False),
        ("battery_soc", 0, 10000, False),
        ("battery_soc", 100, 10000, False),
        ("battery_soc", 101, 10000, True),
    ],
)
def test_a_reading_at_a_type_edge_is_refused_with_the_sensor_named(
    sensor: str, value: int, rated: float | None, refused: bool
) -> None:
    data: dict[str, Any] = GOOD | {sensor: value}
    if not refused:
        snapshot = snapshot_from_runtime(data, START, "self_use", rated)
        assert sensor != "battery_soc" or snapshot.soc_pct == value
        return
    with pytest.raises(ValueError, match=sensor):
        snapshot_from_runtime(data, START, "self_use", rated)


def test_a_meter_that_does_not_answer_is_not_judged() -> None:
    data: dict[str, Any] = GOOD | {"meter_comm_status": 0, "meter_active_power_total": 2**31 - 1}
    assert snapshot_from_runtime(data, START, "self_use", 10000).grid_w == -500.0
    with pytest.raises(ValueError, match="meter_active_power_total"):
        snapshot_from_runtime(data | {"meter_comm_status": 1}, START, "self_use", 10000)


def driver(emulator: GoodWeEmulator, clock: VirtualClock) -> GoodWeDriver:
    config = GoodWeConfig(
        host="127.0.0.1", port=emulator.tcp_port, protocol="tcp", stale_after_failures=3, backoff_initial_s=0
    )
    return GoodWeDriver(config, now=clock.now)


@pytest.mark.parametrize(
    ("stuck", "why"),
    [
        ({35140: 0x8000}, "active_power"),  # grid power: the s16 register saturated
        ({35105: 0, 35106: 0xFFFF}, "ppv"),  # PV1 power: 65535 W on a 10 kW inverter
        ({37007: 101}, "battery_soc"),
    ],
    ids=["active-power-0x8000", "pv-65535", "soc-101"],
)
async def test_a_stuck_register_serves_the_last_good_reading_then_goes_stale(
    stuck: dict[int, int], why: str
) -> None:
    clock = VirtualClock(START)
    async with GoodWeEmulator(clock=clock, tcp_port=0) as emulator:
        inverter = driver(emulator, clock)
        good = await inverter.read()
        emulator.faults = Faults(stuck=stuck)
        served = []
        for _ in range(3):
            clock.advance(10)
            served.append(await inverter.read())
        assert [s.soc_pct for s in served] == [good.soc_pct] * 3
        assert [s.stale for s in served] == [False, False, True]
        assert why in inverter.health["last_error"]
        emulator.faults = Faults()
        clock.advance(10)
        assert not (await inverter.read()).stale
        await inverter.close()


async def test_a_soc_jump_is_refused_once_and_taken_when_the_next_reading_confirms_it() -> None:
    clock = VirtualClock(START)
    site = EmulatedSiteConfig(initial_soc_pct=60)
    async with GoodWeEmulator(clock=clock, tcp_port=0, site=site) as emulator:
        inverter = driver(emulator, clock)
        assert (await inverter.read()).soc_pct == 60
        emulator.faults = Faults(stuck={37007: 0xFFFF})  # unset: the library reads it as 0 %
        clock.advance(10)
        assert (await inverter.read()).soc_pct == 60  # refused: 60 % cannot be 0 % ten seconds later
        assert "battery_soc 0 % after 60 %" in inverter.health["last_error"]
        emulator.faults = Faults()
        clock.advance(10)
        assert (await inverter.read()).soc_pct == 60  # the glitch is forgotten
        emulator.set_soc(100)  # a BMS that recalibrates: refused once, then confirmed
        clock.advance(10)
        assert (await inverter.read()).soc_pct == 60
        clock.advance(10)
        assert (await inverter.read()).soc_pct == 100
        emulator.set_soc(0)
        clock.advance(10)
        await inverter.read()
        clock.advance(10)
        assert (await inverter.read()).soc_pct == 0  # an empty battery is a reading too
        await inverter.close()
