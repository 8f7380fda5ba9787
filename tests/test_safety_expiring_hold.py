"""Hold and idle that end by themselves on the GoodWe driver (``eco_window_min``), against the emulator.

The EMS modes that realise hold (charge_pv at 0 W) and idle (battery standby) have no end: an
inverter left in them by a daemon that died keeps its battery unused. With ``eco_window_min`` set
both are the eco group at 0 % for a window of the inverter's clock instead, renewed while the
daemon runs, after which the inverter works as in self-use. The real goodwe library talks to the
emulator here; the emulator's clock is advanced by hand.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support.config import FLAT_TARIFF
from support.eco_window import WRITE_DAY_TZ, driver, group
from support.sim_harness import Site, close_site, open_site

from controller.clock import VirtualClock
from controller.control.overrides import OverrideRequest
from controller.sim.emulator.server import GoodWeEmulator
from controller.sim.emulator.site import EmulatedSiteConfig
from drivers.inverter.goodwe_mapping import (
    EMS_AUTO,
    EMS_BATTERY_STANDBY,
    EMS_CHARGE_PV,
    WORK_ECO,
    Policy,
    target_for,
)
from drivers.inverter.types import Command, CommandKind

TZ = WRITE_DAY_TZ
START = datetime(2026, 6, 15, 10, 7, 30, tzinfo=TZ)
HOLD = Command(CommandKind.HOLD, min_soc=12)
IDLE = Command(CommandKind.IDLE, min_soc=12)
SURPLUS = (6000.0, 1000.0)  # pv, load (W)
DEFICIT = (0.0, 2000.0)


def flows(emulator: GoodWeEmulator, clock: VirtualClock, pv_w: float, load_w: float) -> tuple[float, float]:
    """Battery and grid power (W, + discharge / + import) a few minutes into constant PV and load."""
    emulator.set_profiles(pv=lambda _t: pv_w, load=lambda _t: load_w)
    clock.advance(180)
    state = emulator.advance()
    return round(state.battery_w), round(state.grid_w)


# --- the mapping -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [HOLD, IDLE], ids=["hold", "idle"])
def test_with_a_window_hold_and_idle_are_the_windowed_zero_group_not_an_ems_mode(command: Command) -> None:
    at = START.replace(tzinfo=None)
    policy = Policy(10000, 10000, 12, 11, ems_supported=True, eco_window_min=30, inverter_now=at)
    target = target_for(command, policy)
    assert (target.work_mode, target.eco_power, target.ems_mode) == (WORK_ECO, 0, EMS_AUTO)
    assert target.eco_window == (607, 637)
    without = target_for(command, replace(policy, eco_window_min=None))
    wanted = EMS_CHARGE_PV if command.kind is CommandKind.HOLD else EMS_BATTERY_STANDBY
    assert (without.ems_mode, without.eco_power, without.eco_window) == (wanted, None, None)


# --- the driver against the emulator -------------------------------------------------------------------


@pytest.mark.parametrize("command", [HOLD, IDLE], ids=["hold", "idle"])
async def test_hold_and_idle_are_renewed_and_run_out_to_self_use(command: Command) -> None:
    clock = VirtualClock(START)
    async with GoodWeEmulator(clock=clock, tcp_port=0, site=EmulatedSiteConfig(tz=TZ)) as emulator:
        inverter = driver(emulator, clock)
        await inverter.read()  # the daemon reads before it commands: the inverter's clock is known
        applied = await inverter.apply(command)
        assert applied.ok, applied.mismatches
        assert emulator.settings[47511] == EMS_AUTO
        assert (group(emulator).start_min, group(emulator).end_min) == (607, 637)
        assert emulator.behaviour.mode == "standby"
        changes = len(emulator.mode_log)
        # the battery neither stores a surplus nor covers a deficit
        assert flows(emulator, clock, *SURPLUS) == (0, -5000)
        assert flows(emulator, clock, *DEFICIT) == (0, 2000)
        # 16 minutes in, less than half the window is left: written again from the inverter's minute
        clock.advance(16 * 60 - 360)
        await inverter.read()
        assert inverter.renew_due
        assert (await inverter.apply(command)).ok
        assert (group(emulator).start_min, group(emulator).end_min) == (623, 653)
        assert not inverter.renew_due
        assert emulator.setting_writes["eco_mode_1"] == 2
        assert emulator.mode_log[changes:] == []  # standby throughout, the renewal included
        # nobody renews it: the inverter works as in self-use once the window has passed
        clock.advance(31 * 60)
        emulator.advance()
        clock.advance(60)  # the physics step that began inside the window has ended
        emulator.advance()
        assert emulator.behaviour.mode == "self_use"
        assert emulator.behaviour.source == "eco (no active group)"
        assert flows(emulator, clock, *DEFICIT) == (2000, 0)
        fresh = driver(emulator, clock)  # the daemon starting again reads self-use
        assert await fresh.current_command() == Command(CommandKind.SELF_USE, min_soc=12.0)
        await inverter.close()
        await fresh.close()


async def test_an_ems_hold_left_by_a_run_without_the_window_is_replaced_by_the_windowed_group() -> None:
    clock = VirtualClock(START)
    async with GoodWeEmulator(clock=clock, tcp_port=0, site=EmulatedSiteConfig(tz=TZ)) as emulator:
        before = driver(emulator, clock, window=None)
        assert (await before.apply(HOLD)).ok
        assert (emulator.settings[47511], emulator.behaviour.mode) == (EMS_CHARGE_PV, "hold")
        await before.close()
        inverter = driver(emulator, clock)
        assert (await inverter.apply(HOLD)).ok
        assert emulator.settings[47511] == EMS_AUTO
        assert emulator.behaviour.mode == "standby"
        assert emulator.behaviour.source == "eco group 1"
        await inverter.close()


async def test_idle_by_the_windowed_group_moves_the_same_energy_as_ems_standby() -> None:
    measured: dict[int | None, list[tuple[float, float]]] = {}
    for window in (None, 30):
        clock = VirtualClock(START)
        async with GoodWeEmulator(clock=clock, tcp_port=0, site=EmulatedSiteConfig(tz=TZ)) as emulator:
            inverter = driver(emulator, clock, window)
            await inverter.read()
            assert (await inverter.apply(IDLE)).ok
            measured[window] = [flows(emulator, clock, *case) for case in (SURPLUS, DEFICIT)]
            await inverter.close()
    assert measured[None] == measured[30] == [(0, -5000), (0, 2000)]


# --- the daemon keeps a hold alive, and a crash lets it run out -------------------------------------------

BODY = (
    """
