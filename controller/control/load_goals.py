"""Per-load requirements set at run time: "dishwasher done by 17:00", "boiler at 60 degC by 06:30".

A requirement belongs to one load and has a latest instant ``by``:

- an appliance: one run, started no earlier than when it was asked for, done by ``by``; the
  configured windows it overlaps are its run's (a daily window's run is this one);
- a water heater or a heat pump: its store at ``temperature_c`` or warmer at ``by`` (within its
  comfort limits ``min_c`` and ``max_c``).

A requirement is one-off (an instant) or weekly (a local time on some days of the week, with
the battery target's days and their checks, :mod:`controller.control.goals`): "dishwasher done
by 17:00 on weekdays", "tank at 55 degC by 06:30 every day". Each occurrence of a weekly one is a
requirement of its own: an appliance's run in the day before it (after the load's requirement
before it), a store's temperature then; the plans get every occurrence within ``AHEAD``.

They are set from Home Assistant, the HTTP API and ``hemsd load goal`` with the same parser
(``load_goal`` in :mod:`controller.control.commands`) and the same checks against the site's
loads (:func:`updated`): one one-off per load and one weekly per load and local time, a new one
replacing the one it matches; a cancel ends one at a time (a weekly one named by its time, else
the one due next). They live in the data manager's state table (key ``load_goals``: one-offs
under the load's name, weekly ones under ``<name>@HH:MM``), so they survive a restart, and end
by themselves: a one-off once an appliance's run is done or at its ``by``; a weekly one's
occurrence likewise, the goal staying for the next.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta, tzinfo

from controller.config.loads import ApplianceConfig, LoadConfig
from controller.config.models import HemsdConfig
from controller.control.commands import CancelLoadGoalCommand, CommandRejectedError, LoadGoalCommand
from controller.control.goals import (
    SOURCES,
    GoalError,
    check_days,
    days_text,
    next_occurrence,
    stored_instant,
    stored_number,
    weekly_instants,
)
from controller.loads.requirement import Requirement
from storage.datamanager import DataManager
from storage.records import JsonValue

log = logging.getLogger(__name__)

STATE_KEY = "load_goals"
AHEAD = timedelta(days=2)  # the weekly occurrences given to the plans (at least their horizon)
WEEK = timedelta(days=7)


class LoadGoalError(GoalError):
    """A stored requirement does not read; the message names the field and the value."""


def _what(load: str, temperature_c: float | None, by: str) -> str:
    return f"{load} done by {by}" if temperature_c is None else f"{load} at {temperature_c:g} degC by {by}"


def _check_common(source: str, set_at: datetime, temperature_c: float | None) -> None:
    if set_at.tzinfo is None:
        raise LoadGoalError(f"load_goal.set_at must carry a UTC offset, got {set_at.isoformat()!r}")
    if temperature_c is not None and not math.isfinite(temperature_c):
        raise LoadGoalError(f"load_goal.temperature_c must be finite, got {temperature_c!r}")
    if source not in SOURCES:
        raise LoadGoalError(f"load_goal.source must be one of {', '.join(SOURCES)}; got {source!r}")


@dataclass(frozen=True, slots=True)
class LoadGoal:
    """Load ``load`` done (an appliance's run) or at ``temperature_c`` (a store) by ``by``;
    asked for at ``set_at``."""

    load: str
    by: datetime
    set_at: datetime
    source: str
    temperature_c: float | None = None

    def __post_init__(self) -> None:
        if self.by.tzinfo is None:
            raise LoadGoalError(f"load_goal.by must carry a UTC offset, got {self.by.isoformat()!r}")
        _check_common(self.source, self.set_at, self.temperature_c)
        if not self.set_at < self.by:
            raise LoadGoalError(
                f"load_goal.by ({self.by.isoformat()}) must be after set_at ({self.set_at.isoformat()})"
            )

    @property
    def key(self) -> str:
        return self.load

    def expired(self, now: datetime) -> bool:
        return self.by <= now

    def requirement(self) -> Requirement:
        return Requirement(self.set_at, self.by, self.temperature_c)

    def describe(self, tz: tzinfo) -> str:
        return _what(self.load, self.temperature_c, f"{self.by.astimezone(tz):%Y-%m-%d %H:%M}")

    def command(self) -> dict[str, JsonValue]:
        """As the load's own ``goal`` topic takes it (what its Home Assistant text entity shows)."""
        body: dict[str, JsonValue] = {"at": self.by.isoformat()}
        if self.temperature_c is not None:
            body["temperature_c"] = self.temperature_c
        return body

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "load": self.load,
            "by": self.by.isoformat(),
            "set_at": self.set_at.isoformat(),
            "source": self.source,
            "temperature_c": self.temperature_c,
        }

    @classmethod
    def from_json(cls, raw: JsonValue) -> LoadGoal:
        if not isinstance(raw, dict):
            raise LoadGoalError(f"a stored load goal must be an object, got {raw!r}")
        temperature = raw.get("temperature_c")
        return cls(
            str(raw.get("load", "")),
            stored_instant(raw.get("by"), "load_goal.by"),
            stored_instant(raw.get("set_at"), "load_goal.set_at"),
            str(raw.get("source", "")),
            None if temperature is None else stored_number(temperature, "load_goal.temperature_c"),
        )


