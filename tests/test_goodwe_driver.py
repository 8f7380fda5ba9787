"""The GoodWe driver, through the real goodwe library, against the emulator over TCP and UDP."""

from __future__ import annotations

import math

import pytest
from support.emulator_fixtures import TRANSPORTS, driver_for, running_emulator

from controller.sim.emulator.site import EmulatedSiteConfig
from drivers.inverter.goodwe import GoodWeConfig, GoodWeDriver
from drivers.inverter.types import Command, CommandKind, Inverter, InverterError

# Every Command kind, with the emulator behaviour it must produce.
COMMANDS = (
    (Command(CommandKind.CHARGE, 3000, 80), ("charge", 3000.0, 80.0, 10000.0, 11.0)),
    (Command(CommandKind.DISCHARGE, 2500, 40, export_limit_w=500), ("discharge", 2500.0, None, 500.0, 40.0)),
    (Command(CommandKind.HOLD, min_soc=20), ("hold", 0.0, None, 10000.0, 20.0)),
    (Command(CommandKind.IDLE, min_soc=20), ("standby", 0.0, None, 10000.0, 20.0)),
    (Command(CommandKind.SELF_USE, export_limit_w=0), ("self_use", 0.0, None, 0.0, 11.0)),
    (Command.self_use(), ("self_use", 0.0, None, 10000.0, 11.0)),
)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_snapshot_matches_the_emulator_with_our_sign_conventions(transport: str) -> None:
    async with running_emulator() as emu:
        driver = driver_for(emu, transport)
        assert isinstance(driver, Inverter)
        await driver.apply(Command(CommandKind.CHARGE, 6000, 90))  # more than the PV: imports
        snap = await driver.read()
        state = emu.state
        assert not snap.stale
        assert snap.time.tzinfo is not None
        assert snap.mode == "charge"
        assert snap.battery_w < -4900  # charging is negative
        assert snap.grid_w > 1000  # importing is positive
        assert math.isclose(snap.pv_w, state.pv_w, rel_tol=0.02)
        assert math.isclose(snap.battery_w, state.battery_w, rel_tol=0.02)
        assert math.isclose(snap.grid_w, state.grid_w, rel_tol=0.05)
        assert math.isclose(snap.load_w, snap.pv_w + snap.battery_w + snap.grid_w)
        assert abs(snap.soc_pct - state.soc_pct) <= 1
        assert len(snap.grid_v) == 3
        assert snap.grid_hz == 50.0
        assert snap.temperatures["battery"] == 25.0
        assert set(snap.counters_kwh) == {
            "pv",
            "export",
            "import",
            "load",
            "battery_charge",
            "battery_discharge",
        }


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_command_kind_reaches_the_emulator_and_reads_back(transport: str) -> None:
    async with running_emulator() as emu:
        driver = driver_for(emu, transport)
        for command, (mode, power, target, export_limit, floor) in COMMANDS:
            applied = await driver.apply(command)
            assert applied.ok, applied.mismatches
            assert applied.written, f"{command} wrote nothing"
            b = emu.behaviour
            assert (b.mode, b.power_w, b.target_soc, b.export_limit_w, b.floor_soc) == (
                mode,
                power,
                target,
                export_limit,
                floor,
            )
            assert applied.read_back["grid_export_limit"] == export_limit
            assert applied.read_back["battery_discharge_depth"] == floor
            assert applied.writes_today == driver.writes_today
        assert driver.writes_today == emu.writes_total  # the driver counts what the inverter saw


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_same_command_twice_writes_nothing_the_second_time(transport: str) -> None:
    async with running_emulator() as emu:
        driver = driver_for(emu, transport)
        for command, _ in COMMANDS:
            await driver.apply(command)
            before = emu.writes_total
            again = await driver.apply(command)
            assert emu.writes_total == before, emu.write_log[before:]
            assert again.written == {}
            assert again.ok


