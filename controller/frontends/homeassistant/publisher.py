"""Home Assistant over MQTT for the running daemon: the controller's state out, its controls in.

The :class:`Publisher` owns the MQTT client of one application (none when the configuration
has no ``[mqtt]`` section) and is driven by the application's hooks:

- after every poll: the snapshot (flagged stale when the inverter has not answered for longer
  than ``executor.stale_after_s``) and the action in force;
- after every re-plan: the plan (slots for charts) and the action;
- every ``daemon.publish_interval_s`` (the ``publish`` job): action, prices, today's energy and
  money, savings (``controller.reports.accounting``), forecast, health, and the controls' states (mode,
  override, numbers, battery goals);
- on a reload: the client is built again when the ``[mqtt]`` section, the device or the
  command limits changed.

A value equal to the one last published on its topic is not sent again: the client keeps every
retained value and re-sends them all after a reconnect, so nothing is lost by skipping it, and
the big payloads (prices, forecast, plan) go out only when they change. Publishing never waits
for the broker and a failing part (storage) skips only itself.

Commands from Home Assistant arrive in :meth:`Publisher.handle` and are applied by
``controller.control.applier`` (the same path as the HTTP API's). A command that does not fit raises
CommandRejectedError: the client reports it on ``<base>/error`` and nothing changes. After any
accepted command, from MQTT or HTTP, the controls' states are published again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from controller import __version__
from controller.config.models import HemsdConfig
from controller.control import goals
from controller.control.applier import control_limits
from controller.control.commands import ControlCommand, ControlLimits, ControlMode
from controller.control.executor import Decision
from controller.control.overrides import active
from controller.frontends.homeassistant.client import HomeAssistantClient
from controller.frontends.homeassistant.discovery import (
    ENTITIES,
    MAX_PHASES,
    DeviceInfo,
    EnergyState,
    Entity,
    ForecastSlotState,
    ForecastState,
    GoalsState,
    OverrideState,
    PlanSlotState,
    PlanState,
    PriceSlotState,
    PricesState,
    SavingsState,
    StateKey,
    load_entities,
)
from controller.planner.inputs import slot_at
from controller.planner.plan import Plan
from controller.reports.accounting import BASELINE, DayAccount, SavingsLedger, TodayAccount
from controller.reports.energy import analytics_summary, bill_state
from controller.status.report import HealthState, action_state
from controller.status.state import SiteState
from drivers.days import day_window
from drivers.inverter.types import CommandKind
from drivers.mqtt import MqttError, MqttSettings, TlsSettings
from storage import StorageError
from storage.records import OverrideRecord

log = logging.getLogger(__name__)
ANALYTICS_EVERY = timedelta(minutes=15)

QUARTER = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """Everything a client is built from; a different spec after a reload means a new client."""

    settings: MqttSettings
    device: DeviceInfo
    limits: ControlLimits
    entities: tuple[Entity, ...] = ENTITIES


def client_spec(config: HemsdConfig, phases: int) -> ClientSpec | None:
    """The client's settings from the configuration; None without ``[mqtt]``; ValueError when invalid."""
    mqtt = config.mqtt
    if mqtt is None:
        return None
    tls = None
    if mqtt.tls is not None:
        tls = TlsSettings(mqtt.tls.ca_file, mqtt.tls.cert_file, mqtt.tls.key_file, mqtt.tls.insecure)
    settings = MqttSettings.for_site(
        config.site.id,
        mqtt.host,
        port=mqtt.port,
        username=mqtt.username,
        password=mqtt.password.get_secret_value(),
        client_id=mqtt.client_id,
        base_topic=mqtt.base_topic,
        discovery_prefix=mqtt.discovery_prefix,
        keepalive_s=mqtt.keepalive_s,
        tls=tls,
    )
    device = DeviceInfo(
        site_id=config.site.id,
        name=config.site.name,
        sw_version=__version__,
        currency=config.site.currency,
        phases=phases,
    )
    loads = tuple(
        entity
        for load in config.loads
        for entity in load_entities(load.name, load.type, getattr(load, "repeat", "") == "request")
    )
    return ClientSpec(settings, device, control_limits(config), ENTITIES + loads)


_MODE_OF_COMMAND = {
    CommandKind.SELF_USE: ControlMode.SELF_USE,
    CommandKind.CHARGE: ControlMode.FORCE_CHARGE,
    CommandKind.HOLD: ControlMode.HOLD,
    CommandKind.DISCHARGE: ControlMode.FORCE_DISCHARGE,
    CommandKind.IDLE: ControlMode.HOLD,  # the battery held, its surplus exported: no mode of its own to choose
}


