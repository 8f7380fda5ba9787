"""The loads' requirements between storage and the switcher, and whether the plan meets them.

The requirements (:mod:`controller.control.load_goals`) are read from storage on every tick and
before every plan (those read before stand when storage fails); one past its time is removed
there (``load.goal_missed``: an appliance's run not done; ``load.goal_ended``), as is one whose
run is done (``load.goal_done``); a weekly one's occurrence ends so, the goal staying for the
next. When the plan stops meeting a load's requirement
(:meth:`controller.control.loads.LoadSwitcher.unreachable`) a ``load.goal_unreachable`` event is
given; ``load.goal_reachable`` when it meets it again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime

from controller.config.models import HemsdConfig
from controller.control import load_goals
from controller.control.load_state import LoadEvent
from controller.control.loads import LoadSwitcher
from storage import StorageError
from storage.datamanager import DataManager

log = logging.getLogger(__name__)


class LoadGoalLink:
    """The stored load goals, given to the switcher; the events of their ends and reach."""

    def __init__(
        self, config: HemsdConfig, data: DataManager, switcher: LoadSwitcher, now: Callable[[], datetime]
    ) -> None:
        self.config, self.data, self.switcher, self.now = config, data, switcher, now
        self.goals = load_goals.NO_LOAD_GOALS
        self._unreachable: dict[str, str] = {}  # why each load's requirement is not reachable ("": it is)

    async def read(self) -> tuple[bool, list[LoadEvent]]:
        """The requirements as stored given to the switcher; whether they changed, and the events
        of those that passed their time."""
        now, tz = self.now(), self.config.site.zone
        events: list[LoadEvent] = []
        try:
            everything = await load_goals.load(self.data)
            stored = everything.current(now, tz)
            if stored != everything:  # those past their time end, and are said to have
                await load_goals.store(self.data, stored)
                events = self._expired(everything.passed(now, tz))
        except StorageError as exc:
            log.warning("loads: goals not readable, using those read before: %s", exc)
            stored = self.goals.current(now, tz)
        changed = stored != self.goals
        self.goals = stored
        self.switcher.set_requirements(stored.requirements(now, tz))
        return changed, events

    def _expired(self, passed: list[load_goals.Occurrence]) -> list[LoadEvent]:
        tz = self.config.site.zone
        out = []
        for occurrence in passed:
            name, text = occurrence.goal.load, occurrence.describe(tz)
            if occurrence.goal.temperature_c is None:
                out.append(LoadEvent(name, "load.goal_missed", f"{text}: its run was not done in time"))
            else:
                out.append(LoadEvent(name, "load.goal_ended", f"{text}: its time has come"))
        return out

    async def done(self, now: datetime) -> list[LoadEvent]:
        """The requirements whose run is done, ended in storage (a weekly one's occurrence)."""
        tz = self.config.site.zone
        events = []
        for name in self.switcher.take_done():
            found = self.goals.done(name, now, tz)
            if found is None:
                continue
            self.goals, occurrence = found
            try:
                stored = (await load_goals.load(self.data)).current(now, tz)
                after = stored.ended(occurrence.goal, occurrence.by)
                if after != stored:
                    await load_goals.store(self.data, after)
            except StorageError as exc:
                log.warning("load %s: its done goal not ended: %s", name, exc)
            text = occurrence.describe(tz)
            events.append(LoadEvent(name, "load.goal_done", f"{text}: done at {now:%H:%M} UTC"))
        self.switcher.set_requirements(self.goals.requirements(now, tz))
        return events

    def reach(self, name: str, now: datetime) -> list[LoadEvent]:
        """An event when the plan stops (or starts again) meeting the load's requirement."""
        why = self.switcher.unreachable(name, now)
        before = self._unreachable.get(name, "")
        self._unreachable[name] = why
        if why and not before:
            return [LoadEvent(name, "load.goal_unreachable", f"{why} (not reachable)")]
        if before and not why and self.switcher.loads[name].requirement is not None:
            return [LoadEvent(name, "load.goal_reachable", f"{name}: its requirement is reachable again")]
        return []

    def described(self, name: str, now: datetime) -> tuple[str, str]:
        """Load ``name``'s goals in words, and its next one as its goal topic takes it ("" without)."""
        tz = self.config.site.zone
        goals = self.goals.of(name)
        text = "; ".join(g.describe(tz) for g in goals)
        upcoming = self.goals.next_goal(name, now, tz) or (goals[0] if goals else None)
        command = "" if upcoming is None else json.dumps(upcoming.command())
        return text, command
