"""Fault injection: the driver never raises past its boundary, goes stale after N failures, recovers."""

from __future__ import annotations

import asyncio

import pytest
from support.emulator_fixtures import START, driver_for, running_emulator

from controller.sim.emulator.server import Faults, GoodWeEmulator
from drivers.inverter.goodwe import GoodWeConfig, GoodWeDriver
from drivers.inverter.types import Command, CommandKind, InverterError

FAULTS = (
    ("udp", Faults(drop_ratio=1.0)),
    ("tcp", Faults(drop_ratio=1.0)),
    ("udp", Faults(late_ratio=1.0, late_s=0.3)),
    ("tcp", Faults(late_ratio=1.0, late_s=0.3)),
    ("udp", Faults(bad_crc_ratio=1.0)),
    ("udp", Faults(short_frame_ratio=1.0)),
    ("tcp", Faults(short_frame_ratio=1.0)),
    ("udp", Faults(exception_ratio=1.0)),
    ("tcp", Faults(exception_ratio=1.0, exception_code=6)),
)


@pytest.mark.parametrize(
    ("transport", "faults"), FAULTS, ids=lambda v: v if isinstance(v, str) else repr(v)[7:45]
)
async def test_fault_serves_last_snapshot_goes_stale_after_n_and_recovers(
    transport: str, faults: Faults
) -> None:
    async with running_emulator() as emu:
        driver = driver_for(emu, transport, timeout_s=0.05, retries=1, stale_after_failures=3)
        good = await driver.read()
        emu.faults = faults
        served = [await driver.read() for _ in range(5)]
        assert [s.stale for s in served] == [False, False, True, True, True]
        assert all(s.time == good.time for s in served)  # the last good reading, not a made-up one
        assert driver.health["consecutive_failures"] == 5
        assert driver.health["stale"] is True
        assert driver.health["last_error"]
        with pytest.raises(InverterError):
            await driver.apply(Command(CommandKind.CHARGE, 2000, 80))
        emu.faults = Faults()
        await asyncio.sleep(faults.late_s + 0.05)  # replies held back by the fault land before the next read
        fresh = await driver.read()
        assert not fresh.stale
        assert fresh.time > good.time
        assert driver.health["consecutive_failures"] == 0
        assert (await driver.apply(Command(CommandKind.CHARGE, 2000, 80))).ok


async def test_udp_loss_is_absorbed_by_retries() -> None:
    async with running_emulator(faults=Faults(drop_ratio=0.3), seed=7) as emu:
        driver = driver_for(emu, "udp", timeout_s=0.05, retries=3, stale_after_failures=3)
        snaps = [await driver.read() for _ in range(6)]
        assert not any(s.stale for s in snaps)
        assert emu.faults_injected["drop"] >= 3
        assert (await driver.apply(Command(CommandKind.DISCHARGE, 2000, 30))).ok


async def test_late_reply_within_the_timeout_is_fine() -> None:
    async with running_emulator(faults=Faults(late_ratio=1.0, late_s=0.02)) as emu:
        driver = driver_for(emu, "udp", timeout_s=0.3, retries=0)
        assert not (await driver.read()).stale
        assert emu.faults_injected["late"] >= 3


async def test_no_data_yet_is_an_inverter_error() -> None:
    async with running_emulator(faults=Faults(drop_ratio=1.0)) as emu:
        driver = driver_for(emu, "udp", timeout_s=0.05, retries=0)
        for _ in range(3):
            with pytest.raises(InverterError, match="no inverter data yet"):
                await driver.read()


async def test_reconnect_waits_for_the_backoff() -> None:
    now = [0.0]
    async with running_emulator() as emu:
        config = GoodWeConfig(
            "127.0.0.1", emu.tcp_port, protocol="tcp", timeout_s=0.2, retries=0,
            stale_after_failures=2, backoff_initial_s=10.0, backoff_max_s=40.0,
        )  # fmt: skip
        driver = GoodWeDriver(config, now=emu.clock.now, monotonic=lambda: now[0])
        await driver.read()
        emu.faults = Faults(drop_ratio=1.0)
        await driver.read()
        assert (await driver.read()).stale  # second failure: stale, connection dropped
        assert driver.health["connected"] is False
        emu.faults = Faults()
        requests = emu.requests
        assert (await driver.read()).stale  # still in backoff: the inverter is not asked
        assert emu.requests == requests
        assert "backoff" in driver.health["last_error"]
        now[0] = 10.5
        assert not (await driver.read()).stale
        assert driver.health["reconnects"] == 2


async def test_recovers_when_the_inverter_comes_back_on_the_same_port() -> None:
    async with running_emulator(udp_port=None) as emu:
        port, clock = emu.tcp_port, emu.clock
        driver = driver_for(emu, "tcp", timeout_s=0.05, retries=0, stale_after_failures=2)
        await driver.read()
    assert [(await driver.read()).stale for _ in range(3)] == [False, True, True]
    async with GoodWeEmulator(clock=clock, tcp_port=port, udp_port=None):
        assert not (await driver.read()).stale


async def test_rejected_battery_block_is_read_again_after_reconnecting() -> None:
    async with running_emulator() as emu:
        driver = driver_for(emu, "udp", timeout_s=0.05, retries=0, stale_after_failures=3)
        await driver.read()
        # "illegal data address" on the battery block makes the library stop reading it
        emu.faults = Faults(exception_ratio=1.0, exception_code=2, addresses=(37000,))
        assert (await driver.read()).time >= START
        assert driver.health["consecutive_failures"] == 1
        emu.faults = Faults()
        fresh = await driver.read()
        assert not fresh.stale
        assert driver.health["consecutive_failures"] == 0
        assert driver.health["reconnects"] == 2
