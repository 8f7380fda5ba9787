"""Control commands applied to the running daemon: one path for MQTT and for the HTTP API.

Both front ends validate with :func:`controller.control.commands.parse_command` (the HTTP API
turns its JSON bodies into the same payloads) against the same :func:`control_limits`, and apply
the typed command here, so a command means the same from Home Assistant and from the web page.
The applier acts on a :class:`CommandTarget` (the application, which owns it).

Overrides are rows in storage (``controller.control.overrides``) that the control loop reads on every
tick; numbers change the runtime overlay on the file configuration
(``controller.control.settings``). A command that does not fit raises CommandRejectedError and
nothing changes, also when storage fails before the change is stored. Each accepted command is
recorded as an event ``<source>.command``; each accepted number also as a configuration version
(source ``mqtt`` or ``http``), and it triggers a re-plan. Goals (an SoC target, a backup reserve)
are stored with the data manager (``controller.control.goals``) and re-plan too, and so are the
loads' requirements (``controller.control.load_goals``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from controller.clock import Clock
from controller.config.models import GOODWE_MIN_FLOOR_PCT, HemsdConfig
from controller.control import goals, load_goals
from controller.control.commands import (
    CancelGoalCommand,
    CancelLoadGoalCommand,
    CancelOverrideCommand,
    CommandRejectedError,
    ControlCommand,
    ControlLimits,
    ControlMode,
    GoalReserveCommand,
    GoalTargetCommand,
    LoadGoalCommand,
    ModeCommand,
    NumberCommand,
    OverrideCommand,
    ReplanCommand,
)
from controller.control.overrides import (
    DEFAULT_DURATION,
    MAX_DURATION,
    OverrideError,
    OverrideRequest,
    running,
)
from controller.control.settings import RuntimeSettings
from storage import StorageError
from storage.datamanager import DataManager
from storage.records import EventRecord

log = logging.getLogger(__name__)

COMMAND_BURST = 20  # commands at once, and a minute, from MQTT and HTTP together

FORCED_MODES = {  # mode -> (battery power setting, battery SoC setting) used by the mode select
    ControlMode.FORCE_CHARGE: ("max_charge_w", "max_soc_pct"),
    ControlMode.FORCE_DISCHARGE: ("max_discharge_w", "min_soc_pct"),
}


def control_limits(config: HemsdConfig) -> ControlLimits:
    """The bounds every command is checked against (also the Home Assistant numbers' ranges)."""
    return ControlLimits(
        soc_min_pct=GOODWE_MIN_FLOOR_PCT,
        min_soc_ceiling_pct=config.battery.max_soc_pct - 1.0,
        max_grid_charge_w=max(1.0, config.grid.max_import_w),  # the main fuse bounds any grid charging
        max_discharge_w=max(1.0, config.battery.max_discharge_w),
        price_cap_min=-10.0,  # the bounds of executor.grid_charge_price_cap
        price_cap_max=100.0,
        max_override=MAX_DURATION,
    )


class CommandTarget(Protocol):
    """What commands act on: the running application."""

    @property
    def clock(self) -> Clock: ...

    @property
    def config(self) -> HemsdConfig: ...

    @property
    def config_path(self) -> Path | None: ...

    @property
    def data(self) -> DataManager: ...

    def use_config(self, config: HemsdConfig) -> None:
        """Put ``config`` (the file's with the runtime overlay) in force."""
        ...

    async def replan(self, trigger: str) -> None: ...

    async def controls_changed(self, now: datetime) -> None:
        """Tell the front ends that the controls (mode, override, numbers) changed."""
        ...


class CommandApplier:
    """Applies validated commands to one application; ``settings`` is its runtime overlay."""

    def __init__(self, app: CommandTarget, settings: RuntimeSettings) -> None:
        self.app = app
        self.settings = settings
        self._tokens = float(COMMAND_BURST)
        self._tokens_at: float | None = None

    def _take_token(self, command: ControlCommand) -> None:
        """At most COMMAND_BURST commands at once and COMMAND_BURST a minute after that: each may
        store a configuration version and a plan, so a flood must not grow the database."""
        now = self.app.clock.monotonic()
        if self._tokens_at is not None:
            elapsed = max(0.0, now - self._tokens_at)
            self._tokens = min(float(COMMAND_BURST), self._tokens + elapsed * COMMAND_BURST / 60.0)
        self._tokens_at = now
        if self._tokens < 1.0:
            raise CommandRejectedError(
                "rate",
                type(command).__name__,
                f"too many commands: at most {COMMAND_BURST} a minute; try again",
            )
        self._tokens -= 1.0

    async def apply(self, command: ControlCommand, source: str) -> str:
        """Apply one command from ``source`` (mqtt, http) and return what was done.

        CommandRejectedError (also for a storage failure before the change) changes nothing; a
        failure after the change is in force (its event, the MQTT echo) is only logged.
        """
        now = self.app.clock.now()
        self._take_token(command)
        try:
            summary = await self._apply(command, source, now)
        except StorageError as exc:
            raise CommandRejectedError("storage", type(command).__name__, f"not applied: {exc}") from exc
        log.info("%s command: %s", source.upper(), summary)
        try:
            event = EventRecord(now, f"{source}.command", summary, data={"command": type(command).__name__})
            await self.app.data.log_event(event)
            await self.app.controls_changed(now)
        except StorageError as exc:
            log.warning("%s command applied (%s) but not recorded: %s", source.upper(), summary, exc)
        return summary

    async def _apply(self, command: ControlCommand, source: str, now: datetime) -> str:
        match command:
            case ModeCommand():
                return await self._mode(command, source, now)
            case OverrideCommand():
                return await self._override(command, source)
            case CancelOverrideCommand():
                return await self._cancel(now)
            case NumberCommand():
                return await self._number(command, source, now)
            case ReplanCommand():
                await self.app.replan(source)
                return "re-plan requested"
            case GoalTargetCommand() | GoalReserveCommand() | CancelGoalCommand():
                return await self._goal(command, source, now)
            case LoadGoalCommand() | CancelLoadGoalCommand():
                return await self._load_goal(command, source, now)

    @staticmethod
    def _request(
        mode: ControlMode, source: str, duration: timedelta, power: float | None, soc: float | None
    ) -> OverrideRequest:
        try:
            return OverrideRequest(mode.value, source, duration, power, soc)
        except OverrideError as exc:
            raise CommandRejectedError("mode", mode.value, str(exc)) from None

    async def _mode(self, command: ModeCommand, source: str, now: datetime) -> str:
        data = self.app.data
        if command.mode is ControlMode.AUTO:
            ended = running(await data.overrides(limit=100), now)
            for record in ended:
                await data.cancel_override(record.id or 0, now)
            return f"mode auto: {len(ended)} override(s) ended"
        battery = self.app.config.battery
        power = soc = None
        if command.mode in FORCED_MODES:
            power_key, soc_key = FORCED_MODES[command.mode]
            power, soc = getattr(battery, power_key), getattr(battery, soc_key)
        record = self._request(command.mode, source, DEFAULT_DURATION, power, soc).record(now)
        number = await data.save_override(record)
        return f"mode {command.mode.value}: override #{number} until {record.expires_at:%Y-%m-%d %H:%M} UTC"

    async def _override(self, command: OverrideCommand, source: str) -> str:
        duration = command.expires - command.received_at
        request = self._request(command.mode, source, duration, command.power_w, command.target_soc)
        record = request.record(command.received_at)
        number = await self.app.data.save_override(record)
        return f"override {command.mode.value}: #{number} until {record.expires_at:%Y-%m-%d %H:%M} UTC"

    async def _cancel(self, now: datetime) -> str:
        """Every running override ends: an older one must not come back when the newest is cancelled."""
        data = self.app.data
        ended = running(await data.overrides(limit=100), now)
        if not ended:
            raise CommandRejectedError("override_cancel", "PRESS", "there is no override to cancel")
        for record in ended:
            await data.cancel_override(record.id or 0, now)
        names = ", ".join(f"#{record.id} ({record.mode})" for record in ended)
        return f"override {names} cancelled: the plan is in force"

    async def _goal(
        self, command: GoalTargetCommand | GoalReserveCommand | CancelGoalCommand, source: str, now: datetime
    ) -> str:
        """A run-time goal set (replacing the one of its kind) or cancelled, stored, then re-planned."""
        data = self.app.data
        updated, summary = goals.updated(await goals.load(data), command, source, now, self.app.config)
        await goals.store(data, updated)
        try:
            await self.app.replan(f"goal ({source})")
        except StorageError as exc:
            log.warning("%s: re-plan not stored: %s", summary, exc)
        return summary

    async def _load_goal(
        self, command: LoadGoalCommand | CancelLoadGoalCommand, source: str, now: datetime
    ) -> str:
        """A load's requirement set (replacing its one before) or cancelled, stored, then re-planned."""
        data = self.app.data
        updated, summary = load_goals.updated(
            await load_goals.load(data), command, source, now, self.app.config
        )
        await load_goals.store(data, updated)
        try:
            await self.app.replan(f"load goal ({source})")
        except StorageError as exc:
            log.warning("%s: re-plan not stored: %s", summary, exc)
        return summary

    async def _number(self, command: NumberCommand, source: str, now: datetime) -> str:
        app, data = self.app, self.app.data
        config, entries = self.settings.change(command.setting, command.value, now)
        await self.settings.commit(data, entries)
        app.use_config(config)
        summary = f"{command.setting.value} set to {command.value}"
        try:  # the change is stored and in force: what follows must not report it as rejected
            await data.save_config_version(self.settings.config_text(app.config_path, config), source)
            await app.replan(source)
        except StorageError as exc:
            log.warning("%s: config history or re-plan not stored: %s", summary, exc)
        return summary
