"""Battery goals: from the file and from the running daemon to the instants the planners take.

Two kinds (``controller.planner.goals`` for what the planners make of them):

- a target, "80 % by 07:00": weekly (on some days of the week, at a local time) or one-off
  (an instant; a local time without days is its next occurrence);
- a reserve, "keep >= 50 % until 18:00" (storm mode): always with its end.

The file's goals (``[[goals.targets]]``, ``[[goals.reserves]]``) stand as long as the file says
so. At run time one target and one reserve can be set besides them (Home Assistant, the HTTP API,
``hemsd goal``); a new one replaces the one before. They live in the data manager's state table
(key ``goals``), so they survive a restart, and they end by themselves: a one-off target once its
instant has passed, a reserve at its end. The control loop reads them on every tick, so that a
goal set by the CLI takes effect like one from Home Assistant; a change re-plans. The executor's
guard keeps the battery above the reserve in force whatever the plan says.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta, tzinfo

from controller.config.models import WEEKDAYS, GoalsConfig, HemsdConfig
from controller.control.commands import (
    CancelGoalCommand,
    CommandRejectedError,
    GoalReserveCommand,
    GoalTargetCommand,
)
from controller.planner.goals import SocGoals, SocReserve, SocTarget
from storage.datamanager import DataManager
from storage.records import JsonValue

log = logging.getLogger(__name__)

STATE_KEY = "goals"
MAX_AHEAD = timedelta(days=7)  # the furthest a one-off target or a reserve's end may lie
SOURCES = ("file", "mqtt", "http", "cli", "test")


class GoalError(ValueError):
    """A goal is invalid; the message names the field and the value."""


@dataclass(frozen=True, slots=True)
class TargetGoal:
    """Reach ``soc_pct``: at ``at`` (one-off), or at the local time ``by`` on each of ``days``."""

    soc_pct: float
    source: str
    at: datetime | None = None
    by: time | None = None
    days: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_soc("target.soc_pct", self.soc_pct)
        if (self.at is None) == (self.by is None):
            raise GoalError("target: give exactly one of 'at' (one-off) and 'by' with 'days' (weekly)")
        if self.at is not None and self.at.tzinfo is None:
            raise GoalError(f"target.at must carry a UTC offset, got {self.at.isoformat()!r}")
        if self.by is not None:
            check_days("target.days", self.days)
        if self.source not in SOURCES:
            raise GoalError(f"target.source must be one of {', '.join(SOURCES)}; got {self.source!r}")

    def instants(self, start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
        """Its instants in (start, end]."""
        if self.at is not None:
            return [self.at] if start < self.at <= end else []
        assert self.by is not None
        return weekly_instants(self.by, self.days, start, end, tz)

    def expired(self, now: datetime) -> bool:
        return self.at is not None and self.at <= now

    def describe(self, tz: tzinfo) -> str:
        if self.at is not None:
            return f"{self.soc_pct:.0f} % by {self.at.astimezone(tz):%Y-%m-%d %H:%M}"
        return f"{self.soc_pct:.0f} % by {self.by:%H:%M} ({days_text(self.days)})"

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "soc_pct": self.soc_pct,
            "source": self.source,
            "at": None if self.at is None else self.at.isoformat(),
            "by": None if self.by is None else self.by.strftime("%H:%M"),
            "days": list(self.days),
        }

    @classmethod
    def from_json(cls, raw: JsonValue) -> TargetGoal:
        if not isinstance(raw, dict):
            raise GoalError(f"a stored target must be an object, got {raw!r}")
        at, by, days = raw.get("at"), raw.get("by"), raw.get("days") or []
        if not isinstance(days, list) or not all(isinstance(d, str) for d in days):
            raise GoalError(f"target.days must be a list of days, got {days!r}")
        return cls(
            stored_number(raw.get("soc_pct"), "target.soc_pct"),
            str(raw.get("source", "")),
            at=None if at is None else stored_instant(at, "target.at"),
            by=None if by is None else time.fromisoformat(str(by)),
            days=tuple(str(d) for d in days),
        )


@dataclass(frozen=True, slots=True)
class ReserveGoal:
    """Keep at least ``soc_pct`` until ``until``."""

    soc_pct: float
    until: datetime
    source: str

    def __post_init__(self) -> None:
        _check_soc("reserve.soc_pct", self.soc_pct)
        if self.until.tzinfo is None:
            raise GoalError(f"reserve.until must carry a UTC offset, got {self.until.isoformat()!r}")
        if self.source not in SOURCES:
            raise GoalError(f"reserve.source must be one of {', '.join(SOURCES)}; got {self.source!r}")

    def expired(self, now: datetime) -> bool:
        return self.until <= now

    def describe(self, tz: tzinfo) -> str:
        return f"{self.soc_pct:.0f} % until {self.until.astimezone(tz):%Y-%m-%d %H:%M}"

    def to_json(self) -> dict[str, JsonValue]:
        return {"soc_pct": self.soc_pct, "until": self.until.isoformat(), "source": self.source}

    @classmethod
    def from_json(cls, raw: JsonValue) -> ReserveGoal:
        if not isinstance(raw, dict):
            raise GoalError(f"a stored reserve must be an object, got {raw!r}")
        return cls(
            stored_number(raw.get("soc_pct"), "reserve.soc_pct"),
            stored_instant(raw.get("until"), "reserve.until"),
            str(raw.get("source", "")),
        )


def check_days(field: str, days: tuple[str, ...]) -> None:
    """A weekly goal's days: at least one, each a day of the week."""
    if not days:
        raise GoalError(f"{field}: a weekly goal needs at least one day")
    for day in days:
        if day not in WEEKDAYS:
            raise GoalError(f"{field}: {day!r} is not one of {', '.join(WEEKDAYS)}")