def override_in_force(record: OverrideRecord, decision: Decision | None) -> bool:
    """False once the control loop has taken up the override and the inverter does something else
    (the safety guard refused it, or a fallback); True until the loop has seen it."""
    if decision is None or decision.guarded.intent.source != "override":
        return True
    return action_state(decision, None, None).source == "override"


def mode_in_force(record: OverrideRecord | None, decision: Decision | None) -> str:
    """The Mode select's state: the override's mode while it is followed, else what the inverter does."""
    if record is None:
        return ControlMode.AUTO.value
    if decision is None or override_in_force(record, decision):
        return record.mode
    return _MODE_OF_COMMAND[decision.command.kind].value


def override_state(record: OverrideRecord | None, decision: Decision | None) -> OverrideState:
    if record is None or record.expires_at is None:
        return OverrideState(False, ControlMode.AUTO.value, None, None, None, None, False, "")
    command: dict[str, object] = {"mode": record.mode, "expires": record.expires_at.isoformat()}
    if record.power_w is not None:
        command["power_w"] = record.power_w
    if record.soc_pct is not None:
        command["target_soc"] = record.soc_pct
    return OverrideState(
        True, record.mode, record.expires_at, record.power_w, record.soc_pct, record.source,
        override_in_force(record, decision), json.dumps(command, separators=(",", ":")),
    )  # fmt: skip


def _command_json(goal: goals.TargetGoal | goals.ReserveGoal | None) -> str:
    """A run-time goal as the JSON its text entity accepts ("" for none)."""
    if goal is None:
        return ""
    if isinstance(goal, goals.ReserveGoal):
        body: dict[str, object] = {"soc_pct": goal.soc_pct, "until": goal.until.isoformat()}
    elif goal.at is not None:
        body = {"soc_pct": goal.soc_pct, "at": goal.at.isoformat()}
    else:
        assert goal.by is not None
        body = {"soc_pct": goal.soc_pct, "by": goal.by.strftime("%H:%M"), "days": list(goal.days)}
    return json.dumps(body, separators=(",", ":"))


def goals_state(
    config: HemsdConfig, runtime: goals.RuntimeGoals, plan: Plan | None, now: datetime
) -> GoalsState:
    """The ``goals`` payload: the file's and the run-time goals still to come, and the plan's word on them."""
    tz = config.site.zone
    targets, reserves = goals.file_goals(config.goals, tz)
    current = runtime.current(now)
    targets += [current.target] if current.target is not None else []
    reserves += [current.reserve] if current.reserve is not None else []
    parts = [f"target {t.describe(tz)}" for t in targets if not t.expired(now)]
    parts += [f"reserve {r.describe(tz)}" for r in reserves if not r.expired(now)]
    held = [r for r in reserves if not r.expired(now)]
    top = max(held, key=lambda r: (r.soc_pct, r.until), default=None)
    return GoalsState(
        summary="; ".join(parts) or "none",
        target_command=_command_json(current.target),
        reserve_command=_command_json(current.reserve),
        reserve_pct=None if top is None else top.soc_pct,
        reserve_until=None if top is None else top.until,
        reachable=plan is None or all(o.reached for o in plan.goals),
        notes=plan.goal_notes if plan is not None else (),
    )


