"""Switching the flexible loads: the plan's state for now, the house as measured, and each load's default.

Every tick :meth:`LoadSwitcher.tick` decides each load's output (``on``/``off``, or a heat
pump's ``boost``/``normal``/``block``) by the rules of :mod:`controller.control.load_rules`: the
plan's state in the slot of now while the plan is fresh (a plan older than ``STALE_PLAN`` is no
plan), else the load's default, held for its minimum times. Each power reading counts towards
noticing a load that does not follow (:mod:`controller.control.load_response`): commanded again,
then marked unreliable, left to its default and reported (:class:`LoadEvent`), and tried again
after ``unreliable_retry_min`` or when Home Assistant says it is reliable again. The mark and its
end are kept by the daemon across a restart (:meth:`LoadSwitcher.marks`,
:meth:`LoadSwitcher.mark_unreliable`).

The switcher also keeps what the planner needs of each load (:meth:`states`): an appliance's run
done or under way, a store's temperature (:meth:`temperature_reading`, the model of
:mod:`controller.control.load_model` going on from it between readings and once they stop; the
state says which and how old the last reading is; from the readings, the heat drawn since local
midnight against what its profile expected), the heat the element gave (measured, or as
commanded). A requirement set at run time (:meth:`LoadSwitcher.set_requirements`: an
appliance's run by a time) opens its own window; left to its default, such a run starts at once;
once it is done the switcher says so (:meth:`LoadSwitcher.take_done`), so that it ends; when the
plan does not meet it, the switcher says why (:meth:`LoadSwitcher.unreachable`).
Nothing here does I/O: the daemon sends the outputs and publishes the states
(:mod:`controller.control.load_state` holds the payloads).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo

from controller.config.loads import ApplianceConfig, LoadConfig
from controller.control import load_model, load_response, load_rules
from controller.control.load_reach import unmet
from controller.control.load_state import (
    LoadEvent,
    LoadOutput,
    LoadRuntime,
    LoadStatePayload,
    default_output,
    may_heat,
)
from controller.loads.joint import LoadPlan, LoadState, ThermalState
from controller.loads.requirement import Requirement

STALE_PLAN = timedelta(hours=1)  # an older plan is no plan: loads follow their defaults
PLANNED_SLOTS = 16  # the planned states published with a load's state
OUTDOOR_STEP_S = 900  # the air temperature forecast's step
TEMPERATURE_DRIFT_K = 2.0  # a store measured this far from its planned path is planned again at once


class LoadSwitcher:
    """The loads' outputs from the plan, the measured house and their defaults (no I/O)."""

    def __init__(self, loads: Sequence[LoadConfig], tz: tzinfo) -> None:
        self.tz = tz
        self.loads: dict[str, LoadRuntime] = {}
        for config in loads:
            temp = None if isinstance(config, ApplianceConfig) else load_model.setpoint(config)
            self.loads[config.name] = LoadRuntime(config, config.enabled, default_output(config), None, temp)
        self._last_tick: datetime | None = None
        self._done: list[str] = []
        self._events: list[LoadEvent] = []
        self._outdoor: dict[int, float] = {}  # quarter-hour (epoch / 900) -> air temperature forecast
        self._plan_starts: list[datetime] = []
        self._plan_lengths: list[timedelta] = []

    # ---- inputs -------------------------------------------------------------------------------
    def set_enabled(self, name: str, enabled: bool) -> None:
        self.loads[name].enabled = enabled

    def request(self, name: str) -> None:
        load = self.loads[name]
        load.appliance = replace(load.appliance, requested=True)

    def set_requirements(self, requirements: dict[str, Requirement]) -> None:
        """The loads' requirements in force (the others have none)."""
        for name, load in self.loads.items():
            load.requirement = requirements.get(name)

    def take_done(self) -> list[str]:
        """The loads whose required run was done since the last call."""
        done, self._done = self._done, []
        return done

    def reliable_again(self, name: str) -> None:
        load_response.reliable_again(self.loads[name])

    def mark_unreliable(self, name: str, until: datetime | None) -> None:
        """Load ``name`` does not follow its commands: its default until ``until`` (None: until
        it is said to be reliable again)."""
        load_response.mark_unreliable(self.loads[name], until)

    def marks(self) -> dict[str, datetime | None]:
        """The loads marked unreliable, each with when it is tried again."""
        return {n: load.unreliable_until for n, load in self.loads.items() if load.unreliable}

    def set_outdoor(self, starts: Sequence[datetime], outdoor_c: Sequence[float]) -> None:
        """The air temperature forecast (degC, NaN: unknown) of the quarter-hours from ``starts``."""
        self._outdoor = {
            int(s.timestamp()) // OUTDOOR_STEP_S: float(t)
            for s, t in zip(starts, outdoor_c, strict=True)
            if math.isfinite(t)
        }

    def outdoor_at(self, now: datetime) -> float | None:
        return self._outdoor.get(int(now.timestamp()) // OUTDOOR_STEP_S)

    def take_events(self) -> list[LoadEvent]:
        """What the ticks since the last call gave rise to (a mark ended)."""
        events, self._events = self._events, []
        return events

    def power_reading(self, name: str, power_w: float, now: datetime) -> list[LoadEvent]:
        """A measured power of load ``name``; the events it gives rise to. A value no meter of a
        load gives is refused (ValueError naming it) and changes nothing."""
        return load_response.follow_reading(self.loads[name], load_model.check_power(power_w), now)

    def temperature_reading(self, name: str, temperature_c: float, now: datetime) -> bool:
        """A store's measured temperature (:func:`controller.control.load_model.take_temperature`);
        whether it is more than ``TEMPERATURE_DRIFT_K`` from where the plan has the store now."""
        load = self.loads[name]
        planned = self._planned_c(load, now)
        load_model.take_temperature(load, temperature_c, now)
        return planned is not None and abs(temperature_c - planned) > TEMPERATURE_DRIFT_K

    def _planned_c(self, load: LoadRuntime, now: datetime) -> float | None:
        """Where the plan has a store at ``now``: between its slot's start and the next's."""
        schedule = load.schedule
        if schedule is None or not schedule.temperature_c or not self._plan_starts:
            return None
        temps = schedule.temperature_c
        for i, start in enumerate(self._plan_starts[: len(temps)]):
            length = self._plan_lengths[i]
            if start <= now < start + length:
                after = temps[i + 1] if i + 1 < len(temps) else temps[i]
                return temps[i] + (after - temps[i]) * ((now - start) / length)
        return None

    # ---- what the planner needs ---------------------------------------------------------------
    def at_default(self) -> set[str]:
        """The loads the plan is to leave at their defaults: disabled, or not following."""
        return {name for name, load in self.loads.items() if not load.enabled or load.unreliable}

    def states(self) -> dict[str, LoadState]:
        out: dict[str, LoadState] = {}
        for name, load in self.loads.items():
            if load.temperature_c is None:
                out[name] = load.appliance
            else:
                out[name] = ThermalState(
                    load.temperature_c,
                    may_heat(load),
                    max(load.drawn_today_kwh, 0.0),
                    load.expected_today_kwh,
                )
        return out

    def set_all_default(self, now: datetime) -> None:
        """Every load to its default at once (hemsd stops; minimum times do not hold it)."""
        for load in self.loads.values():
            load.output, load.since, load.schedule = load_rules.default_now(load, now, self.tz), now, None
            load.reason = f"{load.config.name}: hemsd stopped, its default"

    def requirements(self) -> dict[str, Requirement]:
        return {n: load.requirement for n, load in self.loads.items() if load.requirement is not None}

    def payload(
        self, name: str, now: datetime, goal: str = "", goal_command: str = "", draw: str = ""
    ) -> LoadStatePayload:
        """What ``<base>/load/<name>/state`` says of the load now."""
        load = self.loads[name]
        schedule = load.schedule
        planned: list[str] = []
        next_run = None
        if schedule is not None and self._plan_starts:
            ahead = [i for i, start in enumerate(self._plan_starts) if start + self._plan_lengths[i] > now]
            planned = [schedule.states[i] for i in ahead[:PLANNED_SLOTS]]
            runs = [self._plan_starts[i] for i in ahead if schedule.states[i] in ("on", "boost")]
            next_run = max(runs[0], now).isoformat() if runs else None
        return LoadStatePayload(
            name=name,
            type=load.config.type,
            output=load.output,
            enabled=load.enabled,
            reliable=not load.unreliable,
            unreliable_until=None if load.unreliable_until is None else load.unreliable_until.isoformat(),
            power_w=load.power_w,
            temperature_c=None if load.temperature_c is None else round(load.temperature_c, 2),
            temperature_source=(
                ""
                if load.temperature_c is None
                else "measured"
                if load_model.temperature_fresh(load, now)
                else "model"
            ),
            temperature_age_s=(
                None if load.measured_at is None else round((now - load.measured_at).total_seconds(), 1)
            ),
            next_run=next_run,
            reason=load.reason,
            planned=planned,
            goal=goal,
            goal_command=goal_command,
            goal_unreachable=self.unreachable(name, now),
            draw=draw,
        )

    def unreachable(self, name: str, now: datetime) -> str:
        """Why the plan does not meet load ``name``'s requirement ("" when it does, or it has none)."""
        load = self.loads[name]
        return unmet(
            load.config,
            load.requirement,
            enabled=load.enabled,
            unreliable=load.unreliable,
            schedule=load.schedule,
            starts=self._plan_starts,
            ends=[s + n for s, n in zip(self._plan_starts, self._plan_lengths, strict=True)],
            appliance=load.appliance,
            now=now,
            tz=self.tz,
        )

    # ---- the tick -----------------------------------------------------------------------------
    def advance(self, now: datetime) -> None:
        """Each load's own state moved on to ``now`` as it is switched (a run's progress, a
        store's temperature), without switching: what a plan made now starts from."""
        dt_h = self._hours_since_last(now)
        for load in self.loads.values():
            self._advance(load, now, dt_h)

    def tick(self, now: datetime, plan: LoadPlan | None, net_w: float | None) -> list[LoadOutput]:
        """Each load's output for now (``net_w``: the house's load less PV, None when unknown);
        those that changed are returned."""
        dt_h = self._hours_since_last(now)
        fresh = plan is not None and plan.plan.slots and now - plan.plan.created_at <= STALE_PLAN
        slots = plan.plan.slots if fresh and plan is not None else ()
        self._plan_starts = [s.start for s in slots]
        self._plan_lengths = [s.end - s.start for s in slots]
        changed: list[LoadOutput] = []
        for name, load in self.loads.items():
            retried = load_response.retried(load, now)
            if retried is not None:
                self._events.append(retried)
            self._advance(load, now, dt_h)
            schedule = None
            if fresh and plan is not None:
                schedule = next((s for s in plan.loads if s.name == name), None)
            load.schedule = schedule
            output, reason = load_rules.wanted(load, now, plan if fresh else None, schedule, net_w, self.tz)
            output, reason = load_rules.kept(load, now, output, reason)
            load.reason = reason
            if output != load.output:
                load_rules.switch(load, output, now)
                changed.append(LoadOutput(name, output, reason))
        return changed

    def _hours_since_last(self, now: datetime) -> float:
        """The hours since the last tick or advance (0 at the first), ``now`` the last from here.
        A clock stepped back moves every load's instants back with it (:meth:`_stepped_back`)."""
        last = self._last_tick
        if last is not None and now < last:
            self._stepped_back(last - now)
        dt_h = 0.0 if last is None else max((now - last).total_seconds(), 0.0) / 3600.0
        self._last_tick = now
        return dt_h

    def _stepped_back(self, step: timedelta) -> None:
        """The clock stepped back by ``step``: a run, an output's minimum time, a reading's age and
        an unreliable mark go on from where they were (a run started an hour ago is still an hour
        old), rather than a run lasting as long again as the step. The windows done stay done."""
        for load in self.loads.values():
            started = load.appliance.started_at
            if started is not None:
                load.appliance = replace(load.appliance, started_at=started - step)
            load.since = None if load.since is None else load.since - step
            load.power_at = None if load.power_at is None else load.power_at - step
            load.measured_at = None if load.measured_at is None else load.measured_at - step
            until = load.unreliable_until
            load.unreliable_until = None if until is None else until - step

    def _advance(self, load: LoadRuntime, now: datetime, dt_h: float) -> None:
        """Move the load's own state on by ``dt_h`` hours: a run's progress, a store's temperature."""
        if isinstance(load.config, ApplianceConfig):
            if load_rules.advance_run(load, now, dt_h, self.tz):
                self._done.append(load.config.name)
            return
        load_model.advance_store(load, now, dt_h, self.tz, self.outdoor_at(now))

    def drawn_w(self, now: datetime) -> float:
        """What the loads draw now, in all: each one's measured power where a reading is fresh,
        else as its output and model say (:func:`controller.control.load_model.modelled_w`)."""
        total = 0.0
        for load in self.loads.values():
            measured = load_model.measured_w(load, now)
            total += self._modelled_w(load, now) if measured is None else measured
        return total

    def modelled_w(self, name: str, now: datetime) -> float:
        """What load ``name`` draws now as it was told (:func:`controller.control.load_model.modelled_w`)."""
        return self._modelled_w(self.loads[name], now)

    def _modelled_w(self, load: LoadRuntime, now: datetime) -> float:
        return load_model.modelled_w(load, now, self.tz, self.outdoor_at(now))