def days_text(days: tuple[str, ...]) -> str:
    return "every day" if len(days) == len(WEEKDAYS) else ", ".join(days)


def weekly_instants(
    by: time, days: tuple[str, ...], start: datetime, end: datetime, tz: tzinfo
) -> list[datetime]:
    """The instants in (start, end] the local clock shows ``by`` on one of ``days`` (UTC)."""
    out = []
    day = start.astimezone(tz).date()
    while (first := datetime.combine(day, by, tz)) <= end:
        if first > start and WEEKDAYS[day.weekday()] in days:
            out.append(first.astimezone(UTC))
        day += timedelta(days=1)
    return out


def _check_soc(field: str, value: float) -> None:
    if not (math.isfinite(value) and 0 < value <= 100):
        raise GoalError(f"{field} must be above 0 and at most 100; got {value!r}")


def stored_number(value: JsonValue, field: str) -> float:
    """A stored goal's number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GoalError(f"{field} must be a number, got {value!r}")
    return float(value)


def stored_instant(value: JsonValue, field: str) -> datetime:
    """A stored goal's instant: an ISO 8601 string with its UTC offset."""
    if not isinstance(value, str):
        raise GoalError(f"{field} must be an ISO 8601 string, got {value!r}")
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise GoalError(f"{field} must carry a UTC offset, got {value!r}")
    return when


@dataclass(frozen=True, slots=True)
class RuntimeGoals:
    """The goals set while the daemon runs: at most one target and one reserve."""

    target: TargetGoal | None = None
    reserve: ReserveGoal | None = None

    def current(self, now: datetime) -> RuntimeGoals:
        """Without the goals that have ended."""
        target = None if self.target is None or self.target.expired(now) else self.target
        reserve = None if self.reserve is None or self.reserve.expired(now) else self.reserve
        return RuntimeGoals(target, reserve)

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "target": None if self.target is None else self.target.to_json(),
            "reserve": None if self.reserve is None else self.reserve.to_json(),
        }

    @classmethod
    def from_json(cls, raw: JsonValue) -> RuntimeGoals:
        """The stored goals; a part that does not read is left out (logged), never fatal."""
        if not isinstance(raw, dict):
            return cls()
        parts: dict[str, TargetGoal | ReserveGoal | None] = {"target": None, "reserve": None}
        for name, kind in (("target", TargetGoal), ("reserve", ReserveGoal)):
            value = raw.get(name)
            if value is None:
                continue
            try:
                parts[name] = kind.from_json(value)
            except (GoalError, ValueError) as exc:
                log.warning("ignoring the stored %s goal: %s", name, exc)
        target, reserve = parts["target"], parts["reserve"]
        return cls(
            target if isinstance(target, TargetGoal) else None,
            reserve if isinstance(reserve, ReserveGoal) else None,
        )