async def test_only_the_differing_setting_is_written() -> None:
    async with running_emulator(udp_port=None) as emu:
        driver = driver_for(emu, "tcp")
        await driver.apply(Command(CommandKind.CHARGE, 3000, 80))
        before = emu.writes_total
        await driver.apply(Command(CommandKind.CHARGE, 4000, 80))
        assert [r.setting for r in emu.write_log[before:]] == ["eco_mode_1"]
        before = emu.writes_total
        await driver.apply(Command(CommandKind.CHARGE, 4000, 80, export_limit_w=0))
        assert [r.setting for r in emu.write_log[before:]] == ["grid_export_limit"]


async def test_operation_mode_change_resets_the_ems_mode_and_the_plan_knows_it() -> None:
    async with running_emulator(udp_port=None) as emu:
        driver = driver_for(emu, "tcp")
        await driver.apply(Command(CommandKind.HOLD))
        assert emu.settings[47511] == 2
        before = emu.writes_total
        await driver.apply(Command(CommandKind.CHARGE, 2000, 70))
        # the operation mode's own EMS reset (47511-47512 = 1, 0) returns EMS to auto: no other EMS write
        assert [r.values for r in emu.write_log[before:] if r.address == 47511] == [(1, 0)]
        assert emu.settings[47511] == 1
        assert emu.behaviour.mode == "charge"
        before = emu.writes_total
        await driver.apply(Command(CommandKind.HOLD))
        # GENERAL resets the EMS, then the driver sets charge_pv (power 0 is already 0 after the reset)
        assert [r.values for r in emu.write_log[before:] if r.address == 47511] == [(1, 0), (2,)]
        assert emu.behaviour.mode == "hold"


async def test_idle_leaves_the_battery_untouched_and_exports_the_pv_surplus() -> None:
    """EMS battery standby: in a sunny late morning the hold stores the surplus, idle exports it
    with the battery neither charging nor discharging; it reads back as idle, also where the
    hold is configured by eco group (idle stays the EMS standby)."""
    async with running_emulator(udp_port=None) as emu:
        driver = driver_for(emu, "tcp")
        await driver.apply(Command(CommandKind.HOLD))
        emu.advance()
        assert emu.state.battery_w < -500.0  # the hold stores the surplus
        before = emu.writes_total
        applied = await driver.apply(Command(CommandKind.IDLE))
        assert applied.ok, applied.mismatches
        assert [(r.address, r.values) for r in emu.write_log[before:]] == [(47511, (8,))]
        snap = await driver.read()
        assert emu.behaviour.mode == "standby"
        assert snap.battery_w == pytest.approx(0.0, abs=1.0)
        assert snap.pv_w > snap.load_w + 500.0
        assert snap.grid_w == pytest.approx(snap.load_w - snap.pv_w, abs=2.0)  # the surplus exported
        assert await driver.current_command() == Command(CommandKind.IDLE, min_soc=11.0)
    async with running_emulator(udp_port=None) as emu:
        driver = driver_for(emu, "tcp", hold_via="eco")
        assert (await driver.apply(Command(CommandKind.IDLE))).ok
        assert emu.behaviour.mode == "standby"
        assert emu.settings[47511] == 8


async def test_hold_by_eco_group_when_configured() -> None:
    async with running_emulator(udp_port=None) as emu:
        driver = driver_for(emu, "tcp", hold_via="eco")
        applied = await driver.apply(Command(CommandKind.HOLD))
        assert applied.ok
        assert emu.behaviour.mode == "standby"
        assert emu.settings[47511] == 1
        assert await driver.current_command() == Command(CommandKind.HOLD, min_soc=11.0)


