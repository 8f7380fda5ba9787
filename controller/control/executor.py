"""From what the plan (or an override) wants now to the Command the inverter is given.

Two steps, both pure functions of their inputs:

- ``SafetyGuard.check``: the limits from config (SoC window, charge/discharge power, main fuse,
  price cap for grid charging, battery temperature window, stale inverter data, a backup reserve
  in force: no discharge below it, and the inverter's own floor raised to it). Anything outside
  is clamped or refused, and each intervention is returned as a GuardEvent to be recorded.
- ``Executor.decide``: quantises power, and keeps the current command when the new one differs
  only a little (hysteresis) or the current one is younger than the minimum dwell time, so that
  small plan changes do not flap the inverter. Safety fallbacks and overrides are never delayed,
  nor is leaving a command that the limits no longer allow (the house load rose under the fuse,
  the minimum SoC was raised), nor going on with a forced charge or discharge that has reached
  its SoC target while the plan wants more. A clock that went back (``now`` before the command's ``since``)
  proves no dwell: the change is made.

The executor's state (command, since when) is plain data so that it can be persisted and
reconciled with the inverter after a restart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from controller.config.models import BatteryConfig, ExecutorConfig, GridConfig
from controller.physics import Action
from controller.planner.plan import ACTIONS
from drivers.inverter.types import Command, CommandKind, Snapshot

SOURCES = ("plan", "override", "fallback", "emergency")
POWER_TOLERANCE_W = 1.0  # a plan a fraction of a watt over a limit is rounding, not a request to clamp


@dataclass(frozen=True, slots=True)
class Intent:
    """What should happen now, before the guard: from the plan slot or from an override."""

    action: Action
    power_w: float = 0.0
    target_soc: float | None = None
    export_limit_w: float | None = None
    source: str = "plan"
    reason: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"intent.action must be one of {', '.join(ACTIONS)}; got {self.action!r}")
        if self.source not in SOURCES:
            raise ValueError(f"intent.source must be one of {', '.join(SOURCES)}; got {self.source!r}")
        if not math.isfinite(self.power_w) or self.power_w < 0:
            raise ValueError(f"intent.power_w must be a finite value >= 0; got {self.power_w!r}")

    @classmethod
    def fallback(cls, reason: str) -> Intent:
        return cls(Action.SELF_USE, source="fallback", reason=reason)


@dataclass(frozen=True, slots=True)
class GuardEvent:
    kind: str  # "clamped", "refused" or "fallback"
    limit: str
    detail: str


@dataclass(frozen=True, slots=True)
class Guarded:
    command: Command
    intent: Intent
    events: tuple[GuardEvent, ...]

    @property
    def safety_fallback(self) -> bool:
        return (
            any(e.kind in ("refused", "fallback") for e in self.events)
            and self.command.kind is CommandKind.SELF_USE
        )


@dataclass(frozen=True, slots=True)
class SafetyGuard:
    executor: ExecutorConfig
    battery: BatteryConfig
    grid: GridConfig
    reserve_pct: float | None = None  # a backup reserve in force (controller.control.goals)

    @property
    def floor(self) -> float:
        """The SoC no command discharges below: the battery's minimum, or the reserve above it."""
        floor = self.battery.min_soc_pct
        if self.reserve_pct is not None:
            floor = min(max(floor, self.reserve_pct), self.battery.max_soc_pct)
        return floor

    def check(
        self, intent: Intent, snapshot: Snapshot | None, now: datetime, import_price: float | None
    ) -> Guarded:
        events: list[GuardEvent] = []
        if snapshot is None:
            return self._self_use(intent, "inverter", "no inverter data yet", events)
        age = (now - snapshot.time).total_seconds()
        limit_s = self.executor.stale_after_s
        if age > limit_s:
            detail = f"inverter data is {age:.0f} s old (limit {limit_s:.0f} s)"
            return self._self_use(intent, "stale_after_s", detail, events)
        if snapshot.stale:  # the driver gave up on the inverter before the age limit did
            detail = f"the inverter stopped answering (its last good reading is {age:.0f} s old)"
            return self._self_use(intent, "stale_after_s", detail, events)
        action = intent.action
        if action in (Action.CHARGE, Action.DISCHARGE):
            temp = snapshot.temperatures.get("battery")
            lo, hi = self.executor.battery_temp_min_c, self.executor.battery_temp_max_c
            if temp is not None and not lo <= temp <= hi:
                detail = f"battery at {temp:.1f} C, outside {lo:.0f}..{hi:.0f} C"
                return self._self_use(intent, "battery_temp", detail, events)
        if action == Action.CHARGE:
            return self._charge(intent, snapshot, import_price, events)
        if action == Action.DISCHARGE:
            return self._discharge(intent, snapshot, events)
        min_soc = self.floor
        if action == Action.HOLD:
            return self._hold(intent, events)
        if action == Action.IDLE:
            idle = Command(CommandKind.IDLE, export_limit_w=self._export_limit(intent), min_soc=min_soc)
            return Guarded(idle, intent, tuple(events))
        if action == Action.EXPORT_LIMIT:
            limit = self._export_limit(intent) or 0.0
            return Guarded(
                Command(CommandKind.SELF_USE, export_limit_w=limit, min_soc=min_soc), intent, tuple(events)
            )
        return Guarded(Command(CommandKind.SELF_USE, min_soc=min_soc), intent, tuple(events))

    def _export_limit(self, intent: Intent) -> float | None:
        """The export limit a charge, discharge or hold asks for (None: the inverter's usual)."""
        if intent.export_limit_w is None:
            return None
        return max(0.0, min(intent.export_limit_w, self.grid.max_export_w))

    def _hold(self, intent: Intent, events: list[GuardEvent]) -> Guarded:
        hold = Command(CommandKind.HOLD, export_limit_w=self._export_limit(intent), min_soc=self.floor)
        return Guarded(hold, intent, tuple(events))

    def _self_use(self, intent: Intent, limit: str, detail: str, events: list[GuardEvent]) -> Guarded:
        kind = "fallback" if limit in ("inverter", "stale_after_s") else "refused"
        if intent.action != Action.SELF_USE or kind == "fallback":
            events.append(GuardEvent(kind, limit, detail))
        command = Command(CommandKind.SELF_USE, min_soc=self.floor)
        return Guarded(command, replace(intent, reason=f"self-use: {detail}"), tuple(events))

    def _target(self, intent: Intent, default: float, events: list[GuardEvent]) -> float:
        lo, hi = self.floor, self.battery.max_soc_pct
        target = default if intent.target_soc is None else intent.target_soc
        if not lo <= target <= hi:
            clamped = min(max(target, lo), hi)
            # a reserve raises a discharge's floor by design: only the battery's window is an event
            if not self.battery.min_soc_pct <= target <= hi:
                events.append(
                    GuardEvent("clamped", "soc_window", f"target SoC {target:.1f} % -> {clamped:.1f} %")
                )
            target = clamped
        return target

    def _power(self, power: float, limit: float, name: str, events: list[GuardEvent]) -> float:
        if power > limit + POWER_TOLERANCE_W:
            events.append(GuardEvent("clamped", name, f"{power:.0f} W -> {limit:.0f} W"))
        return min(power, limit)

    def _charge(
        self, intent: Intent, snapshot: Snapshot, import_price: float | None, events: list[GuardEvent]
    ) -> Guarded:
        cap = self.executor.grid_charge_price_cap
        if cap is not None and import_price is not None and import_price > cap:
            detail = f"import price {import_price:.4f} above the grid-charge cap {cap:.4f}"
            return self._self_use(intent, "grid_charge_price_cap", detail, events)
        target = self._target(intent, self.battery.max_soc_pct, events)
        power = self._power(intent.power_w, self.battery.max_charge_w, "max_charge_w", events)
        house_w = max(0.0, snapshot.load_w - snapshot.pv_w)
        headroom = self.grid.max_import_w - house_w
        if power > headroom:
            if headroom < self.executor.power_step_w:
                detail = f"house draws {house_w:.0f} W of the {self.grid.max_import_w:.0f} W fuse: no room to charge"
                events.append(GuardEvent("refused", "max_import_w", detail))
                return self._hold(replace(intent, reason=f"hold: {detail}"), events)
            power = self._power(power, headroom, "max_import_w", events)
        return self._forced(CommandKind.CHARGE, intent, power, target, events)

    def _discharge(self, intent: Intent, snapshot: Snapshot, events: list[GuardEvent]) -> Guarded:
        if self.reserve_pct is not None and snapshot.soc_pct <= self.floor:
            detail = f"SoC {snapshot.soc_pct:.1f} % is at the {self.floor:.0f} % backup reserve"
            return self._self_use(intent, "reserve", detail, events)
        floor = self._target(intent, self.floor, events)
        power = self._power(intent.power_w, self.battery.max_discharge_w, "max_discharge_w", events)
        return self._forced(CommandKind.DISCHARGE, intent, power, floor, events)

    def _forced(
        self, kind: CommandKind, intent: Intent, power: float, target: float, events: list[GuardEvent]
    ) -> Guarded:
        power = quantise(power, self.executor.power_step_w)
        if power <= 0:  # less than one power step: the inverter would only hold
            return self._hold(intent, events)
        limit, min_soc = self._export_limit(intent), self.floor
        command = Command(kind, power_w=power, target_soc=target, export_limit_w=limit, min_soc=min_soc)
        return Guarded(command, intent, tuple(events))


