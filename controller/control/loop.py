"""One control tick: reading -> storage -> sessions -> intent (override or plan) -> guard -> inverter.

The ControlLoop owns the executor's state and persists it after every change, so that after a
restart the daemon knows what the inverter was told; ``reconcile`` compares that with what the
inverter reports before anything else is done.

Storage is a record of the loop, not a condition for it: when SQLite fails (full disk, I/O
error, its circuit open) the loop goes on deciding from the overrides and goals it read last
(their expiry still judged against the clock), and what it could not store is logged.

The battery goals (``controller.control.goals``) are read on every tick too: a backup reserve in
force raises the guard's floor, and a goal set, cancelled or ended re-plans. Every reading is
also held against the battery command in force (``controller.control.response``): an inverter
that does not follow is commanded again, then left in self-use and marked unreliable.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from controller.config.models import HemsdConfig
from controller.control import goals
from controller.control.executor import Decision, Executor, ExecutorState, Intent, SafetyGuard
from controller.control.intents import SlotCases, holding_peak, intent_of_slot, live_intent
from controller.control.overrides import active, intent_of
from controller.control.response import ResponseMonitor
from controller.control.sessions import SessionTracker, reading_from_json, reading_to_json
from controller.physics import Action
from controller.planner.goals import SocGoals
from controller.planner.inputs import PricedSlot, slot_at
from controller.planner.plan import Plan
from drivers.inverter.types import Command, CommandKind, Inverter, InverterError, Snapshot
from storage import StorageError, write_or_log
from storage.datamanager import DataManager
from storage.records import (
    DecisionRecord,
    EventRecord,
    JsonValue,
    OverrideRecord,
    SessionStatus,
    SessionTrigger,
    Severity,
)

log = logging.getLogger(__name__)

STATE_KEY = "executor"
READING_KEY = "sessions.last_reading"  # the reading a restart accounts an open session's gap from
WRITES_KEY = "inverter.writes"  # {"day", "writes"}: the daily write cap survives a restart
VERIFY_EVERY = timedelta(minutes=15)  # re-apply the current command this often (catches drift)
DEVIATION_REPLAN_GAP = timedelta(minutes=5)  # at most one deviation re-plan per this interval
TRIGGER_OF_SOURCE = {"plan": SessionTrigger.PLAN, "override": SessionTrigger.OVERRIDE}


def command_to_json(command: Command | None) -> dict[str, JsonValue] | None:
    if command is None:
        return None
    return {
        "kind": command.kind.value,
        "power_w": command.power_w,
        "target_soc": command.target_soc,
        "export_limit_w": command.export_limit_w,
        "min_soc": command.min_soc,
    }


def command_from_json(value: JsonValue) -> Command | None:
    if not isinstance(value, dict):
        return None
    try:
        return Command(
            CommandKind(str(value["kind"])),
            power_w=float(value.get("power_w") or 0.0),  # type: ignore[arg-type]
            target_soc=None if value.get("target_soc") is None else float(value["target_soc"]),  # type: ignore[arg-type]
            export_limit_w=None if value.get("export_limit_w") is None else float(value["export_limit_w"]),  # type: ignore[arg-type]
            min_soc=None if value.get("min_soc") is None else float(value["min_soc"]),  # type: ignore[arg-type]
        )
    except (KeyError, ValueError, TypeError):
        return None


@dataclass
class TickResult:
    snapshot: Snapshot | None
    decision: Decision
    applied: bool
    replan_reason: str = ""


@dataclass
class ControlLoop:
    config: HemsdConfig
    inverter: Inverter
    data: DataManager
    now: Callable[[], datetime]
    state: ExecutorState = field(default_factory=ExecutorState)
    sessions: SessionTracker = field(default_factory=SessionTracker)
    last_decision: Decision | None = None
    last_verified: datetime | None = None
    last_deviation_replan: datetime | None = None
    apply_failures: int = 0
    active_override: int | None = None
    needs_apply: bool = True
    storage_failures: int = 0
    known_overrides: list[OverrideRecord] = field(default_factory=list)  # as last read from storage
    known_goals: goals.RuntimeGoals = field(default_factory=goals.RuntimeGoals)  # as last read
    goals_seen: tuple[goals.RuntimeGoals, float | None] | None = None  # run-time goals, reserve: last tick
    reserve_pct: float | None = None  # the backup reserve in force at the last tick
    response: ResponseMonitor = field(default_factory=ResponseMonitor)
    slot_cases: SlotCases = field(default_factory=SlotCases)  # the case of the slot before, measured

    @property
    def executor(self) -> Executor:
        guard = SafetyGuard(self.config.executor, self.config.battery, self.config.grid, self.reserve_pct)
        return Executor(guard)

    async def read_goals(self) -> goals.RuntimeGoals:
        """The run-time goals as stored (those read before when storage fails)."""
        try:
            self.known_goals = await goals.load(self.data)
        except StorageError as exc:
            self.storage_failures += 1
            log.warning("control: goals not readable, using those read before: %s", exc)
        return self.known_goals

    def goals_in_force(self, now: datetime, horizon: timedelta) -> SocGoals:
        """The file's and the run-time goals that bear on (now, now + horizon]."""
        config = self.config
        return goals.in_force(config.goals, self.known_goals, now, horizon, config.site.zone)

    async def restore(self, snapshot: Snapshot | None) -> None:
        """Load the persisted executor state, the day's inverter writes and the open session."""
        writes = await self.data.get_state(WRITES_KEY)
        if isinstance(writes, dict):
            day, spent = writes.get("day"), writes.get("writes")
            if isinstance(day, str) and isinstance(spent, int):
                with contextlib.suppress(ValueError):  # a day that does not parse is no day to resume
                    self.inverter.resume_writes(date.fromisoformat(day), spent)
        saved = await self.data.get_state(STATE_KEY)
        if isinstance(saved, dict):
            command = command_from_json(saved.get("command"))
            since_raw = saved.get("since")
            since = datetime.fromisoformat(since_raw) if isinstance(since_raw, str) else None
            self.state = ExecutorState(
                command, since, str(saved.get("source", "")), str(saved.get("reason", ""))
            )
        open_sessions = await self.data.open_sessions()
        for extra in open_sessions[1:]:  # more than one open session: only the newest can continue
            end = snapshot.time if snapshot is not None else extra.start
            await self.data.save_session(
                replace(extra, status=SessionStatus.CLOSED, end=max(end, extra.start))
            )
        if open_sessions:
            last = reading_from_json(await self.data.get_state(READING_KEY))
            self.sessions = SessionTracker(
                open_session=open_sessions[0], last_reading=last, max_gap_s=self._max_gap_s()
            )
        else:
            self.sessions = SessionTracker(max_gap_s=self._max_gap_s())

    def _max_gap_s(self) -> float:
        """Readings further apart than this are a data gap, not energy to integrate."""
        return max(self.config.executor.stale_after_s, 3 * self.config.daemon.poll_interval_s)

    async def reconcile(self) -> Command | None:
        """What the inverter is doing now versus what it was last told; logged and recorded."""
        try:
            actual = await self.inverter.current_command()
        except InverterError as exc:
            log.warning("cannot read the inverter's current mode: %s", exc)
            return None
        told = self.state.command
        if told is not None and actual != told:
            await self.event(
                "reconcile",
                f"inverter reports {actual} but was last told {told}",
                Severity.WARNING,
            )
        self.state = ExecutorState(actual, self.state.since, self.state.source, self.state.reason)
        self.needs_apply = True
        return actual

    async def event(
        self, kind: str, message: str, severity: Severity = Severity.INFO, **data: JsonValue
    ) -> None:
        log.log(logging.WARNING if severity is not Severity.INFO else logging.INFO, "%s: %s", kind, message)
        await self._store(
            f"event {kind}", self.data.log_event(EventRecord(self.now(), kind, message, severity, data))
        )

    async def _store(self, what: str, write: Awaitable[object]) -> None:
        """Run a storage write of the loop; a storage failure is logged, never stops the loop."""
        if not await write_or_log(f"control: {what}", write, log):
            self.storage_failures += 1

    async def _overrides(self) -> list[OverrideRecord]:
        try:
            self.known_overrides = await self.data.overrides(limit=20)
        except StorageError as exc:
            self.storage_failures += 1
            log.warning(
                "control: overrides not readable, using the %d read before: %s",
                len(self.known_overrides),
                exc,
            )
        return self.known_overrides

    def intent(
        self,
        plan: Plan | None,
        overrides: Sequence[OverrideRecord],
        at: datetime,
        snapshot: Snapshot | None = None,
    ) -> Intent:
        record = active(overrides, at)
        self.active_override = record.id if record is not None else None
        if record is not None:
            return intent_of(record)
        slot = slot_at(plan, at)
        if slot is None or plan is None:
            return Intent.fallback("no valid plan for now")
        if snapshot is None or snapshot.stale:
            return intent_of_slot(slot)
        before = None
        if plan.values is not None:
            net_w = max(snapshot.load_w, 0.0) - max(snapshot.pv_w, 0.0)
            before = self.slot_cases.update(plan, slot, net_w, at)
        live = live_intent(self.config, plan, slot, snapshot, at, before)
        planned = live if live is not None else intent_of_slot(slot)
        return holding_peak(
            planned, plan, slot, snapshot, self.config.executor.power_step_w, self.config.battery.params()
        )

    async def tick(
        self, snapshot: Snapshot | None, plan: Plan | None, price: PricedSlot | None
    ) -> TickResult:
        now = self.now()
        import_price = price.import_price if price else None
        if snapshot is not None:
            commanded = self.state.command.kind if self.state.command else None
            trigger = TRIGGER_OF_SOURCE.get(self.state.source, SessionTrigger.EMERGENCY)
            export_price = price.export_price if price else None
            since = self.state.since
            records = self.sessions.update(snapshot, commanded, since, trigger, import_price, export_price)
            for record in records:
                # the reading the session was accounted to, in the same transaction: after a restart
                # the gap is counted from exactly where the stored session ends
                reading = (READING_KEY, reading_to_json(snapshot)) if record is records[-1] else None
                await self._store("session", self.data.save_session(record, reading))
        overrides = await self._overrides()
        runtime = (await self.read_goals()).current(now)
        self.reserve_pct = self.goals_in_force(now, timedelta(0)).reserve_at(now)
        goals_changed = self.goals_seen is not None and (runtime, self.reserve_pct) != self.goals_seen
        self.goals_seen = (runtime, self.reserve_pct)
        previous_override = self.active_override
        await self._check_response(snapshot, now)
        intent = self.intent(plan, overrides, now, snapshot)
        held = (Action.CHARGE, Action.DISCHARGE, Action.HOLD, Action.IDLE)
        if self.response.holding_off(now) and intent.action in held:
            until = self.response.retry_at.isoformat(timespec="minutes") if self.response.retry_at else "?"
            intent = Intent.fallback(f"the inverter does not follow forced commands; tried again at {until}")
        decision = self.executor.decide(self.state, intent, snapshot, now, import_price)
        for e in decision.guarded.events:
            await self.event(f"guard.{e.kind}", f"{e.limit}: {e.detail}", Severity.WARNING, limit=e.limit)
        # a clock that went back (now before the last verification) verifies at once; a driver whose
        # modes expire by themselves (GoodWe eco_window_min) asks for the command to be written again
        verify = (
            self.last_verified is None
            or not timedelta(0) <= now - self.last_verified < VERIFY_EVERY
            or self.inverter.renew_due
        )
        applied = False
        if decision.changed or self.needs_apply or verify:
            applied = await self._apply(decision, now)
        if decision.changed:
            # the command is in force from when the write landed (sessions split readings there)
            self.state = replace(decision.state, since=self.now())
            await self._store("executor state", self.data.put_state(STATE_KEY, self._state_json()))
            await self._store(
                "decision",
                self.data.save_decision(
                    DecisionRecord(
                        time=now,
                        action=decision.guarded.intent.action,
                        reason=decision.guarded.intent.reason[:500],
                        command=command_to_json(decision.command) or {},
                        trigger=decision.guarded.intent.source,
                        applied=applied,
                    )
                ),
            )
        self.last_decision = decision
        reason = self._deviation(snapshot, plan, now)
        if self.active_override != previous_override:
            # an override began or ended: the battery is not where the plan expected it
            reason = "override " + ("started" if self.active_override is not None else "ended")
            override = active(overrides, now)
            if override is not None:
                log.info(
                    "%s (override #%s from %s)", intent_of(override).reason, override.id, override.source
                )
            else:
                log.info("override #%s ended: back to the plan", previous_override)
        if goals_changed:
            reason = "goals changed"
        return TickResult(snapshot, decision, applied, reason)

    async def _check_response(self, snapshot: Snapshot | None, now: datetime) -> None:
        """Hold the reading against the command in force (module docstring)."""
        state = self.state
        verdict = self.response.observe(state.command, state.since, snapshot, now, self.config.executor)
        if verdict.action == "recommand":
            self.needs_apply = True
            await self.event("inverter.unresponsive", f"{verdict.detail}: commanding again", Severity.WARNING)
        elif verdict.action == "fallback":
            retry = self.config.executor.response_retry_min
            message = f"{verdict.detail}: self-use, forced commands tried again in {retry} min"
            await self.event("inverter.unreliable", message, Severity.ERROR)
        elif verdict.action == "recovered":
            await self.event("inverter.recovered", verdict.detail)

    async def _apply(self, decision: Decision, now: datetime) -> bool:
        try:
            result = await self.inverter.apply(decision.command)
        except InverterError as exc:
            self.apply_failures += 1
            self.needs_apply = True
            await self.event("inverter.apply_failed", str(exc), Severity.ERROR)
            return False
        self.last_verified = now
        self.needs_apply = False
        if result.written:
            await self.event("inverter.write", f"{decision.command}", written=dict(result.written))
            await self._keep_writes()
        if result.mismatches:
            self.needs_apply = True
            await self.event("inverter.mismatch", ", ".join(result.mismatches), Severity.WARNING)
        if result.cap_reached:
            await self.event("inverter.write_cap", "daily write cap reached", Severity.WARNING)
        return result.ok

    async def _keep_writes(self) -> None:
        day, spent = self.inverter.writes_spent()
        record: dict[str, JsonValue] = {"day": day.isoformat(), "writes": spent}
        await self._store("inverter writes", self.data.put_state(WRITES_KEY, record))

    def _state_json(self) -> dict[str, JsonValue]:
        return {
            "command": command_to_json(self.state.command),
            "since": self.state.since.isoformat() if self.state.since else None,
            "source": self.state.source,
            "reason": self.state.reason[:500],
        }

    def _deviation(self, snapshot: Snapshot | None, plan: Plan | None, now: datetime) -> str:
        """A reason to re-plan now when the measurements left the plan, else ''."""
        slot = slot_at(plan, now)
        if snapshot is None or snapshot.stale or slot is None or plan is None:
            return ""
        if (
            self.last_deviation_replan is not None
            and timedelta(0) <= now - self.last_deviation_replan < DEVIATION_REPLAN_GAP
        ):
            return ""
        index = plan.slots.index(slot)
        soc_before = plan.start_soc_pct if index == 0 else plan.slots[index - 1].target_soc_pct
        span = (slot.end - slot.start).total_seconds()
        share = min(1.0, max(0.0, (now - slot.start).total_seconds() / span)) if span > 0 else 1.0
        expected = soc_before + (slot.target_soc_pct - soc_before) * share
        limits = self.config.executor
        reason = ""
        if abs(snapshot.soc_pct - expected) > limits.replan_soc_deviation_pct:
            reason = f"deviation: SoC {snapshot.soc_pct:.1f} % vs expected {expected:.1f} %"
        net_measured = snapshot.load_w - snapshot.pv_w
        net_forecast = slot.load_w - slot.pv_w
        if not reason and abs(net_measured - net_forecast) > limits.replan_power_deviation_w:
            reason = f"deviation: load-PV {net_measured:.0f} W vs forecast {net_forecast:.0f} W"
        if reason:
            self.last_deviation_replan = now
        return reason

    async def stop(self, snapshot: Snapshot | None) -> None:
        """Back to self-use and close the open session (orderly stop)."""
        now = self.now()
        try:
            safe = Command(CommandKind.SELF_USE, min_soc=self.config.battery.min_soc_pct)
            await self.inverter.apply(safe)
            await self._keep_writes()
            self.state = ExecutorState(safe, now, "fallback", "daemon stopped")
            log.info("the inverter is back in self-use (daemon stopping)")
        except InverterError as exc:
            log.error("could not return the inverter to self-use on stop: %s", exc)
        closed = self.sessions.close(now, snapshot.soc_pct if snapshot else None)
        if closed is not None:
            await self._store("session", self.data.save_session(closed))
        await self._store("executor state", self.data.put_state(STATE_KEY, self._state_json()))