[site]
id = "expiring-hold"
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 120
plan_interval_min = 60
publish_interval_s = 300
[executor]
min_dwell_s = 0
"""
    + FLAT_TARIFF
)


async def test_the_daemon_renews_a_hold_and_after_a_crash_it_ends_within_the_window(tmp_path: Path) -> None:
    site = await open_site(tmp_path, START, BODY, initial_soc_pct=60, inverter="eco_window_min = 30")
    try:
        override = OverrideRequest("hold", "test", timedelta(hours=3))
        await site.app.parts.data.save_override(override.record(site.clock.now()))
        modes: list[str] = []

        async def watch(s: Site) -> None:
            s.emulator.advance()
            modes.append(s.emulator.behaviour.mode)

        await site.run(timedelta(hours=2), during=watch, jobs=("poll",))
        assert not site.failures
        assert set(modes) == {"standby"}  # every poll of two hours
        assert site.emulator.settings[47511] == EMS_AUTO
        renewals = site.emulator.setting_writes["eco_mode_1"]
        assert 7 <= renewals <= 10  # one to start, then one per half window
        minutes = 0  # no more ticks from here: the daemon is gone
        while site.emulator.behaviour.mode == "standby" and minutes < 120:
            await site.true_clock.sleep(60)
            site.emulator.advance()
            minutes += 1
        assert site.emulator.behaviour.mode == "self_use"
        assert minutes <= 31
    finally:
        await close_site(site)