@dataclass(frozen=True, slots=True)
class WeeklyLoadGoal:
    """Load ``load`` done or at ``temperature_c`` by the local time ``by`` on each of ``days``;
    its occurrences up to ``done_until`` are over (done, missed or ended)."""

    load: str
    by: time
    days: tuple[str, ...]
    set_at: datetime
    source: str
    temperature_c: float | None = None
    done_until: datetime | None = None

    def __post_init__(self) -> None:
        _check_common(self.source, self.set_at, self.temperature_c)
        check_days("load_goal.days", self.days)
        if self.done_until is not None and self.done_until.tzinfo is None:
            raise LoadGoalError(f"load_goal.done_until must carry a UTC offset, got {self.done_until!r}")

    @property
    def key(self) -> str:
        return f"{self.load}@{self.by:%H:%M}"

    def instants(self, start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
        """Its occurrences in (start, end] that are not over."""
        after = max(start, self.set_at, self.done_until or self.set_at)
        return weekly_instants(self.by, self.days, after, end, tz)

    def requirement(self, at: datetime) -> Requirement:
        """Its occurrence at ``at``: an appliance's run in the day before."""
        return Requirement(max(at - timedelta(days=1), self.set_at), at, self.temperature_c)

    def describe(self, tz: tzinfo) -> str:
        return _what(self.load, self.temperature_c, f"{self.by:%H:%M} ({days_text(self.days)})")

    def command(self) -> dict[str, JsonValue]:
        body: dict[str, JsonValue] = {"by": f"{self.by:%H:%M}", "days": list(self.days)}
        if self.temperature_c is not None:
            body["temperature_c"] = self.temperature_c
        return body

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "load": self.load,
            "by": f"{self.by:%H:%M}",
            "days": list(self.days),
            "set_at": self.set_at.isoformat(),
            "source": self.source,
            "temperature_c": self.temperature_c,
            "done_until": None if self.done_until is None else self.done_until.isoformat(),
        }

    @classmethod
    def from_json(cls, raw: JsonValue) -> WeeklyLoadGoal:
        if not isinstance(raw, dict):
            raise LoadGoalError(f"a stored load goal must be an object, got {raw!r}")
        days, by = raw.get("days"), raw.get("by")
        if not isinstance(days, list) or not all(isinstance(d, str) for d in days):
            raise LoadGoalError(f"load_goal.days must be a list of days, got {days!r}")
        if not isinstance(by, str):
            raise LoadGoalError(f"load_goal.by must be a local time HH:MM, got {by!r}")
        temperature, done = raw.get("temperature_c"), raw.get("done_until")
        return cls(
            str(raw.get("load", "")),
            time.fromisoformat(by),
            tuple(str(d) for d in days),
            stored_instant(raw.get("set_at"), "load_goal.set_at"),
            str(raw.get("source", "")),
            None if temperature is None else stored_number(temperature, "load_goal.temperature_c"),
            None if done is None else stored_instant(done, "load_goal.done_until"),
        )


