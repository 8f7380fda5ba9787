"""An inverter that does not do what it is told (controller.control.response): the GoodWe emulator
accepts every setting and keeps its battery in self-use. The daemon notices within the configured
readings, commands again, falls back to self-use with the inverter marked unreliable (events,
health), tries again after the retry time and clears the mark once the battery follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from support.config import FLAT_TARIFF
from support.sim_harness import Site, close_site, open_site

from controller.config.models import ExecutorConfig
from controller.control.overrides import OverrideRequest
from controller.control.response import ResponseMonitor, shortfall_w
from drivers.inverter.types import Command, CommandKind, Snapshot

TZ = ZoneInfo("Europe/Warsaw")
START = datetime(2026, 1, 14, 1, 0, tzinfo=TZ)  # a winter night: no PV, the house draws from the battery
READINGS = 3
BODY = (
    f"""
[site]
id = "ignoring"
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 30
plan_interval_min = 60
publish_interval_s = 300
[executor]
min_dwell_s = 0
response_readings = {READINGS}
response_tolerance_w = 400
response_retry_min = 10
"""
    + FLAT_TARIFF
)
T0 = datetime(2026, 1, 14, 0, 0, tzinfo=UTC)


def _reading(at_s: int, battery_w: float, soc: float = 50.0) -> Snapshot:
    return Snapshot(T0 + timedelta(seconds=at_s), 0.0, 500.0, 0.0, battery_w, soc)


def test_only_forced_commands_short_of_their_target_are_judged() -> None:
    charge = Command(CommandKind.CHARGE, power_w=3000.0, target_soc=90.0)
    assert shortfall_w(charge, _reading(1, -2900.0)) == 100.0
    assert shortfall_w(charge, _reading(1, 500.0)) == 3000.0
    assert shortfall_w(charge, _reading(1, 500.0, soc=89.5)) is None  # at its target it may stop
    discharge = Command(CommandKind.DISCHARGE, power_w=2000.0, target_soc=20.0, min_soc=15.0)
    assert shortfall_w(discharge, _reading(1, -100.0)) == 2000.0
    assert shortfall_w(discharge, _reading(1, 100.0, soc=20.5)) is None
    assert shortfall_w(Command(CommandKind.SELF_USE), _reading(1, 0.0)) == 0.0


def test_a_hold_is_missed_by_a_discharge_and_an_idle_battery_by_any_flow() -> None:
    hold = Command(CommandKind.HOLD, min_soc=15.0)
    assert shortfall_w(hold, _reading(1, 800.0)) == 800.0
    assert shortfall_w(hold, _reading(1, -2000.0)) == 0.0  # storing a PV surplus is holding
    idle = Command(CommandKind.IDLE, min_soc=15.0)
    assert shortfall_w(idle, _reading(1, 800.0)) == 800.0
    assert shortfall_w(idle, _reading(1, -600.0)) == 600.0
    assert shortfall_w(idle, _reading(1, -600.0, soc=15.5)) is None  # a charge the BMS asks for at the floor


def _flows(battery_w: float, grid_w: float, soc: float = 50.0) -> Snapshot:
    return Snapshot(T0, 1000.0, 1000.0 + battery_w + grid_w, grid_w, battery_w, soc)


def test_self_use_is_missed_by_a_battery_charging_from_or_discharging_into_the_grid() -> None:
    self_use = Command(CommandKind.SELF_USE, min_soc=15.0)
    assert shortfall_w(self_use, _flows(-3000.0, 3500.0)) == 3000.0  # still charging from the grid
    assert shortfall_w(self_use, _flows(2500.0, -3000.0)) == 2500.0  # still discharging into the grid
    assert shortfall_w(self_use, _flows(-2000.0, -500.0)) == 0.0  # a PV surplus stored, the rest exported
    assert shortfall_w(self_use, _flows(4000.0, 800.0)) == 0.0  # a deficit beyond the battery's power
    assert shortfall_w(self_use, _flows(-3000.0, 3500.0, soc=15.5)) == 0.0  # the BMS charging at the floor


def test_the_counts_escalate_and_recover() -> None:
    config = ExecutorConfig(response_readings=2, response_tolerance_w=300.0, response_retry_min=5)
    charge = Command(CommandKind.CHARGE, power_w=3000.0, target_soc=90.0)
    monitor = ResponseMonitor()
    verdicts = [
        monitor.observe(charge, T0, _reading(10 * i, 400.0), T0 + timedelta(seconds=10 * i), config).action
        for i in range(1, 6)
    ]
    assert verdicts == ["", "recommand", "", "fallback", ""]
    assert monitor.problem is not None
    assert "commanded charge 3000 W, the battery does +400 W" in monitor.problem
    assert monitor.holding_off(T0 + timedelta(minutes=4))
    assert not monitor.holding_off(T0 + timedelta(minutes=6))
    # a reading at or before the command's start proves nothing; a new kind starts the counts again
    assert monitor.observe(charge, T0 + timedelta(hours=1), _reading(60, 400.0), T0, config).action == ""
    self_use = Command(CommandKind.SELF_USE)
    assert monitor.observe(self_use, T0, _reading(70, 400.0), T0, config).action == ""
    followed = [
        monitor.observe(charge, T0, _reading(100 + i, -2900.0), T0 + timedelta(minutes=10), config).action
        for i in range(2)
    ]
    assert followed == ["", "recovered"]
    assert (monitor.problem, monitor.retry_at) == (None, None)


async def _kinds(site: Site) -> list[str]:
    events = await site.app.parts.data.events(limit=500)
    return [e.kind for e in sorted(events, key=lambda e: e.time) if e.kind.startswith("inverter.")]


async def test_an_inverter_that_ignores_its_commands_is_noticed_and_left_in_self_use(tmp_path: Path) -> None:
    site = await open_site(tmp_path, START, BODY, initial_soc_pct=30)
    site.emulator.faults.ignore_commands = True
    control, data = site.app.parts.control, site.app.parts.data
    override = OverrideRequest("force_charge", "test", timedelta(hours=6), power_w=3000, soc_pct=95)
    await data.save_override(override.record(site.clock.now()))
    jobs = ("poll", "plan")
    try:
        # the override's command goes out on the first poll; each later poll is a reading against it
        await site.run(timedelta(seconds=30 * (READINGS + 1)), jobs=jobs)
        assert control.state.command is not None
        assert control.state.command.kind is CommandKind.CHARGE
        assert "inverter.unresponsive" in await _kinds(site)
        assert control.response.problem is None  # commanded again, not yet given up
        await site.run(timedelta(seconds=30 * READINGS), jobs=jobs)
        assert "inverter.unreliable" in await _kinds(site)
        assert control.state.command is not None
        assert control.state.command.kind is CommandKind.SELF_USE
        assert site.emulator.behaviour.mode == "self_use"
        health = await site.app.health(site.clock.now())
        assert health.inverter_unresponsive is not None
        assert "commanded charge 3000 W" in health.inverter_unresponsive
        assert health.last_error is not None
        assert health.last_error.startswith("inverter does not follow commands")
        # it stays in self-use until the retry time, then is tried again; now it follows
        site.emulator.faults.ignore_commands = False
        await site.run(timedelta(minutes=9), jobs=jobs)
        assert control.state.command is not None
        assert control.state.command.kind is CommandKind.SELF_USE
        await site.run(timedelta(minutes=1) + timedelta(seconds=30 * (READINGS + 1)), jobs=jobs)
        assert control.state.command is not None
        assert control.state.command.kind is CommandKind.CHARGE
        assert site.emulator.behaviour.mode == "charge"
        assert (await _kinds(site))[-1] == "inverter.recovered"
        assert (await site.app.health(site.clock.now())).inverter_unresponsive is None
        assert not site.failures, site.failures[:3]
    finally:
        await close_site(site)


async def test_an_inverter_that_discharges_through_a_hold_is_noticed_and_left_in_self_use(
    tmp_path: Path,
) -> None:
    site = await open_site(tmp_path, START, BODY, initial_soc_pct=60)
    site.emulator.faults.ignore_commands = True
    site.emulator.set_profiles(load=lambda _t: 1500.0)  # the house draws: self-use discharges
    control, data = site.app.parts.control, site.app.parts.data
    override = OverrideRequest("hold", "test", timedelta(hours=6))
    await data.save_override(override.record(site.clock.now()))
    try:
        await site.run(timedelta(seconds=30 * (2 * READINGS + 1)), jobs=("poll",))
        kinds = await _kinds(site)
        assert kinds.index("inverter.unresponsive") < kinds.index("inverter.unreliable")
        assert control.state.command is not None
        assert control.state.command.kind is CommandKind.SELF_USE
        health = await site.app.health(site.clock.now())
        assert health.inverter_unresponsive is not None
        assert health.inverter_unresponsive.startswith("commanded hold, the battery does +1500 W")
        assert not site.failures, site.failures[:3]
    finally:
        await close_site(site)


async def test_an_inverter_stuck_charging_in_self_use_is_noticed(tmp_path: Path) -> None:
    site = await open_site(tmp_path, START, BODY, initial_soc_pct=40)
    control = site.app.parts.control
    try:
        await site.run(timedelta(seconds=30), jobs=("poll",))
        assert control.state.command is not None
        assert control.state.command.kind is CommandKind.SELF_USE  # flat prices at night
        site.emulator.faults.stuck_charge_w = 3000.0  # settings of self-use, a battery charging from the grid
        await site.run(timedelta(seconds=30 * (2 * READINGS + 1)), jobs=("poll",))
        kinds = await _kinds(site)
        assert kinds.index("inverter.unresponsive") < kinds.index("inverter.unreliable")
        health = await site.app.health(site.clock.now())
        assert health.inverter_unresponsive is not None
        assert health.inverter_unresponsive.startswith("commanded self_use, the battery does -3000 W")
        assert not site.failures, site.failures[:3]
    finally:
        await close_site(site)
