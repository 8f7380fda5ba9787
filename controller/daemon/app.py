"""The application the daemon runs: inverter, storage, prices, forecast, planner, executor, MQTT.

``HemsdApp`` composes the parts from the configuration and provides the daemon's jobs:

- poll (every ``daemon.poll_interval_s``): read the inverter, record, account sessions, follow
  the plan (or an override) through the safety guard; a deviation from the plan re-plans at once;
- prices / forecast: refresh the inputs, re-plan when they change;
- plan (every ``daemon.plan_interval_min``): the least-cost plan from now over the horizon;
- housekeeping: storage maintenance (retention, backups) and the price cache.

Start-up reads the inverter and reconciles what it reports with the persisted executor state
before anything is written; stop returns the inverter to self-use, closes the open session and
flushes storage.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast

from controller.clock import Clock
from controller.config.loads import HeatPumpConfig
from controller.config.models import HemsdConfig
from controller.control.applier import CommandApplier
from controller.control.executor import Decision
from controller.control.load_state import LoadStatePayload
from controller.control.loop import ControlLoop
from controller.control.settings import RuntimeSettings
from controller.daemon.load_draws import measured_fields
from controller.daemon.loads import LoadLink
from controller.daemon.malloc import fix_malloc_thresholds, release_free_heap
from controller.daemon.parts import fetch_prices, open_inverter, open_prices, open_storage
from controller.daemon.schedule import CalendarJob, Job
from controller.errors import HemsdError
from controller.forecast.service import Forecaster, ForecastResult
from controller.loads.inputs import make_load_plan
from controller.loads.joint import LoadPlan
from controller.planner.inputs import PricedSlot, horizon_slots, make_plan
from controller.planner.periods import netting_period_s
from controller.planner.plan import Plan
from controller.reports.energy import BillSource, MonthBillReader, exported_before_month, read_site_history
from controller.settlement.engine import MonthBill
from controller.status.report import HealthMonitor, HealthState
from controller.status.state import Frontend
from drivers.inverter.types import Command, CommandKind, Inverter, InverterError, Snapshot
from drivers.plain import plain
from drivers.prices.service import PriceService
from storage import StorageError, write_or_log
from storage.datamanager import DataManager
from storage.records import (
    EventRecord,
    JsonValue,
    PlanRecord,
    Severity,
    forecast_point,
    plan_point,
    price_point,
)
from storage.recovery import DatabaseLockedError

if TYPE_CHECKING:  # the emulator (and pymodbus) is loaded only for [inverter] type = "emulator"
    from controller.sim.emulator.server import GoodWeEmulator

log = logging.getLogger(__name__)
QUARTER_S = 900.0  # the price service's slots


class StartupError(HemsdError):
    """The application cannot start; the inverter has been left in self-use where it could be."""


@dataclass(frozen=True, slots=True)
class _Parts:
    data: DataManager
    inverter: Inverter
    prices: PriceService
    forecaster: Forecaster
    control: ControlLoop


class HemsdApp:
    def __init__(self, config: HemsdConfig, clock: Clock, config_path: Path | None = None) -> None:
        self.config = config
        self.clock = clock
        self.config_path = config_path
        self._stack = AsyncExitStack()
        self._parts: _Parts | None = None
        self._inverter: Inverter | None = None
        self.prices: list[PricedSlot] = []
        self.price_status = "none"
        self.forecast: tuple[list[datetime], ForecastResult] | None = None
        self.plan: Plan | None = None
        self.load_plan: LoadPlan | None = None
        self.loads: LoadLink | None = None
        self.plan_trigger = ""
        self.snapshot: Snapshot | None = None
        self.device = "inverter"
        self.rejected_configs = 0
        self.emulator: GoodWeEmulator | None = None
        self.settings = RuntimeSettings()
        self.commands = CommandApplier(self, self.settings)
        self.frontends: list[Frontend] = []
        self._health = HealthMonitor()
        self._bills = MonthBillReader()
        self._exported_before: tuple[tuple[int, int], float] | None = None  # (year, month), kWh

    @property
    def parts(self) -> _Parts:
        if self._parts is None:
            raise RuntimeError("the application has not been started")
        return self._parts

    # ---- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every part; when storage cannot be opened, the inverter is first returned to
        self-use (it may still be in a forced mode from before a crash) and StartupError raised,
        unless another process holds the database: that hemsd runs the inverter, left alone."""
        fix_malloc_thresholds()  # the process runs for months: large blocks must not fragment the heap
        config = self.config
        try:
            data = await open_storage(self._stack, config, self.clock)
        except DatabaseLockedError as exc:
            raise StartupError(f"storage cannot be opened: {exc}; the inverter is left to it") from exc
        except Exception as exc:  # whatever storage failed with, the inverter must not stay forced
            safe = await self._self_use_without_storage()
            raise StartupError(f"storage cannot be opened: {exc}; {safe}") from exc
        await self.settings.load(data)
        config = self.config = await self.settings.apply(data, config, self.clock.now())
        handle = await open_inverter(self._stack, config, self.clock)
        self._inverter = handle.driver  # from here on a failed start can still end a forced mode
        self.device, self.emulator = handle.device, handle.emulator
        data.set_device(self.device)
        self._parts = _Parts(
            data=data,
            inverter=handle.driver,
            prices=await open_prices(self._stack, config, self.clock),
            forecaster=Forecaster(config.forecast, data, config.site.zone, net_of_loads=bool(config.loads)),
            control=ControlLoop(config, handle.driver, data, self.clock.now),
        )
        self._stack.push_async_callback(self._parts.forecaster.close)  # cancels a weather fetch under way
        if config.loads:
            self.loads = LoadLink(
                config, data, self.clock.now, self.replan, self.commands.apply, self.clock.real_seconds
            )
            await self.loads.start(self._stack)
        await self._record_config()
        self.snapshot = await self._read()
        await self.parts.control.restore(self.snapshot)
        await self.parts.control.reconcile()
        await self.refresh_prices(replan=False)
        await self.refresh_forecast(replan=False)
        await self.replan("start")
        await self.poll()
        for frontend in self.frontends:  # they serve a started application only
            await frontend.start(self._stack)

    async def _self_use_without_storage(self) -> str:
        """Command self-use through a driver of its own; what happened, in words."""
        async with AsyncExitStack() as stack:
            try:
                handle = await open_inverter(stack, self.config, self.clock)
            except Exception as exc:  # the inverter may be unreachable too: say so, the caller exits
                log.error("could not return the inverter to self-use: %s", exc)
                return f"the inverter could not be set to self-use ({exc})"
            problem = await self._to_self_use(handle.driver)
        if problem is not None:
            return f"the inverter could not be set to self-use ({problem})"
        log.warning("the inverter was returned to self-use: storage cannot be opened")
        return "the inverter was set to self-use"

    async def _to_self_use(self, inverter: Inverter) -> str | None:
        """Command self-use without the control loop; what went wrong, or None."""
        try:
            await inverter.apply(Command(CommandKind.SELF_USE, min_soc=self.config.battery.min_soc_pct))
        except Exception as exc:  # the boundary of a start that already failed: report, never raise
            log.error("could not return the inverter to self-use: %s", exc)
            return str(exc)
        return None

    async def stop(self) -> None:
        try:
            if self._parts is not None:
                await self._parts.control.stop(self.snapshot)
            elif self._inverter is not None:  # a start that failed before the control loop existed
                await self._to_self_use(self._inverter)
        finally:
            await self._stack.aclose()

    def jobs(self) -> tuple[Job | CalendarJob, ...]:
        d = self.config.daemon
        return (
            CalendarJob("day-ahead prices", d.day_ahead_times, self.refresh_prices),
            Job("poll", d.poll_interval_s, self.poll, run_at_start=False),
            Job("prices", d.prices_interval_min * 60.0, self.refresh_prices, run_at_start=False),
            Job("forecast", d.forecast_interval_min * 60.0, self.refresh_forecast, run_at_start=False),
            Job("plan", d.plan_interval_min * 60.0, self.scheduled_replan, run_at_start=False),
            Job("housekeeping", d.housekeeping_interval_min * 60.0, self.housekeeping, run_at_start=False),
            Job("publish", d.publish_interval_s, self.publish, run_at_start=False),
        )

    async def reconfigure(self, config: HemsdConfig) -> None:
        old = self.config
        if self._parts is not None:
            config = await self.settings.apply(self._parts.data, config, self.clock.now())
        self.use_config(config)
        if self._parts is not None:
            self._parts.forecaster.config = config.forecast
        await self._record_config()
        if (old.battery, old.grid, old.planner, old.executor, old.goals) != (
            config.battery,
            config.grid,
            config.planner,
            config.executor,
            config.goals,
        ):
            await self.replan("config")
        if old.inverter != config.inverter or old.storage != config.storage or old.prices != config.prices:
            log.warning("inverter, storage and price source changes take effect after a restart")
        if old.loads != config.loads:
            log.warning("[[loads]] changes take effect after a restart")
        if old.web.listener() != config.web.listener():
            log.warning("web server enabling, address and TLS changes take effect after a restart")
        if self._parts is not None:
            for frontend in self.frontends:
                await frontend.reconfigure()

    def config_rejected(self, problems: list[str]) -> None:
        self.rejected_configs += 1

    def task_restarted(self, task: str, error: str) -> None:
        self._health.problem(f"daemon task {task}", f"restarted after: {error}")

    def status_line(self) -> str:
        snap = self.snapshot
        reading = (
            "no reading"
            if snap is None
            else f"soc {snap.soc_pct:.0f}% pv {snap.pv_w:.0f}W grid {snap.grid_w:.0f}W"
        )
        decision = self._parts.control.last_decision if self._parts else None
        action = decision.command.kind.value if decision else "-"
        prices = (
            f"prices from {self.price_source}"
            if self.price_status == "real"
            else f"prices: {self.price_status}"
        )
        return f"{reading}; {action}; {prices}"

    # ---- what the front ends read (controller.status.state.SiteState) ---------------------------
    @property
    def data(self) -> DataManager:
        return self.parts.data

    @property
    def last_decision(self) -> Decision | None:
        return self._parts.control.last_decision if self._parts is not None else None

    @property
    def price_source(self) -> str:
        return self.parts.prices.sources[0].name

    async def month_bill(self) -> MonthBill | None:
        config = self.config
        source = BillSource(config.settlement.build(), config.prices.tariff)
        return await self._bills.read(self.parts.data, config.site.zone, source)

    async def health(self, now: datetime) -> HealthState:
        parts = self.parts
        return await self._health.report(
            now,
            snapshot=self.snapshot,
            stale_after_s=self.config.executor.stale_after_s,
            inverter=parts.inverter.health,
            price_status=self.price_status,
            forecast=parts.forecaster.health(),
            data=parts.data,
            unresponsive=parts.control.response.problem,
        )

    def frontend_error(self, name: str) -> str | None:
        return next((f.last_error for f in self.frontends if f.name == name), None)

    # ---- what commands change (controller.control.applier.CommandTarget) -----------------------
    def use_config(self, config: HemsdConfig) -> None:
        self.config = config
        if self._parts is not None:
            self._parts.control.config = config

    async def controls_changed(self, now: datetime) -> None:
        for frontend in self.frontends:
            await frontend.controls_changed(now)

    # ---- jobs ----------------------------------------------------------------------------------
    async def _read(self) -> Snapshot | None:
        try:
            return await self.parts.inverter.read()
        except InverterError as exc:
            log.warning("inverter read failed: %s", exc)
            return None

    async def poll(self) -> None:
        snapshot = await self._read()
        if snapshot is not None:
            # a failed read serves the last reading again, the same object, until it is stale: it
            # was recorded when it was read
            served_again = snapshot is self.snapshot
            self.snapshot = snapshot
            if not snapshot.stale and not served_again:
                # the loads' draw is part of the house's load: the load forecast takes it out
                drawn = None
                if self.loads is not None:
                    measured = measured_fields(self.loads.switcher, self.clock.now())
                    drawn = {"flex_loads_w": self.loads.drawn_w(), **measured}
                await self.parts.data.record(snapshot, drawn)
        result = await self.parts.control.tick(snapshot or self.snapshot, self.plan, self.price_now())
        if result.replan_reason:
            await self.replan(result.replan_reason)
        if self.loads is not None:
            self.loads.observe(snapshot)
            await self.loads.tick()
        for frontend in self.frontends:
            await frontend.after_poll()

    def load_states(self, now: datetime) -> list[LoadStatePayload]:
        return [] if self.loads is None else self.loads.states(now)

    def price_now(self) -> PricedSlot | None:
        now = self.clock.now()
        for slot in self.prices:
            if slot.start <= now < slot.end:
                return slot
        return None

    async def refresh_prices(self, replan: bool = True) -> None:
        slots, status = await fetch_prices(self.parts.prices, self.clock.now())
        self.price_status = status
        if not slots:
            return
        changed = [(s.start, s.import_price, s.export_price) for s in slots] != [
            (s.start, s.import_price, s.export_price) for s in self.prices
        ]
        self.prices = slots
        if changed:
            site = self.config.site.id
            await self.parts.data.record_points(
                price_point(s.start, s.import_price, s.export_price, site, self.device) for s in slots
            )
            if replan:
                await self.replan("prices")

    async def refresh_forecast(self, replan: bool = True) -> None:
        now = self.clock.now()
        starts, ends = _quarter_hours(now, timedelta(hours=self.config.planner.horizon_hours))
        result = await self.parts.forecaster.forecast(starts, ends)
        self.forecast = (starts, result)
        site = self.config.site.id
        await self.parts.data.record_points(
            forecast_point(t, pv, load, site, self.device)
            for t, pv, load in zip(starts, result.pv_w, result.load_w, strict=True)
        )
        if replan:
            await self.replan("forecast")

    async def scheduled_replan(self) -> None:
        await self.replan("schedule")

    async def _month_peak_kw(self) -> float:
        """This month's import peak so far, read back from storage, when a capacity charge is
        configured (0 otherwise, or while storage cannot be read)."""
        scheme = self.config.settlement.build()
        if scheme.capacity is None:
            return 0.0
        try:
            month = await self.month_bill()
        except StorageError as exc:
            log.warning("this month's import peak not read (planned from the charge's minimum): %s", exc)
            return 0.0
        return 0.0 if month is None else month.peak_kw

    async def _year_exported_kwh(self, now: datetime) -> float:
        """The export settled since the local year began, read back from storage (the months
        before this one once a month, this one with the month's bill), under a yearly feed-in
        cap (0 otherwise, or while storage cannot be read)."""
        config = self.config
        scheme = config.settlement.build()
        if scheme.export.basis != "fixed" or scheme.export.yearly_cap_kwh is None:
            return 0.0
        local = now.astimezone(config.site.zone)
        try:
            month = await self.month_bill()
            if self._exported_before is None or self._exported_before[0] != (local.year, local.month):
                source = BillSource(scheme, config.prices.tariff)
                before = await exported_before_month(self.parts.data, config.site.zone, source)
                self._exported_before = ((local.year, local.month), before)
        except StorageError as exc:
            log.warning("this year's export not read (planned as if none was exported): %s", exc)
            return 0.0
        return self._exported_before[1] + (month.export_kwh if month is not None else 0.0)

    async def _period_net_kwh(self, now: datetime) -> float:
        """The net import metered so far in the settlement period in progress, read back from
        storage, where the scheme nets import and export within periods longer than the
        quarter-hour slots (0 otherwise, or while storage cannot be read)."""
        period = netting_period_s(self.config.settlement.build(), QUARTER_S)
        if period is None:
            return 0.0
        start = datetime.fromtimestamp(int(now.timestamp()) // period * period, UTC)
        if now <= start:
            return 0.0
        try:
            history = await read_site_history(self.parts.data, start, now)
        except StorageError as exc:
            log.warning("the settlement period's metered net not read (planned from zero): %s", exc)
            return 0.0
        return float(history.imported.sum() - history.exported.sum())

    async def replan(self, trigger: str) -> None:
        now = self.clock.now()
        slots = horizon_slots(self.prices, now, timedelta(hours=self.config.planner.horizon_hours))
        if not slots:  # the plan before is no longer in force, nor shown as if it were
            self.plan = self.load_plan = None
            if self.loads is not None:
                self.loads.use_plan(None)  # each load to its default, as without a plan
            await self._keep(
                "plan.skipped event",
                self.parts.data.log_event(
                    EventRecord(now, "plan.skipped", "no prices known for now", Severity.WARNING)
                ),
            )
            for frontend in self.frontends:
                await frontend.after_replan()
            return
        snapshot = self.snapshot
        if snapshot is None:
            return
        forecast = await self.parts.forecaster.forecast([s.start for s in slots], [s.end for s in slots])
        errors = None
        if self.config.planner.kind == "recourse":
            errors = await self.parts.forecaster.errors(self.config.planner.horizon_hours)
        control = self.parts.control
        await control.read_goals()
        in_force = control.goals_in_force(now, timedelta(hours=self.config.planner.horizon_hours))
        month_peak_kw = await self._month_peak_kw()
        if self.loads is None:
            plan = make_plan(
                self.config,
                snapshot.soc_pct,
                slots,
                forecast.pv_w,
                forecast.load_w,
                now,
                errors,
                in_force,
                month_peak_kw=month_peak_kw,
                period_net_kwh=await self._period_net_kwh(now),
                year_exported_kwh=await self._year_exported_kwh(now),
            )
        else:
            await self.loads.read_goals()
            await self.loads.draws.learn()
            states = self.loads.switcher.states()
            # the loads as they were at the start (their connection and switches are built once),
            # a water heater's draw as learned
            config = self.config.model_copy(update={"loads": self.loads.configs()})
            outdoor = None
            if any(isinstance(c, HeatPumpConfig) and c.demand_w_per_k for c in config.loads):
                # a heat pump's demand follows the weather forecast's air temperature
                starts = [s.start for s in slots]
                outdoor = self.parts.forecaster.weather.temperatures(starts).tolist()
                self.loads.switcher.set_outdoor(starts, outdoor)
            self.load_plan = make_load_plan(
                config,
                snapshot.soc_pct,
                slots,
                forecast.pv_w,
                forecast.load_w,
                now,
                errors,
                states,
                self.loads.switcher.at_default(),
                goals=in_force,
                month_peak_kw=month_peak_kw,
                period_net_kwh=await self._period_net_kwh(now),
                year_exported_kwh=await self._year_exported_kwh(now),
                requirements=self.loads.switcher.requirements(),
                outdoor_c=outdoor,
            )
            self.loads.use_plan(self.load_plan)
            plan = self.load_plan.plan
            for schedule in self.load_plan.loads:
                log.info("plan for %s: %s", schedule.name, schedule.reason)
        self.plan = plan
        self.plan_trigger = trigger
        first = plan.slots[0]
        log.info(
            "plan (%s, %.1f ms, %d slots): %s", trigger, plan.solve_ms, len(plan.slots), first.explanation
        )
        for note in plan.goal_notes:
            log.log(logging.INFO if "not reachable" not in note else logging.WARNING, "plan goal: %s", note)
        record = PlanRecord(
            created_at=now,
            horizon_start=plan.slots[0].start,
            horizon_end=plan.slots[-1].end,
            inputs_digest=plan.inputs_digest,
            solve_ms=plan.solve_ms,
            slots=tuple(_json_slot(s.to_dict()) for s in plan.slots),
            totals={
                "energy_cost": plan.energy_cost,
                "import_kwh": plan.import_kwh,
                "export_kwh": plan.export_kwh,
            },
            explanation=first.explanation,
            trigger=trigger,
        )
        await self._keep("plan", self.parts.data.save_plan(record))  # the plan is in force either way
        site = self.config.site.id
        await self.parts.data.record_points(
            plan_point(s.start, s.target_soc_pct, s.grid_w, s.battery_w, s.cost, site, self.device)
            for s in plan.slots
        )
        for frontend in self.frontends:
            await frontend.after_replan()

    async def housekeeping(self) -> None:
        await self._keep("storage maintenance", self.parts.data.maintain())
        release_free_heap()  # what the jobs freed in the middle of the heap since the last run

    @staticmethod
    async def _keep(what: str, write: Awaitable[object]) -> None:
        """A storage write the jobs can go on without: a failure (full disk, I/O error) is logged."""
        await write_or_log(what, write, log)

    async def publish(self) -> None:
        """The ``publish`` job: what each front end sends periodically (prices, accounts, health)."""
        for frontend in self.frontends:
            await frontend.publish()

    async def _record_config(self) -> None:
        """One configuration version (source ``file``) per start and reload, what is in force: the
        file as it is, or with the runtime settings applied when some are; nothing when unchanged."""
        if self._parts is None:
            return
        if self.settings.entries:
            text = self.settings.config_text(self.config_path, self.config)
        elif self.config_path is None:
            return
        else:
            try:
                text = self.config_path.read_text(encoding="utf-8")
            except OSError as exc:
                log.warning("cannot read %s for the config history: %s", self.config_path, exc)
                return
        await self.parts.data.save_config_version(text, "file")


def _json_slot(slot: dict[str, object]) -> dict[str, JsonValue]:
    return cast("dict[str, JsonValue]", plain(slot))


def _quarter_hours(now: datetime, horizon: timedelta) -> tuple[list[datetime], list[datetime]]:
    first = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    count = int(horizon / timedelta(minutes=15))
    starts = [first + timedelta(minutes=15 * i) for i in range(count)]
    return starts, [s + timedelta(minutes=15) for s in starts]


__all__: Sequence[str] = ("HemsdApp",)