AnyLoadGoal = LoadGoal | WeeklyLoadGoal


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One requirement of a load at ``by``, and the goal it comes from."""

    by: datetime
    goal: AnyLoadGoal

    def requirement(self) -> Requirement:
        goal = self.goal
        return goal.requirement() if isinstance(goal, LoadGoal) else goal.requirement(self.by)

    def describe(self, tz: tzinfo) -> str:
        return _what(self.goal.load, self.goal.temperature_c, f"{self.by.astimezone(tz):%Y-%m-%d %H:%M}")


@dataclass(frozen=True, slots=True)
class LoadGoals:
    """The requirements in force: the one-offs by load, the weekly ones by ``<load>@HH:MM``."""

    goals: Mapping[str, LoadGoal]
    weekly: Mapping[str, WeeklyLoadGoal] = field(default_factory=dict)

    def current(self, now: datetime, tz: tzinfo) -> LoadGoals:
        """Without the one-offs that have ended; the weekly ones' occurrences up to now over."""
        weekly = {}
        for key, goal in self.weekly.items():
            passed = goal.instants(now - 2 * WEEK, now, tz)
            weekly[key] = replace(goal, done_until=passed[-1]) if passed else goal
        return LoadGoals({n: g for n, g in self.goals.items() if not g.expired(now)}, weekly)

    def passed(self, now: datetime, tz: tzinfo) -> list[Occurrence]:
        """The occurrences whose time has come and that were not done (each once: see
        :meth:`current`)."""
        out = [Occurrence(g.by, g) for g in self.goals.values() if g.expired(now)]
        for goal in self.weekly.values():
            out += [Occurrence(at, goal) for at in goal.instants(now - 2 * WEEK, now, tz)]
        return sorted(out, key=lambda o: o.by)

    def of(self, name: str) -> list[AnyLoadGoal]:
        """Load ``name``'s goals: its one-off, then its weekly ones by their time."""
        once: list[AnyLoadGoal] = [self.goals[name]] if name in self.goals else []
        return once + sorted((g for g in self.weekly.values() if g.load == name), key=lambda g: g.by)

    def upcoming(self, name: str, now: datetime, tz: tzinfo, ahead: timedelta = AHEAD) -> list[Occurrence]:
        """Load ``name``'s occurrences in (now, now + ahead], by their time."""
        out = [Occurrence(g.by, g) for g in self.of(name) if isinstance(g, LoadGoal) and not g.expired(now)]
        for goal in self.of(name):
            if isinstance(goal, WeeklyLoadGoal):
                out += [Occurrence(at, goal) for at in goal.instants(now, now + ahead, tz)]
        return sorted(out, key=lambda o: o.by)

    def requirements(self, now: datetime, tz: tzinfo) -> dict[str, Requirement]:
        """Each load's next requirement, its later ones within ``AHEAD`` riding on it; an
        appliance's run starts no earlier than the one before it is due."""
        out: dict[str, Requirement] = {}
        names = {g.load for g in self.goals.values()} | {g.load for g in self.weekly.values()}
        for name in sorted(names):
            chain: list[Requirement] = []
            for occurrence in self.upcoming(name, now, tz):
                req = occurrence.requirement()
                if req.temperature_c is None and chain:
                    req = replace(req, start=max(req.start, chain[-1].by))
                    if req.start >= req.by:
                        continue  # due at the same time as the one before: that run is this one's
                chain.append(req)
            if chain:
                out[name] = replace(chain[0], later=tuple(chain[1:]))
        return out

    def next_goal(self, name: str, now: datetime, tz: tzinfo) -> AnyLoadGoal | None:
        """Load ``name``'s goal due next (a weekly one at its next occurrence within a week)."""
        upcoming = self.upcoming(name, now, tz, WEEK)
        return upcoming[0].goal if upcoming else None

    def done(self, name: str, now: datetime, tz: tzinfo) -> tuple[LoadGoals, Occurrence] | None:
        """The goals once load ``name``'s next occurrence is done, and that occurrence."""
        upcoming = self.upcoming(name, now, tz)
        if not upcoming:
            return None
        first = upcoming[0]
        return self.ended(first.goal, first.by), first

    def ended(self, goal: AnyLoadGoal, by: datetime | None = None) -> LoadGoals:
        """Without ``goal`` (a weekly one: its occurrence at ``by`` over, or the goal itself
        without ``by``)."""
        if isinstance(goal, LoadGoal):
            return LoadGoals({n: g for n, g in self.goals.items() if g != goal}, self.weekly)
        weekly = {k: g for k, g in self.weekly.items() if k != goal.key}
        if by is not None and goal.key in self.weekly:
            before = self.weekly[goal.key].done_until
            weekly[goal.key] = replace(
                self.weekly[goal.key], done_until=by if before is None else max(before, by)
            )
        return LoadGoals(self.goals, weekly)

    def without(self, name: str) -> LoadGoals:
        return LoadGoals({n: g for n, g in self.goals.items() if n != name}, self.weekly)

    def to_json(self) -> dict[str, JsonValue]:
        goals: list[AnyLoadGoal] = [*self.goals.values(), *self.weekly.values()]
        return {g.key: g.to_json() for g in sorted(goals, key=lambda g: g.key)}

    @classmethod
    def from_json(cls, raw: JsonValue) -> LoadGoals:
        """The stored requirements; one that does not read is left out (logged), never fatal."""
        once: dict[str, LoadGoal] = {}
        weekly: dict[str, WeeklyLoadGoal] = {}
        if isinstance(raw, dict):
            for key, value in raw.items():
                try:
                    if isinstance(value, dict) and "days" in value:
                        goal = WeeklyLoadGoal.from_json(value)
                        weekly[goal.key] = goal
                    else:
                        one = LoadGoal.from_json(value)
                        once[one.load] = one
                except ValueError as exc:  # GoalError among them
                    log.warning("ignoring the stored load goal %s: %s", key, exc)
        return cls(once, weekly)


