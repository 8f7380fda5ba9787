"""The running site as its front ends see it: a read-only :class:`SiteState` and the
:class:`Frontend` hooks the application calls.

The application implements SiteState and holds a list of front ends (Home Assistant over MQTT,
the web API); it imports none of them, and they reach it only through these two protocols and the
command applier it owns.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Protocol

from controller.clock import Clock
from controller.config import HemsdConfig
from controller.control.applier import CommandApplier
from controller.control.executor import Decision
from controller.control.load_state import LoadStatePayload
from controller.forecast.service import ForecastResult
from controller.loads.joint import LoadPlan
from controller.planner.inputs import PricedSlot
from controller.planner.plan import Plan
from controller.settlement.engine import MonthBill
from controller.status.report import HealthState
from drivers.inverter.types import Snapshot
from storage.datamanager import DataManager


class SiteState(Protocol):
    """What a front end may read of the running application, and the one way to change it."""

    @property
    def config(self) -> HemsdConfig: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def config_path(self) -> Path | None: ...

    @property
    def snapshot(self) -> Snapshot | None:
        """The last reading (it may be stale: compare its time with ``executor.stale_after_s``)."""
        ...

    @property
    def plan(self) -> Plan | None: ...

    @property
    def load_plan(self) -> LoadPlan | None:
        """The flexible loads' part of the plan (None without [[loads]])."""
        ...

    def load_states(self, now: datetime) -> list[LoadStatePayload]:
        """Each flexible load's state as its MQTT state topic has it (empty without [[loads]])."""
        ...

    @property
    def plan_trigger(self) -> str: ...

    @property
    def prices(self) -> list[PricedSlot]: ...

    @property
    def price_status(self) -> str:
        """real, or what the prices fell back to (cache, tariff, none)."""
        ...

    @property
    def price_source(self) -> str:
        """The name of the preferred price source."""
        ...

    @property
    def forecast(self) -> tuple[list[datetime], ForecastResult] | None: ...

    @property
    def data(self) -> DataManager: ...

    @property
    def last_decision(self) -> Decision | None:
        """What the control loop decided on its last tick."""
        ...

    @property
    def commands(self) -> CommandApplier:
        """Applies validated commands from any front end."""
        ...

    def price_now(self) -> PricedSlot | None: ...

    async def month_bill(self) -> MonthBill | None:
        """This local month's bill so far, settled by the configured scheme (None before any
        interval of it); read at most once a minute for all readers."""
        ...

    async def health(self, now: datetime) -> HealthState: ...

    def frontend_error(self, name: str) -> str | None:
        """Why the front end ``name`` does not run as configured (None: it does, or there is none)."""
        ...


class Frontend(Protocol):
    """A view of the site that the application drives (Home Assistant over MQTT, the web API)."""

    name: str

    @property
    def last_error(self) -> str | None:
        """Why this front end does not run as configured (invalid settings); None when it does."""
        ...

    async def start(self, stack: AsyncExitStack) -> None:
        """Start once the application runs; ``stack`` stops it with the application."""
        ...

    async def reconfigure(self) -> None:
        """The configuration was reloaded (or a setting changed)."""
        ...

    async def after_poll(self) -> None: ...

    async def after_replan(self) -> None: ...

    async def publish(self) -> None:
        """The periodic ``publish`` job (every ``daemon.publish_interval_s``)."""
        ...

    async def controls_changed(self, now: datetime) -> None:
        """A command changed the controls (mode, override, numbers)."""
        ...