async def test_eco_v1_firmware_charges_without_soc_target() -> None:
    async with running_emulator(udp_port=None, eco_mode_v2=False) as emu:
        driver = driver_for(emu, "tcp")
        applied = await driver.apply(Command(CommandKind.CHARGE, 5000, 80))
        assert applied.ok, applied.mismatches
        assert emu.behaviour.mode == "charge"
        assert emu.behaviour.power_w == 5000
        before = emu.writes_total
        assert (await driver.apply(Command(CommandKind.CHARGE, 5000, 80))).written == {}
        assert emu.writes_total == before


async def test_write_cap_refuses_commands_but_never_the_return_to_self_use() -> None:
    async with running_emulator(udp_port=None) as emu:
        driver = driver_for(emu, "tcp", max_writes_per_day=5)
        assert (await driver.apply(Command(CommandKind.CHARGE, 3000, 80))).ok  # 4 writes
        refused = await driver.apply(Command(CommandKind.DISCHARGE, 3000, 30))
        assert refused.cap_reached
        assert not refused.ok
        assert refused.written == {}
        assert emu.behaviour.mode == "charge"
        safe = await driver.safe_mode()
        assert safe.written
        assert not safe.cap_reached
        assert emu.behaviour.mode == "self_use"
        assert driver.health["write_cap_reached"] is True
        assert driver.health["writes_today"] == emu.writes_total


async def test_write_cap_counts_per_day_in_the_configured_zone() -> None:
    async with running_emulator(speed=1.0, udp_port=None) as emu:
        driver = GoodWeDriver(
            GoodWeConfig("127.0.0.1", emu.tcp_port, timeout_s=0.2, retries=0, max_writes_per_day=4),
            now=lambda: emu.clock.now().replace(hour=23, minute=59),
        )
        await driver.apply(Command(CommandKind.CHARGE, 3000, 80))
        assert driver.writes_today == 4
        driver._now = lambda: emu.clock.now().replace(day=2, hour=0, minute=1)
        driver._budget._now = driver._now
        assert driver.writes_today == 0
        assert (await driver.apply(Command(CommandKind.DISCHARGE, 3000, 30))).ok


async def test_current_command_reconciles_what_the_inverter_was_told() -> None:
    async with running_emulator(udp_port=None) as emu:
        driver = driver_for(emu, "tcp")
        await driver.apply(Command(CommandKind.CHARGE, 3000, 80, export_limit_w=1500, min_soc=15))
        restarted = driver_for(emu, "tcp")  # a new process: nothing in memory
        assert await restarted.current_command() == Command(CommandKind.CHARGE, 3000, 80, 1500, 15)
        await driver.apply(Command(CommandKind.DISCHARGE, 4000, 35))
        assert await restarted.current_command() == Command(CommandKind.DISCHARGE, 4000, 35)
        assert (await restarted.read()).mode == "discharge"


async def test_info_reports_the_device() -> None:
    async with running_emulator(udp_port=None, site=EmulatedSiteConfig(rated_power_w=8000)) as emu:
        driver = driver_for(emu, "tcp", battery_capacity_kwh=10.0)
        info = await driver.info()
        assert info.model == "GW10K-ET"
        assert "ETU" in info.serial
        assert info.rated_power_w == 8000
        assert info.battery_capacity_kwh == 10.0
        await driver.close()


def test_the_driver_config_names_bad_values() -> None:
    with pytest.raises(ValueError, match=r"inverter\.family: invalid value 'DT'"):
        GoodWeConfig("x", family="DT")
    with pytest.raises(ValueError, match=r"inverter\.port"):
        GoodWeConfig("x", port=0)


async def test_apply_against_nothing_raises_only_inverter_error() -> None:
    async with running_emulator(udp_port=None) as emu:
        port = emu.tcp_port
    driver = GoodWeDriver(GoodWeConfig("127.0.0.1", port, timeout_s=0.05, retries=0))
    with pytest.raises(InverterError, match="apply charge failed"):
        await driver.apply(Command(CommandKind.CHARGE, 1000, 50))
    with pytest.raises(InverterError):
        await driver.info()
    with pytest.raises(InverterError):
        await driver.current_command()
