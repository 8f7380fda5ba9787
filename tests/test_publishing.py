"""Commands from Home Assistant applied to a running application (emulated inverter, static tariff).

The commands go straight to ``Publisher.handle``, the MQTT client's callback; the broker round
trip is covered by test_daemon_mqtt.py.
"""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.config import FLAT_TARIFF
from support.frontends import publisher_of

from controller.clock import SystemClock
from controller.config.loading import load_config
from controller.control.commands import (
    CancelOverrideCommand,
    CommandRejectedError,
    ControlMode,
    ModeCommand,
    NumberCommand,
    NumberSetting,
    OverrideCommand,
    ReplanCommand,
)
from controller.control.overrides import DEFAULT_DURATION, active
from controller.daemon.app import HemsdApp
from controller.daemon.wiring import create_application
from controller.frontends.homeassistant.publisher import mode_in_force, override_state
from controller.status.report import action_state
from drivers.inverter.types import CommandKind

CONFIG = (
    """
[site]
id = "pub"
[inverter]
type = "emulator"
[battery]
min_soc_pct = 20
max_soc_pct = 90
capacity_kwh = {capacity}
[storage]
state_dir = "{state}"
"""
    + FLAT_TARIFF
)


def write_config(path: Path, capacity: float = 10.0) -> None:
    path.write_text(CONFIG.format(state=path.parent / "state", capacity=capacity), encoding="utf-8")


async def started(path: Path) -> HemsdApp:
    app = create_application(load_config(path), SystemClock(), path)
    await app.start()
    return app


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[HemsdApp]:
    path = tmp_path / "hemsd.toml"
    write_config(path)
    application = await started(path)
    try:
        yield application
    finally:
        await application.stop()


def now(app: HemsdApp):  # type: ignore[no-untyped-def]
    return app.clock.now()


async def test_the_mode_select_starts_and_ends_overrides(app: HemsdApp) -> None:
    data, battery = app.parts.data, app.config.battery
    await publisher_of(app).handle(ModeCommand(ControlMode.SELF_USE, now(app)))
    await publisher_of(app).handle(ModeCommand(ControlMode.FORCE_CHARGE, now(app)))
    records = await data.overrides()
    forced = active(records, now(app))
    assert forced is not None
    assert (forced.mode, forced.source) == ("force_charge", "mqtt")
    assert (forced.power_w, forced.soc_pct) == (battery.max_charge_w, battery.max_soc_pct)
    assert forced.expires_at is not None
    assert forced.expires_at - forced.created_at == DEFAULT_DURATION

    await app.poll()  # the next tick follows the override
    decision = app.parts.control.last_decision
    assert decision is not None
    assert decision.command.kind is CommandKind.CHARGE
    state = action_state(decision, None, None)
    assert (state.action, state.source) == ("charge", "override")

    assert mode_in_force(forced, decision) == "force_charge"
    assert override_state(forced, decision).in_force

    # cancel ends every override: the self-use one set before must not come back
    await publisher_of(app).handle(CancelOverrideCommand(now(app)))
    assert active(await data.overrides(), now(app)) is None
    assert mode_in_force(None, decision) == "auto"
    assert override_state(None, decision).command == ""

    await publisher_of(app).handle(ModeCommand(ControlMode.FORCE_DISCHARGE, now(app)))
    discharge = active(await data.overrides(), now(app))
    assert discharge is not None
    assert (discharge.power_w, discharge.soc_pct) == (battery.max_discharge_w, battery.min_soc_pct)

    await publisher_of(app).handle(ModeCommand(ControlMode.AUTO, now(app)))
    records = await data.overrides()
    assert active(records, now(app)) is None
    assert all(r.cancelled_at is not None for r in records)
    with pytest.raises(CommandRejectedError, match="no override to cancel"):
        await publisher_of(app).handle(CancelOverrideCommand(now(app)))
    events = await data.events(kinds=["mqtt.command"])
    assert len(events) == 5


async def test_the_mode_select_shows_what_the_guard_lets_through(app: HemsdApp) -> None:
    """A grid charge above the price cap is refused: the select shows what the inverter does instead."""
    await app.commands.apply(NumberCommand(NumberSetting.PRICE_CAP, 0.1, now(app)), "mqtt")
    await publisher_of(app).handle(ModeCommand(ControlMode.FORCE_CHARGE, now(app)))
    record = active(await app.parts.data.overrides(), now(app))
    assert record is not None
    assert mode_in_force(record, app.last_decision) == "force_charge"  # not yet seen by the loop
    await app.poll()
    decision = app.last_decision
    assert decision is not None
    assert action_state(decision, None, None).source == "guard"
    shown = mode_in_force(record, decision)
    print("mode select while refused:", shown, "inverter:", decision.command.kind.value)
    assert shown != "force_charge"
    assert not override_state(record, decision).in_force


async def test_an_override_command_keeps_its_expiry(app: HemsdApp) -> None:
    at = now(app)
    expires = at + timedelta(minutes=45)
    await app.commands.apply(OverrideCommand(ControlMode.HOLD, expires, None, None, at), "mqtt")
    (record,) = await app.parts.data.overrides()
    assert record.mode == "hold"
    assert record.expires_at is not None
    assert abs(record.expires_at - expires) < timedelta(milliseconds=1)  # storage keeps milliseconds
    await app.poll()
    decision = app.parts.control.last_decision
    assert decision is not None
    assert decision.command.kind is CommandKind.HOLD