def quantise(power_w: float, step_w: float) -> float:
    """Round down to the inverter's power step (never above what was allowed)."""
    return math.floor(power_w / step_w + 1e-9) * step_w


@dataclass(frozen=True, slots=True)
class ExecutorState:
    command: Command | None = None
    since: datetime | None = None
    source: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    command: Command
    changed: bool
    held_back: str  # why a wanted change was not made now ("" when none was held back)
    guarded: Guarded
    state: ExecutorState


def _close(a: Command, b: Command, config: ExecutorConfig) -> bool:
    if a.kind is not b.kind or a.export_limit_w != b.export_limit_w or a.min_soc != b.min_soc:
        return False
    if abs(a.power_w - b.power_w) >= max(config.power_hysteresis_w, 1e-9):
        return False
    if (a.target_soc is None) != (b.target_soc is None):
        return False
    return (
        a.target_soc is None
        or b.target_soc is None
        or abs(a.target_soc - b.target_soc) < max(config.soc_hysteresis_pct, 1e-9)
    )


def _finished(current: Command, wanted: Command, snapshot: Snapshot | None) -> bool:
    """The forced command in force has reached its SoC target (in whole percent, as the inverter
    takes it) and the new one asks to go on: held back as a small change, the battery would
    stand idle however far the plan still wants it to go."""
    if snapshot is None or current.kind is not wanted.kind or None in (current.target_soc, wanted.target_soc):
        return False
    now_at, old, new = snapshot.soc_pct, current.target_soc or 0.0, wanted.target_soc or 0.0
    if current.kind is CommandKind.CHARGE:
        return now_at >= round(old) and new > old
    if current.kind is CommandKind.DISCHARGE:
        return now_at <= round(old) and new < old
    return False