class Publisher:
    """The Home Assistant front end of one running site (see the module docstring)."""

    name = "homeassistant"

    def __init__(self, app: SiteState) -> None:
        self.app = app
        self.client: HomeAssistantClient | None = None
        self._analytics_at: datetime | None = None
        self._bill_at: datetime | None = None
        self.spec: ClientSpec | None = None
        self.last_error: str | None = None  # why there is no client (invalid [mqtt] settings)
        self._cycle_error: str | None = None  # what failed in the current publish cycle
        self._ledger: SavingsLedger | None = None
        self._account: TodayAccount | None = None
        self._today: DayAccount | None = None
        self._forecast_seen: object = None
        self._forecast_at: datetime | None = None
        self._complete = False  # everything has been published once by this client
        self._sent: dict[StateKey, object] = {}  # the last value published per key by this client

    # --- life cycle -----------------------------------------------------------------------------

    def _accounts(self) -> None:
        data, tz = self.app.data, self.app.config.site.zone
        self._ledger, self._account = SavingsLedger(data, tz), TodayAccount(data, tz)

    async def start(self, stack: AsyncExitStack) -> None:
        stack.push_async_callback(self.stop)
        self._accounts()
        await self._connect()
        await self.after_replan()
        await self.after_poll()

    async def stop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.stop()

    async def reconfigure(self) -> None:
        """After a reload: rebuild the client when its spec changed, else publish again."""
        self._accounts()
        if self._spec() != self.spec or self.client is None:
            await self._rebuild()
            await self.after_poll()  # a new client: everything, the snapshot included
        else:
            await self.publish()

    async def _rebuild(self) -> None:
        await self.stop()
        await self._connect()
        await self.after_replan()

    def _phases(self) -> int:
        snapshot = self.app.snapshot
        return MAX_PHASES if snapshot is not None and len(snapshot.grid_v) >= MAX_PHASES else 1

    def _spec(self) -> ClientSpec | None:
        try:
            return client_spec(self.app.config, self._phases())
        except ValueError as exc:
            self._invalid(str(exc))
            return None

    def _invalid(self, problem: str) -> None:
        self.last_error = f"MQTT disabled: invalid [mqtt] settings: {problem}"
        log.error("%s", self.last_error)

    async def _connect(self) -> None:
        self.spec = spec = self._spec()
        if spec is None:
            return
        try:
            client = HomeAssistantClient(
                spec.settings,
                spec.device,
                self.handle,
                limits=spec.limits,
                now=self.app.clock.now,
                entities=spec.entities,
            )
        except MqttError as exc:
            self._invalid(str(exc))
            return
        await client.start()
        self.client, self._complete, self._sent = client, False, {}  # the next poll publishes everything

    # --- state out ------------------------------------------------------------------------------

    def _put(self, client: HomeAssistantClient, key: StateKey, value: object) -> None:
        """Publish ``value`` unless it is what this client last published there (it keeps it retained)."""
        if key in self._sent and self._sent[key] == value:
            return
        self._sent[key] = value
        client.publish_state(key, value)

    async def after_poll(self) -> None:
        if self.client is not None and self.spec is not None and self.spec.device.phases != self._phases():
            await self._rebuild()  # the phase count became known: other entities
        client = self.client
        if client is None:
            return
        snapshot = self.app.snapshot
        if snapshot is not None:
            age = (self.app.clock.now() - snapshot.time).total_seconds()
            fresh = age <= self.app.config.executor.stale_after_s
            client.publish_snapshot(snapshot if fresh else snapshot.as_stale())
        self._publish_action(client)
        if not self._complete:
            await self.publish()

    async def after_replan(self) -> None:
        client, plan = self.client, self.app.plan
        if client is None or plan is None:
            return
        slots = tuple(
            PlanSlotState(s.start, s.action, s.target_soc_pct, s.grid_w, s.battery_w, s.grid_charge_w,
                          s.import_price, s.export_price, s.cost)
            for s in plan.slots
        )  # fmt: skip
        explanation = plan.slots[0].explanation if plan.slots else ""
        state = PlanState(
            plan.created_at, self.app.config.site.currency, plan.energy_cost, explanation, slots
        )
        self._put(client, StateKey.PLAN, state)
        self._publish_action(client)
        try:
            await self._publish_goals(client, self.app.clock.now())
        except StorageError as exc:
            log.warning("MQTT goals not published: %s", exc)

    async def _publish_goals(self, client: HomeAssistantClient, now: datetime) -> None:
        runtime = await goals.load(self.app.data)
        self._put(client, StateKey.GOALS, goals_state(self.app.config, runtime, self.app.plan, now))

    def _publish_action(self, client: HomeAssistantClient) -> None:
        decision = self.app.last_decision
        if decision is not None:
            slot = slot_at(self.app.plan, self.app.clock.now())
            start, end = (slot.start, slot.end) if slot else (None, None)
            self._put(client, StateKey.ACTION, action_state(decision, start, end))

    async def _publish_analytics(self, client: HomeAssistantClient, now: datetime) -> None:
        """Today's grid-voltage quality and energy account on ``<base>/analytics`` (every 15 minutes)."""
        if self._analytics_at is not None and now - self._analytics_at < ANALYTICS_EVERY:
            return
        self._analytics_at = now
        config = self.app.config
        day = now.astimezone(config.site.zone).date()
        try:
            summary = await analytics_summary(
                self.app.data, day, config.site.zone, config.battery.params(), config.site.currency
            )
        except ValueError as exc:  # the local day has not begun on a clock moved back
            log.debug("no analytics summary yet: %s", exc)
            return
        client.publish_state("analytics", summary)

    async def _publish_bill(self, client: HomeAssistantClient, now: datetime) -> None:
        """This month's bill so far and its import peak on ``<base>/bill`` (every 15 minutes)."""
        if self._bill_at is not None and now - self._bill_at < ANALYTICS_EVERY:
            return
        self._bill_at = now
        config = self.app.config
        scheme = config.settlement.build()
        tz = config.site.zone
        month = await self.app.month_bill()
        if month is not None:
            client.publish_state(StateKey.BILL, bill_state(month, tz, config.site.currency, scheme.name))

    async def publish(self) -> None:
        """Everything but the snapshot and the plan (the ``publish`` job); a failing part skips only itself."""
        client = self.client
        if client is None:
            return
        steps: tuple[Callable[[HomeAssistantClient, datetime], Awaitable[None]], ...] = (
            self._publish_prices, self._publish_accounts, self._publish_forecast, self._publish_health,
            self._publish_controls, self._publish_analytics, self._publish_bill,
        )  # fmt: skip
        self._publish_action(client)
        self._cycle_error = None
        for step in steps:
            try:
                await step(client, self.app.clock.now())
            except StorageError as exc:
                self._cycle_error = f"storage: {exc}"
                log.warning("MQTT %s not published: %s", step.__name__, exc)
        self._complete = True

    async def _publish_prices(self, client: HomeAssistantClient, now: datetime) -> None:
        app = self.app
        if not app.prices:
            return
        current = app.price_now()
        status = app.price_status
        preferred = app.price_source
        self._put(
            client,
            StateKey.PRICES,
            PricesState(
                currency=app.config.site.currency,
                source=preferred if status == "real" else f"{status} (preferred {preferred})",
                import_now=current.import_price if current else None,
                export_now=current.export_price if current else None,
                slots=tuple(PriceSlotState(s.start, s.import_price, s.export_price) for s in app.prices),
            ),
        )

    async def _publish_accounts(self, client: HomeAssistantClient, now: datetime) -> None:
        config = self.app.config
        tz = config.site.zone
        if self._account is None or self._ledger is None:
            return
        today = await self._account.read()
        if today is None:
            return
        self._today = today
        day_start = day_window(today.day, tz)[0]
        currency = config.site.currency
        self._put(
            client,
            StateKey.ENERGY,
            EnergyState(
                day_start, currency, today.import_kwh, today.export_kwh, today.pv_kwh, today.load_kwh,
                today.charge_kwh, today.discharge_kwh, today.import_cost, today.export_revenue, today.net_cost,
            ),
        )  # fmt: skip
        total = await self._ledger.total(today)
        if total is not None:
            self._put(
                client, StateKey.SAVINGS, SavingsState(day_start, currency, BASELINE, today.savings, total)
            )

    async def _publish_forecast(self, client: HomeAssistantClient, now: datetime) -> None:
        """Today's totals are what was measured so far plus the forecast for the rest of the day."""
        forecast = self.app.forecast
        if forecast is None:
            return
        if forecast is not self._forecast_seen:
            self._forecast_seen, self._forecast_at = forecast, now
        starts, result = forecast
        tz = self.app.config.site.zone
        today = now.astimezone(tz).date()
        pv_kwh = self._today.pv_kwh if self._today and self._today.day == today else 0.0
        load_kwh = self._today.load_kwh if self._today and self._today.day == today else 0.0
        for start, pv, load in zip(starts, result.pv_w, result.load_w, strict=True):
            if start.astimezone(tz).date() == today:
                hours = max(timedelta(0), start + QUARTER - max(start, now)) / timedelta(hours=1)
                pv_kwh += pv * hours / 1000.0
                load_kwh += load * hours / 1000.0
        slots = tuple(
            ForecastSlotState(t, pv, load)
            for t, pv, load in zip(starts, result.pv_w, result.load_w, strict=True)
        )
        # one decimal, as the entities show it: the slots are re-sent only when a total moves that much
        totals = round(pv_kwh, 1), round(load_kwh, 1)
        self._put(client, StateKey.FORECAST, ForecastState(self._forecast_at or now, *totals, slots))

    async def _publish_health(self, client: HomeAssistantClient, now: datetime) -> None:
        self._put(client, StateKey.HEALTH, await self.health(now))

    async def health(self, now: datetime) -> HealthState:
        """The site's health, with what failed in this client's last publish cycle as a last resort."""
        health = await self.app.health(now)
        return health if health.last_error else replace(health, last_error=self._cycle_error)

    async def _publish_controls(self, client: HomeAssistantClient, now: datetime) -> None:
        record = active(await self.app.data.overrides(limit=20), now)
        decision = self.app.last_decision
        self._put(client, StateKey.MODE, mode_in_force(record, decision))
        self._put(client, StateKey.OVERRIDE, override_state(record, decision))
        config = self.app.config
        self._put(client, StateKey.MIN_SOC, config.battery.min_soc_pct)
        self._put(client, StateKey.MAX_GRID_CHARGE_W, config.battery.max_charge_w)
        self._put(client, StateKey.PRICE_CAP, config.executor.grid_charge_price_cap)
        await self._publish_goals(client, now)

    # --- commands in ---------------------------------------------------------------------------

    async def handle(self, command: ControlCommand) -> None:
        """Apply one validated command (the MQTT client's callback); CommandRejectedError changes nothing."""
        await self.app.commands.apply(command, "mqtt")

    async def controls_changed(self, now: datetime) -> None:
        """A command (from MQTT or HTTP) was applied: publish the controls' new states."""
        if self.client is not None:
            await self._publish_controls(self.client, now)