async def test_numbers_change_the_running_config_and_persist(tmp_path: Path) -> None:
    path = tmp_path / "hemsd.toml"
    write_config(path)
    app = await started(path)
    try:
        data = app.parts.data
        await publisher_of(app).handle(NumberCommand(NumberSetting.MAX_GRID_CHARGE_W, 2500.0, now(app)))
        await publisher_of(app).handle(NumberCommand(NumberSetting.PRICE_CAP, 0.45, now(app)))
        assert app.config.battery.max_charge_w == 2500.0
        assert app.parts.control.config.executor.grid_charge_price_cap == 0.45
        assert app.plan_trigger == "mqtt"
        newest = (await data.config_versions(limit=1))[0]
        assert newest.source == "mqtt"
        recorded = tomllib.loads(newest.text)
        assert recorded["battery"]["max_charge_w"] == 2500.0
        assert recorded["executor"]["grid_charge_price_cap"] == 0.45
        assert recorded["prices"] == tomllib.loads(path.read_text())["prices"]

        await publisher_of(app).handle(ModeCommand(ControlMode.FORCE_CHARGE, now(app)))
        forced = active(await data.overrides(), now(app))
        assert forced is not None
        assert forced.power_w == 2500.0  # the max grid-charge number

        before = (app.config, await data.config_versions(), await data.events())
        with pytest.raises(CommandRejectedError) as raised:
            await publisher_of(app).handle(NumberCommand(NumberSetting.MIN_SOC, 95.0, now(app)))
        assert raised.value.field == "min_soc"
        assert "max_soc_pct" in raised.value.reason
        assert (app.config, await data.config_versions(), await data.events()) == before

        write_config(path, capacity=12.0)  # a file reload keeps the overlay
        versions = len(await data.config_versions(limit=10_000))
        await app.reconfigure(load_config(path))
        assert (app.config.battery.capacity_kwh, app.config.battery.max_charge_w) == (12.0, 2500.0)
        history = await data.config_versions(limit=10_000)
        assert len(history) == versions + 1  # one reload, one version: the file with the overlay
        assert history[0].source == "file"
        in_force = tomllib.loads(history[0].text)["battery"]
        assert (in_force["capacity_kwh"], in_force["max_charge_w"]) == (12.0, 2500.0)
        await app.reconfigure(load_config(path))  # the same file again: nothing new
        assert len(await data.config_versions(limit=10_000)) == versions + 1
    finally:
        await app.stop()

    restarted = await started(path)  # and so does a restart
    try:
        assert restarted.config.battery.max_charge_w == 2500.0
        assert restarted.config.executor.grid_charge_price_cap == 0.45
        await publisher_of(restarted).handle(
            NumberCommand(NumberSetting.MAX_GRID_CHARGE_W, 0.0, now(restarted))
        )
        with pytest.raises(CommandRejectedError, match="power_w is required"):
            await publisher_of(restarted).handle(ModeCommand(ControlMode.FORCE_CHARGE, now(restarted)))
    finally:
        await restarted.stop()


async def test_the_replan_button_plans_now(app: HemsdApp) -> None:
    first = app.plan
    await publisher_of(app).handle(ReplanCommand(now(app)))
    assert app.plan is not None
    assert app.plan is not first
    assert app.plan_trigger == "mqtt"
    stored = await app.parts.data.latest_plan()
    assert stored is not None
    assert stored.trigger == "mqtt"


async def test_a_command_that_cannot_be_stored_is_rejected_and_changes_nothing(app: HemsdApp) -> None:
    data = app.parts.data
    before = app.config
    for _ in range(data.breaker.failure_threshold):  # SQLite keeps failing: its circuit opens
        data.breaker.failure("disk I/O error")
    for command in (
        NumberCommand(NumberSetting.MIN_SOC, 30.0, now(app)),
        ModeCommand(ControlMode.FORCE_CHARGE, now(app)),
    ):
        with pytest.raises(CommandRejectedError) as raised:
            await app.commands.apply(command, "mqtt")
        assert raised.value.field == "storage"
        assert "disk I/O error" in raised.value.reason
    assert app.config is before
    assert app.settings.entries == {}
    for _ in range(100):  # the circuit half-opens after its reset time (1 s)
        if data.breaker.allow():
            break
        await asyncio.sleep(0.05)
    assert await data.overrides() == []
    assert await data.get_state("runtime_settings") is None


async def test_a_flood_of_commands_is_rate_limited_and_keeps_the_database_small(tmp_path: Path) -> None:
    path = tmp_path / "hemsd.toml"
    write_config(path)
    app = await started(path)
    try:
        data = app.parts.data
        versions_before = len(await data.config_versions(limit=10_000))
        accepted, refused = 0, []
        for i in range(1000):
            command = NumberCommand(NumberSetting.MIN_SOC, 20.0 + i % 2, now(app))
            try:
                await publisher_of(app).handle(command)
                accepted += 1
            except CommandRejectedError as error:
                refused.append(error.field)
        assert accepted <= 25  # the burst, and what a minute of test time refills
        assert refused == ["rate"] * (1000 - accepted)
        assert len(await data.config_versions(limit=10_000)) - versions_before == accepted
    finally:
        await app.stop()