async def load(data: DataManager) -> RuntimeGoals:
    return RuntimeGoals.from_json(await data.get_state(STATE_KEY))


async def store(data: DataManager, goals: RuntimeGoals) -> None:
    await data.put_state(STATE_KEY, goals.to_json())


def file_goals(config: GoalsConfig, tz: tzinfo) -> tuple[list[TargetGoal], list[ReserveGoal]]:
    """The file's goals as run-time ones are (a one-day target at its instant)."""
    targets = [
        TargetGoal(t.soc_pct, "file", at=datetime.combine(t.on, t.by, tz).astimezone(UTC))
        if t.on is not None
        else TargetGoal(t.soc_pct, "file", by=t.by, days=tuple(t.days))
        for t in config.targets
    ]
    reserves = [ReserveGoal(r.soc_pct, r.until.astimezone(UTC), "file") for r in config.reserves]
    return targets, reserves


def in_force(
    config: GoalsConfig, runtime: RuntimeGoals, now: datetime, horizon: timedelta, tz: tzinfo
) -> SocGoals:
    """Every goal that bears on (now, now + horizon], as the planners take them."""
    targets, reserves = file_goals(config, tz)
    current = runtime.current(now)
    targets += [current.target] if current.target is not None else []
    reserves += [current.reserve] if current.reserve is not None else []
    end = now + horizon
    return SocGoals(
        targets=tuple(SocTarget(t.soc_pct, at) for t in targets for at in sorted(t.instants(now, end, tz))),
        reserves=tuple(SocReserve(r.soc_pct, r.until) for r in reserves if not r.expired(now)),
    )


def updated(
    stored: RuntimeGoals,
    command: GoalTargetCommand | GoalReserveCommand | CancelGoalCommand,
    source: str,
    now: datetime,
    config: HemsdConfig,
) -> tuple[RuntimeGoals, str]:
    """The run-time goals after a validated command (the one of its kind replaced or cancelled),
    and what was done in words; CommandRejectedError when it does not fit this site."""
    tz = config.site.zone
    current = stored.current(now)
    top = config.battery.max_soc_pct
    if not isinstance(command, CancelGoalCommand) and command.soc_pct > top:
        raise CommandRejectedError("soc_pct", command.soc_pct, f"is above battery.max_soc_pct ({top:g})")
    try:
        match command:
            case GoalTargetCommand(soc_pct=soc, at=at, by=by, days=days):
                if at is None and not days and by is not None:
                    at, by = next_occurrence(by, now, tz), None
                target = TargetGoal(soc, source, at=at, by=by, days=days)
                return replace(current, target=target), f"goal target {target.describe(tz)}"
            case GoalReserveCommand(soc_pct=soc, until=until):
                reserve = ReserveGoal(soc, until, source)
                return replace(current, reserve=reserve), f"goal reserve {reserve.describe(tz)}"
            case CancelGoalCommand(kind=kind):
                if getattr(current, kind) is None:
                    raise CommandRejectedError("goal_cancel", kind, f"there is no {kind} goal to cancel")
                return replace(current, **{kind: None}), f"goal {kind} cancelled"
    except GoalError as exc:
        raise CommandRejectedError("goal", type(command).__name__, str(exc)) from None


def next_occurrence(by: time, now: datetime, tz: tzinfo) -> datetime:
    """The next instant (after ``now``) the local clock shows ``by``."""
    local = now.astimezone(tz)
    when = datetime.combine(local.date(), by, tz)
    if when <= now:
        when = datetime.combine(local.date() + timedelta(days=1), by, tz)
    return when.astimezone(UTC)