@dataclass(frozen=True, slots=True)
class Executor:
    guard: SafetyGuard

    def decide(
        self,
        state: ExecutorState,
        intent: Intent,
        snapshot: Snapshot | None,
        now: datetime,
        import_price: float | None,
    ) -> Decision:
        guarded = self.guard.check(intent, snapshot, now, import_price)
        wanted = guarded.command
        current = state.command
        if current is not None and current == wanted:
            return Decision(current, False, "", guarded, state)
        if current is not None and state.since is not None:
            # safety, a new override, the end of one (back to the plan), and a command in force that
            # the limits no longer allow never wait for the dwell or the hysteresis
            urgent = (
                guarded.safety_fallback
                or "override" in (intent.source, state.source)
                or intent.source == "emergency"
                or not self.allowed(current, snapshot, now, import_price)
                or _finished(current, wanted, snapshot)
            )
            if not urgent and _close(current, wanted, self.guard.executor):
                return Decision(current, False, "within hysteresis", guarded, state)
            dwell = timedelta(seconds=self.guard.executor.min_dwell_s)
            if not urgent and timedelta(0) <= now - state.since < dwell:
                left = (state.since + dwell - now).total_seconds()
                return Decision(current, False, f"minimum dwell: {left:.0f} s left", guarded, state)
        new_state = ExecutorState(wanted, now, guarded.intent.source, guarded.intent.reason)
        return Decision(wanted, True, "", guarded, new_state)

    def allowed(
        self, command: Command, snapshot: Snapshot | None, now: datetime, import_price: float | None
    ) -> bool:
        """Would the guard, asked for ``command`` now, let it through unchanged (within every limit)?"""
        return self.guard.check(intent_of_command(command), snapshot, now, import_price).command == command


def intent_of_command(command: Command) -> Intent:
    """The intent that asks for ``command`` (to check a command in force against today's limits)."""
    limit = command.export_limit_w
    if command.kind is CommandKind.CHARGE:
        return Intent(Action.CHARGE, command.power_w, command.target_soc, limit, source="emergency")
    if command.kind is CommandKind.DISCHARGE:
        return Intent(Action.DISCHARGE, command.power_w, command.target_soc, limit, source="emergency")
    if command.kind is CommandKind.HOLD:
        return Intent(Action.HOLD, export_limit_w=limit, source="emergency")
    if command.kind is CommandKind.IDLE:
        return Intent(Action.IDLE, export_limit_w=limit, source="emergency")
    if command.export_limit_w is not None:
        return Intent(Action.EXPORT_LIMIT, export_limit_w=command.export_limit_w, source="emergency")
    return Intent(Action.SELF_USE, source="emergency")
