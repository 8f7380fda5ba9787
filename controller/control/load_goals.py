"""Per-load requirements set at run time: "dishwasher done by 17:00", "boiler at 60 degC by 06:30".

A requirement belongs to one load and has a latest instant ``by``:

- an appliance: one run, started no earlier than when it was asked for, done by ``by``; the
  configured windows it overlaps are its run's (a daily window's run is this one);
- a water heater or a heat pump: its store at ``temperature_c`` or warmer at ``by`` (within its
  comfort limits ``min_c`` and ``max_c``).

They are set from Home Assistant, the HTTP API and ``hemsd load goal`` with the same parser
(``load_goal`` in :mod:`controller.control.commands`) and the same checks against the site's
loads (:func:`updated`); one per load, a new one replaces the one before. They live in the data
manager's state table (key ``load_goals``), so they survive a restart, and end by themselves: an
appliance's once its run is done, every one at its ``by``. The loads' link reads them on every
tick and before every plan.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from controller.config.loads import ApplianceConfig, LoadConfig
from controller.config.models import HemsdConfig
from controller.control.commands import CancelLoadGoalCommand, CommandRejectedError, LoadGoalCommand
from controller.control.goals import SOURCES, GoalError, next_occurrence, stored_instant, stored_number
from controller.loads.requirement import Requirement
from storage.datamanager import DataManager
from storage.records import JsonValue

log = logging.getLogger(__name__)

STATE_KEY = "load_goals"


class LoadGoalError(GoalError):
    """A stored requirement does not read; the message names the field and the value."""


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
        for field, when in (("by", self.by), ("set_at", self.set_at)):
            if when.tzinfo is None:
                raise LoadGoalError(f"load_goal.{field} must carry a UTC offset, got {when.isoformat()!r}")
        if not self.set_at < self.by:
            raise LoadGoalError(
                f"load_goal.by ({self.by.isoformat()}) must be after set_at ({self.set_at.isoformat()})"
            )
        if self.temperature_c is not None and not math.isfinite(self.temperature_c):
            raise LoadGoalError(f"load_goal.temperature_c must be finite, got {self.temperature_c!r}")
        if self.source not in SOURCES:
            raise LoadGoalError(f"load_goal.source must be one of {', '.join(SOURCES)}; got {self.source!r}")

    def expired(self, now: datetime) -> bool:
        return self.by <= now

    def requirement(self) -> Requirement:
        return Requirement(self.set_at, self.by, self.temperature_c)

    def describe(self, tz: tzinfo) -> str:
        by = f"{self.by.astimezone(tz):%Y-%m-%d %H:%M}"
        if self.temperature_c is None:
            return f"{self.load} done by {by}"
        return f"{self.load} at {self.temperature_c:g} degC by {by}"

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
class LoadGoals:
    """The requirements in force, by load."""

    goals: Mapping[str, LoadGoal]

    def current(self, now: datetime) -> LoadGoals:
        """Without the ones that have ended."""
        return LoadGoals({n: g for n, g in self.goals.items() if not g.expired(now)})

    def requirements(self) -> dict[str, Requirement]:
        return {n: g.requirement() for n, g in self.goals.items()}

    def without(self, name: str) -> LoadGoals:
        return LoadGoals({n: g for n, g in self.goals.items() if n != name})

    def to_json(self) -> dict[str, JsonValue]:
        return {n: g.to_json() for n, g in sorted(self.goals.items())}

    @classmethod
    def from_json(cls, raw: JsonValue) -> LoadGoals:
        """The stored requirements; one that does not read is left out (logged), never fatal."""
        out: dict[str, LoadGoal] = {}
        if isinstance(raw, dict):
            for name, value in raw.items():
                try:
                    goal = LoadGoal.from_json(value)
                except ValueError as exc:  # GoalError among them
                    log.warning("ignoring the stored goal of load %s: %s", name, exc)
                    continue
                out[goal.load] = goal
        return cls(out)


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


def updated(
    stored: LoadGoals,
    command: LoadGoalCommand | CancelLoadGoalCommand,
    source: str,
    now: datetime,
    config: HemsdConfig,
) -> tuple[LoadGoals, str]:
    """The requirements after a validated command (the load's replaced or cancelled), and what
    was done in words; CommandRejectedError when it does not fit the load."""
    current = stored.current(now)
    load_config = _config_of(config, command.load)
    if isinstance(command, CancelLoadGoalCommand):
        if command.load not in current.goals:
            raise CommandRejectedError("load_goal_cancel", command.load, "the load has no goal to cancel")
        return current.without(command.load), f"load goal of {command.load} cancelled"
    tz = config.site.zone
    by = command.at if command.at is not None else next_occurrence(command.by or now.time(), now, tz)
    if isinstance(load_config, ApplianceConfig):
        if command.temperature_c is not None:
            raise CommandRejectedError(
                "temperature_c", command.temperature_c, f"{command.load} is an appliance: give only by or at"
            )
        run = timedelta(minutes=load_config.duration_w_min())
        if now + run > by:
            raise CommandRejectedError(
                "by" if command.at is None else "at",
                f"{by.astimezone(tz):%Y-%m-%d %H:%M}",
                f"{command.load}'s run ({load_config.duration_w_min()} min) does not fit between now and then",
            )
    else:
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
    try:
        goal = LoadGoal(command.load, by, now, source, command.temperature_c)
    except LoadGoalError as exc:
        raise CommandRejectedError("load_goal", command.load, str(exc)) from None
    return LoadGoals({**current.goals, command.load: goal}), f"load goal {goal.describe(tz)}"
