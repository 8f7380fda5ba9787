"""The emulator's firmware logic, physics, write accounting and fault injection."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import goodwe
import pytest
from goodwe.et import ET
from goodwe.exceptions import InverterError as LibraryInverterError
from goodwe.exceptions import RequestRejectedException
from goodwe.protocol import TcpInverterProtocol, UdpInverterProtocol
from support.emulator_fixtures import START, running_emulator

from controller.physics import BatteryParams
from controller.sim.emulator import registers as regs
from controller.sim.emulator import server as emulator
from controller.sim.emulator.server import Faults, GoodWeEmulator
from controller.sim.emulator.site import (
    Behaviour,
    EmulatedSite,
    EmulatedSiteConfig,
    firmware_behaviour,
    household_profile,
    series_profile,
    solar_profile,
)

NOON = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)  # a Wednesday, inverter-local


def settings(**changes: int) -> dict[int, int]:
    s = regs.default_settings(10000, 10)
    s.update({int(k.removeprefix("r")): v for k, v in changes.items()})
    return s


def eco_group(
    regs_: dict[int, int],
    power: int,
    soc: int = 100,
    start: int = 0,
    end: int = 23 * 60 + 59,
    days: int = 0x7F,
    on: bool = True,
) -> dict[int, int]:
    words = (
        (start // 60) << 8 | start % 60,
        (end // 60) << 8 | end % 60,
        (0xFF00 if on else 0) | days,
        power & 0xFFFF,
        soc,
        0,
    )
    regs_.update(dict(zip(range(47547, 47553), words, strict=True)))
    regs_[47000] = 3
    return regs_


@pytest.mark.parametrize(
    ("regs_", "mode", "power", "target"),
    [
        (settings(), "self_use", 0.0, None),
        (eco_group(settings(), -50, 80), "charge", 5000.0, 80.0),
        (eco_group(settings(), 30), "discharge", 3000.0, None),
        (eco_group(settings(), 0), "standby", 0.0, None),
        (eco_group(settings(), -50, start=13 * 60, end=14 * 60), "self_use", 0.0, None),
        (eco_group(settings(), -50, start=23 * 60, end=12 * 60 + 30), "charge", 5000.0, 100.0),
        (eco_group(settings(), -50, days=0x01), "self_use", 0.0, None),  # Sundays only
        (eco_group(settings(), -50, on=False), "self_use", 0.0, None),
        (settings(r47511=2, r47512=0), "hold", 0.0, None),
        (settings(r47511=2, r47512=2500), "charge", 2500.0, 100.0),
        (settings(r47511=12, r47512=4000), "discharge", 4000.0, None),
        (settings(r47511=8), "standby", 0.0, None),
        (eco_group(settings(r47511=8), -50), "standby", 0.0, None),  # EMS overrides the work mode
    ],
)
def test_firmware_behaviour_from_settings(
    regs_: dict[int, int], mode: str, power: float, target: float | None
) -> None:
    b = firmware_behaviour(regs_, NOON, 10000, eco_v2=True)
    assert (b.mode, b.power_w, b.target_soc) == (mode, power, target)
    assert b.floor_soc == 10.0
    assert b.export_limit_w == 10000.0


def test_export_limit_switch_and_floor_reach_the_behaviour() -> None:
    b = firmware_behaviour(settings(r47510=0, r45356=35), NOON, 10000, eco_v2=True)
    assert (b.export_limit_w, b.floor_soc) == (0.0, 35.0)
    assert firmware_behaviour(settings(r47509=0), NOON, 10000, eco_v2=True).export_limit_w == math.inf


def _site(**kwargs: object) -> EmulatedSite:
    cfg = EmulatedSiteConfig(battery=BatteryParams(capacity_kwh=10.0, min_soc_pct=10.0), **kwargs)  # type: ignore[arg-type]
    return EmulatedSite(cfg, solar_profile(peak_w=6000), household_profile(), START.replace(hour=0))


def test_a_day_of_physics_balances_energy_and_soc() -> None:
    site = _site(initial_soc_pct=30.0)
    e0 = site.e_kwh

    def behaviour(t: datetime) -> Behaviour:
        return (
            Behaviour("charge", 3000, 90, floor_soc=10) if t.hour < 4 else Behaviour("self_use", floor_soc=10)
        )

    site.advance(site.start + timedelta(days=1), behaviour)
    c = site.counters
    assert c.pv_kwh > 30
    assert c.load_kwh > 5
    assert c.import_kwh > 5
    assert c.export_kwh > 5
    assert math.isclose(
        c.pv_kwh + c.import_kwh + c.discharge_kwh, c.load_kwh + c.export_kwh + c.charge_kwh, rel_tol=1e-9
    )
    p = site.config.battery
    assert math.isclose(
        site.e_kwh - e0,
        c.charge_kwh * p.charge_efficiency - c.discharge_kwh / p.discharge_efficiency,
        abs_tol=1e-6,
    )


def test_grid_voltage_rises_with_export_and_falls_with_import() -> None:
    site = _site(grid_impedance_ohm=0.5)
    site.advance(START, lambda t: Behaviour("standby"))  # 10:00, PV above load, battery idle: export
    assert site.state.grid_w < -1000
    assert all(v > 230.5 for v in site.state.grid_v)
    night = _site()
    night.advance(START.replace(hour=1), lambda t: Behaviour("charge", 5000, 100))
    assert night.state.grid_w > 4000
    assert all(v < 229.0 for v in night.state.grid_v)


def test_series_profile_repeats_and_rejects_naive_start() -> None:
    profile = series_profile(START, 3600, [100.0, 200.0])
    assert [profile(START + timedelta(hours=h)) for h in range(4)] == [100.0, 200.0, 100.0, 200.0]
    with pytest.raises(ValueError, match="timezone-aware"):
        series_profile(datetime(2026, 1, 1), 60, [1.0])  # noqa: DTZ001


def test_bad_configuration_names_the_field() -> None:
    with pytest.raises(ValueError, match="phases"):
        EmulatedSiteConfig(phases=2)
    with pytest.raises(ValueError, match="tcp_port, udp_port"):
        GoodWeEmulator(tcp_port=None, udp_port=None)
    with pytest.raises(ValueError, match="drop_ratio"):
        Faults(drop_ratio=1.5)


async def test_writes_are_counted_logged_and_change_the_behaviour() -> None:
    async with running_emulator(udp_port=None) as emu:
        inv = await goodwe.connect("127.0.0.1", emu.tcp_port, family="ET", timeout=1, retries=0)
        await inv.set_operation_mode(goodwe.OperationMode.ECO_CHARGE, 40, 90)
        assert emu.behaviour.mode == "charge"
        assert emu.behaviour.power_w == 4000
        assert emu.behaviour.target_soc == 90
        assert emu.setting_writes["work_mode"] == 1
        assert emu.setting_writes["eco_mode_1"] == 1
        assert emu.register_writes[47547] == 1
        assert emu.register_writes[47552] == 1
        assert emu.writes_total == len(emu.write_log) == 6  # group, 3 switches, work mode, EMS reset
        assert [r.behaviour.mode for r in emu.mode_log] == ["self_use", "charge"]
        assert all(r.time.tzinfo is not None for r in emu.write_log)
        with pytest.raises(RequestRejectedException, match="ILLEGAL DATA VALUE"):
            await inv.write_setting("work_mode", 9)
        with pytest.raises(RequestRejectedException, match="ILLEGAL DATA ADDRESS"):
            await inv.write_setting("modbus.35182", 1)  # runtime registers are read-only
        assert emu.writes_total == 6


async def test_logs_keep_the_last_writes_and_changes_but_count_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulator, "LOG_KEEP", 4)
    async with running_emulator(udp_port=None) as emu:
        inv = await goodwe.connect("127.0.0.1", emu.tcp_port, family="ET", timeout=1, retries=0)
        for i in range(5):
            await inv.write_setting("battery_discharge_depth", 80 + i)
            await inv.write_setting("work_mode", 2 if i % 2 else 0)  # backup (charge), general
        assert emu.writes_total == 10
        assert [r.values for r in emu.write_log] == [(83,), (2,), (84,), (0,)]
        assert len(emu.mode_log) == 4


async def test_eco_v1_firmware() -> None:
    async with running_emulator(udp_port=None, eco_mode_v2=False) as emu:
        inv = await goodwe.connect("127.0.0.1", emu.tcp_port, family="ET", timeout=1, retries=0)
        assert not inv._has_eco_mode_v2
        await inv.set_operation_mode(goodwe.OperationMode.ECO_DISCHARGE, 25)
        assert emu.behaviour.mode == "discharge"
        assert emu.behaviour.power_w == 2500
        assert emu.register_writes[47515] == 1
        assert 47547 not in emu.register_writes


async def test_accelerated_clock_runs_the_physics_on_every_read() -> None:
    async with running_emulator(speed=3600.0, udp_port=None) as emu:
        inv = await goodwe.connect("127.0.0.1", emu.tcp_port, family="ET", timeout=1, retries=0)
        first = await inv.read_runtime_data()
        await asyncio.sleep(0.2)  # 12 simulated minutes
        second = await inv.read_runtime_data()
        assert second["timestamp"] - first["timestamp"] >= timedelta(minutes=10)
        assert second["e_total"] > first["e_total"]
        assert emu.counters.pv_kwh > 0.5


@pytest.mark.parametrize(
    ("transport", "faults", "name"),
    [
        ("udp", Faults(drop_ratio=1.0), "drop"),
        ("tcp", Faults(drop_ratio=1.0), "drop"),
        ("udp", Faults(bad_crc_ratio=1.0), "bad_crc"),
        ("udp", Faults(short_frame_ratio=1.0), "short_frame"),
        ("tcp", Faults(short_frame_ratio=1.0), "short_frame"),
        ("udp", Faults(late_ratio=1.0, late_s=0.3), "late"),
        ("tcp", Faults(exception_ratio=1.0), "exception"),
        ("udp", Faults(exception_ratio=1.0, exception_code=6), "exception"),
    ],
)
async def test_each_fault_makes_the_library_fail(transport: str, faults: Faults, name: str) -> None:
    async with running_emulator() as emu:
        protocol = UdpInverterProtocol if transport == "udp" else TcpInverterProtocol
        port = emu.udp_port if transport == "udp" else emu.tcp_port

        class Et(ET):  # type: ignore[misc]
            @staticmethod
            def _create_protocol(
                host: str, port: int, comm_addr: int, timeout: float, retries: int
            ) -> object:
                return protocol(host, port, comm_addr, timeout, retries)

        inv = Et("127.0.0.1", port, 0, 0.1, 0)
        await inv.read_device_info()
        emu.faults = faults
        with pytest.raises(LibraryInverterError):
            await inv.read_runtime_data()
        assert emu.faults_injected[name] >= 1
        emu.faults = Faults()
        assert (await inv.read_runtime_data())["battery_soc"] == 50


def test_profiles_are_deterministic_functions_of_time() -> None:
    pv, load = solar_profile(peak_w=4000), household_profile()
    t = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    assert pv(t) == pv(t)
    assert 3000 < pv(t) <= 4000
    assert pv(t.replace(hour=2)) == 0.0
    assert load(t.replace(hour=19)) > load(t.replace(hour=3))
