"""Self-expiring forced modes on the GoodWe driver (``eco_window_min``), against the emulator.

With the option set, force charge / discharge are an eco-mode group covering only the next
``eco_window_min`` minutes of the inverter's own clock. While the daemon runs the group is
written again before it ends (half the window left), so the battery never notices; when the
daemon dies the group ends and the inverter, in eco mode without an active group, works as in
self-use. The writes this costs are counted here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.config import FLAT_TARIFF
from support.eco_window import WRITE_DAY_TZ, driver, group
from support.sim_harness import Site, close_site, open_site

from controller.clock import VirtualClock
from controller.control.overrides import OverrideRequest
from controller.sim.emulator.server import GoodWeEmulator
from controller.sim.emulator.site import EmulatedSiteConfig
from drivers.inverter.goodwe_mapping import (
    ALL_DAYS,
    EcoSlot,
    EtSettings,
    Policy,
    StepKind,
    command_from_settings,
    plan,
    target_for,
)
from drivers.inverter.types import Command, CommandKind

TZ = WRITE_DAY_TZ
CHARGE = Command(CommandKind.CHARGE, 3000, 90, min_soc=12)


# --- the mapping -------------------------------------------------------------------------------------

POLICY = Policy(10000, 10000, 12, 11, ems_supported=True, eco_window_min=30)


def inverter_clock(hour: int, minute: int, second: int = 0) -> datetime:
    """The inverter's own clock, naive local time as its runtime timestamp gives it."""
    return datetime(2026, 6, 15, hour, minute, second, tzinfo=TZ).replace(tzinfo=None)


def settings_with(slot: EcoSlot | None) -> EtSettings:
    return EtSettings(3, slot, (False, False, False), 1, 0, True, 10000, 12)


def test_a_windowed_target_covers_the_next_minutes_never_past_midnight() -> None:
    at = inverter_clock(10, 7, 45)
    target = target_for(CHARGE, replace(POLICY, inverter_now=at))
    assert target.eco_window == (607, 637)
    late = target_for(CHARGE, replace(POLICY, inverter_now=at.replace(hour=23, minute=50)))
    assert late.eco_window == (23 * 60 + 50, 23 * 60 + 59)
    hold = target_for(Command(CommandKind.HOLD), replace(POLICY, inverter_now=at))
    assert hold.eco_window == (607, 637)  # the EMS modes have no end: hold is the windowed 0 % group
    assert target_for(CHARGE, POLICY).eco_window is None  # clock unknown: the all-day group