NO_LOAD_GOALS = LoadGoals({})


async def load(data: DataManager) -> LoadGoals:
    return LoadGoals.from_json(await data.get_state(STATE_KEY))


async def store(data: DataManager, goals: LoadGoals) -> None:
    await data.put_state(STATE_KEY, goals.to_json())


def _config_of(config: HemsdConfig, name: str) -> LoadConfig:
    for load_config in config.loads:
        if load_config.name == name:
            return load_config
    known = ", ".join(c.name for c in config.loads) or "none configured"
    raise CommandRejectedError("load", name, f"no such load (loads: {known})")


def _cancelled(current: LoadGoals, command: CancelLoadGoalCommand, now: datetime, tz: tzinfo) -> LoadGoals:
    if command.by is not None:
        key = f"{command.load}@{command.by:%H:%M}"
        if key not in current.weekly:
            raise CommandRejectedError("by", f"{command.by:%H:%M}", f"{command.load} has no weekly goal then")
        return current.ended(current.weekly[key])
    goal = current.next_goal(command.load, now, tz)
    goals = current.of(command.load)
    if goal is None and goals:
        goal = goals[0]
    if goal is None:
        raise CommandRejectedError("load_goal_cancel", command.load, "the load has no goal to cancel")
    return current.ended(goal)


def _check_fits(
    load_config: LoadConfig, command: LoadGoalCommand, by: datetime, now: datetime, tz: tzinfo
) -> None:
    """CommandRejectedError when the requirement does not fit the load."""
    if isinstance(load_config, ApplianceConfig):
        if command.temperature_c is not None:
            raise CommandRejectedError(
                "temperature_c", command.temperature_c, f"{command.load} is an appliance: give only by or at"
            )
        run = timedelta(minutes=load_config.duration_w_min())
        if not command.days and now + run > by:
            raise CommandRejectedError(
                "by" if command.at is None else "at",
                f"{by.astimezone(tz):%Y-%m-%d %H:%M}",
                f"{command.load}'s run ({load_config.duration_w_min()} min) does not fit between now and then",
            )
        return
    low, high = load_config.min_c, load_config.max_c
    if command.temperature_c is None:
        raise CommandRejectedError(
            "temperature_c", None, f"is required for {command.load} ({load_config.type})"
        )
    if not low <= command.temperature_c <= high:
        raise CommandRejectedError(
            "temperature_c",
            command.temperature_c,
            f"must be within {command.load}'s min_c {low:g} and max_c {high:g}",
        )


def updated(
    stored: LoadGoals,
    command: LoadGoalCommand | CancelLoadGoalCommand,
    source: str,
    now: datetime,
    config: HemsdConfig,
) -> tuple[LoadGoals, str]:
    """The requirements after a validated command (the one it matches replaced, or one
    cancelled), and what was done in words; CommandRejectedError when it does not fit the load."""
    tz = config.site.zone
    current = stored.current(now, tz)
    load_config = _config_of(config, command.load)
    if isinstance(command, CancelLoadGoalCommand):
        after = _cancelled(current, command, now, tz)
        gone = [g for g in current.of(command.load) if g not in after.of(command.load)]
        return after, f"load goal {gone[0].describe(tz)} cancelled"
    by = command.at if command.at is not None else next_occurrence(command.by or now.time(), now, tz)
    _check_fits(load_config, command, by, now, tz)
    goal: AnyLoadGoal
    try:
        if command.days and command.by is not None:
            goal = WeeklyLoadGoal(command.load, command.by, command.days, now, source, command.temperature_c)
        else:
            goal = LoadGoal(command.load, by, now, source, command.temperature_c)
    except GoalError as exc:
        raise CommandRejectedError("load_goal", command.load, str(exc)) from None
    if isinstance(goal, WeeklyLoadGoal):
        after = LoadGoals(current.goals, {**current.weekly, goal.key: goal})
    else:
        after = LoadGoals({**current.goals, goal.load: goal}, current.weekly)
    return after, f"load goal {goal.describe(tz)}"