@pytest.mark.parametrize(
    ("window", "minute", "writes"),
    [
        ((600, 630), 605, False),  # 25 minutes left: nothing to write
        ((600, 630), 616, True),  # 14 left, less than half the window: renewed
        ((600, 630), 631, True),  # ended: written again
        ((1420, 1439), 1430, False),  # runs to 23:59 already: a new write would not reach further
        ((0, 30), 5, False),  # just after midnight
    ],
)
def test_a_group_is_renewed_when_less_than_half_is_left(
    window: tuple[int, int], minute: int, writes: bool
) -> None:
    slot = EcoSlot(window[0] // 60, window[0] % 60, window[1] // 60, window[1] % 60, True, ALL_DAYS, -30, 90)
    now = inverter_clock(0, 0) + timedelta(minutes=minute)
    policy = Policy(10000, 10000, 12, 11, ems_supported=True, eco_window_min=30, inverter_now=now)
    steps = plan(settings_with(slot), target_for(CHARGE, policy), eco_v2=True)
    assert (StepKind.ECO_GROUP in [s.kind for s in steps]) is writes


def test_a_window_that_has_passed_reads_back_as_self_use() -> None:
    slot = EcoSlot(10, 0, 10, 30, True, ALL_DAYS, -30, 90)
    inside = Policy(10000, 10000, 12, 11, True, inverter_now=inverter_clock(10, 15))
    after = Policy(10000, 10000, 12, 11, True, inverter_now=inverter_clock(10, 31))
    unknown = Policy(10000, 10000, 12, 11, True)
    command = command_from_settings(settings_with(slot), inside)
    assert command is not None
    assert command.kind is CommandKind.CHARGE
    passed = command_from_settings(settings_with(slot), after)
    assert passed is not None
    assert passed.kind is CommandKind.SELF_USE
    assert command_from_settings(settings_with(slot), unknown) is None


# --- the driver against the emulator ------------------------------------------------------------------


@pytest.mark.parametrize("inverter_tz", [TZ, UTC], ids=["same-zone", "inverter-on-utc"])
async def test_the_inverter_returns_to_self_use_by_itself_on_its_own_clock(inverter_tz: ZoneInfo) -> None:
    clock = VirtualClock(datetime(2026, 6, 15, 10, 7, 30, tzinfo=TZ))
    async with GoodWeEmulator(clock=clock, tcp_port=0, site=EmulatedSiteConfig(tz=inverter_tz)) as emulator:
        inverter = driver(emulator, clock)
        applied = await inverter.apply(CHARGE)
        assert applied.ok, applied.mismatches
        local = clock.now().astimezone(inverter_tz)  # the window is on the inverter's clock, not ours
        start = local.hour * 60 + local.minute
        assert (group(emulator).start_min, group(emulator).end_min) == (start, start + 30)
        assert emulator.behaviour.mode == "charge"
        assert await inverter.current_command() == CHARGE
        # nobody renews it: 30 minutes later the inverter works as in self-use
        clock.advance(31 * 60)
        emulator.advance()
        clock.advance(60)
        emulator.advance()
        assert emulator.behaviour.mode == "self_use"
        assert emulator.behaviour.source == "eco (no active group)"
        fresh = driver(emulator, clock)  # e.g. the daemon starting again
        command = await fresh.current_command()
        assert command is not None
        assert command.kind is CommandKind.SELF_USE
        await inverter.close()
        await fresh.close()


async def test_without_the_option_the_groups_run_all_day() -> None:
    clock = VirtualClock(datetime(2026, 6, 15, 10, 7, 30, tzinfo=TZ))
    async with GoodWeEmulator(clock=clock, tcp_port=0, site=EmulatedSiteConfig(tz=TZ)) as emulator:
        inverter = driver(emulator, clock, window=None)
        await inverter.apply(CHARGE)
        assert (group(emulator).start_min, group(emulator).end_min) == (0, 23 * 60 + 59)
        assert not inverter.renew_due
        await inverter.close()


# --- the daemon keeps the window alive, and a crash lets it run out --------------------------------------

BODY = (
    """
[site]
id = "expiring"
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


async def hold_charge(
    tmp_path: Path, start: datetime, hours: float
) -> tuple[Site, list[tuple[datetime, str]]]:
    site = await open_site(tmp_path, start, BODY, initial_soc_pct=20, inverter="eco_window_min = 30")
    override = OverrideRequest("force_charge", "test", timedelta(hours=hours + 1), power_w=2000, soc_pct=95)
    await site.app.parts.data.save_override(override.record(site.clock.now()))
    modes: list[tuple[datetime, str]] = []

    async def watch(s: Site) -> None:
        s.emulator.advance()
        modes.append((s.true_clock.now(), s.emulator.behaviour.mode))

    await site.run(timedelta(hours=hours), during=watch, jobs=("poll",))
    return site, modes


async def test_the_daemon_renews_the_window_so_the_charge_never_lapses(tmp_path: Path) -> None:
    start = datetime(2026, 6, 15, 9, 0, tzinfo=TZ)
    site, modes = await hold_charge(tmp_path, start, hours=3)
    try:
        assert not site.failures
        assert {mode for _, mode in modes} == {"charge"}  # every minute of three hours
        group_writes = [w for w in site.emulator.write_log if w.setting == "eco_mode_1"]
        # one write to start, then one per half window (15 min): 3 h -> 12 more, nothing else
        assert 11 <= len(group_writes) <= 14, [w.time.isoformat() for w in group_writes]
        assert site.emulator.writes_total <= len(group_writes) + 4
    finally:
        await close_site(site)


async def test_across_midnight_the_window_is_cut_at_23_59_and_written_again_after(tmp_path: Path) -> None:
    start = datetime(2026, 6, 15, 23, 0, tzinfo=TZ)
    site, modes = await hold_charge(tmp_path, start, hours=2)
    try:
        assert not site.failures
        lapsed = [t for t, mode in modes if mode != "charge"]
        assert len(lapsed) <= 1, lapsed  # at most from 00:00 to the next poll
        assert all(
            w.values[0] >> 8 <= w.values[1] >> 8 for w in site.emulator.write_log if w.setting == "eco_mode_1"
        )
    finally:
        await close_site(site)


async def test_after_a_crash_the_charge_ends_by_itself_within_the_window(tmp_path: Path) -> None:
    start = datetime(2026, 6, 15, 9, 0, tzinfo=TZ)
    site, _ = await hold_charge(tmp_path, start, hours=1)
    try:
        assert site.emulator.behaviour.mode == "charge"
        crashed_at = site.true_clock.now()  # no more ticks from here: the daemon is gone
        minutes = 0
        while site.emulator.behaviour.mode == "charge" and minutes < 120:
            await site.true_clock.sleep(60)
            site.emulator.advance()
            minutes += 1
        assert site.emulator.behaviour.mode == "self_use"
        assert minutes <= 31, f"self-use {minutes} min after the crash at {crashed_at}"
    finally:
        await close_site(site)
