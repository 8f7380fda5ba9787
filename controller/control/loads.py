"""Switching the flexible loads: the plan's state for now, the house as measured, and each load's default.

Every tick :meth:`LoadSwitcher.tick` decides each load's output (``on``/``off``, or a heat
pump's ``boost``/``normal``/``block``):

- with a fresh plan, the load's planned state in the slot of now (a store's element planned for
  part of a slot runs its first part); an optional surplus-only
  appliance whose window is open also starts when the house exports its power now (a surplus the
  forecast missed);
- without one (no plan, a plan older than ``STALE_PLAN``), disabled, or unreliable: its default,
  a tank's or a heat pump's own thermostat (``on``/``normal``), an appliance's run at the user's
  time;
- a run that cannot be interrupted goes on to its end once started; an appliance stays on and
  off for its minimum times, a thermal store for ``MIN_DWELL``.

Each power reading of a load that is switched on counts towards noticing one that does not
follow: after ``unresponsive_readings`` readings below ``running_above_w`` (where it should
run: a tank below its thermostat's stop) the command is sent again; after as many more the load
is marked unreliable, left to its default and reported (:class:`LoadEvent`), and planned at its
default; after ``unreliable_retry_min`` it is tried again (``load.retried``), or when Home
Assistant says it is reliable again. The mark and its end are kept by the daemon across a
restart (:meth:`LoadSwitcher.marks`, :meth:`LoadSwitcher.mark_unreliable`). The switcher also
keeps what the planner needs of each load (:meth:`states`): an appliance's run done or under way,
a store's temperature (:meth:`temperature_reading`: a measured one where the store has a
sensor, the model going on from it between readings and once they stop; the state says which
and how old the last reading is; from the readings, the heat drawn since local midnight against
what its profile expected), the heat the element gave (measured, or as commanded).
A requirement set at run time (:meth:`LoadSwitcher.set_requirements`: an appliance's run by a
time) opens its own window; left to its default, such a run starts at once; once it is done
the switcher says so (:meth:`LoadSwitcher.take_done`), so that it ends; when the plan does not
meet it, the switcher says why (:meth:`LoadSwitcher.unreachable`).
Nothing here does I/O: the daemon sends the outputs and publishes the states.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo

import numpy as np

from controller.config.loads import (
    PROFILE_STEP_MIN,
    ApplianceConfig,
    HeatPumpConfig,
    LoadConfig,
    WaterHeaterConfig,
)
from controller.control.load_reach import unmet
from controller.loads.appliance import ApplianceState, windows
from controller.loads.joint import LoadPlan, LoadSchedule, LoadState, ThermalState
from controller.loads.requirement import Requirement
from controller.loads.thermal import DRAW_SHAPE, MIN_RUN_MIN

STALE_PLAN = timedelta(hours=1)  # an older plan is no plan: loads follow their defaults
MIN_DWELL = timedelta(minutes=MIN_RUN_MIN)  # a thermal store's output is kept at least this long
MAX_TICK_STEP = timedelta(minutes=1)  # a longer pause between ticks is not the next tick's step
SURPLUS_SHARE = 0.9  # an unforecast surplus starts an optional load when it covers this share
PLANNED_SLOTS = 16  # the planned states published with a load's state
EXPECT_RUNNING_BELOW_K = 2.0  # a tank switched on must draw unless within this of its top
OUTDOOR_STEP_S = 900  # the air temperature forecast's step
POWER_FRESH = timedelta(minutes=5)  # an older power reading is no reading: the load's model stands in
MEASURED_RANGE_C = (-40.0, 130.0)  # a store's temperature reading outside this is a sensor's fault
TEMPERATURE_DRIFT_K = 2.0  # a store measured this far from its planned path is planned again at once


LOADS_TOPIC = "load"  # the loads' sub-topic of the base (hemsd publishes and listens there)


def load_state_topic(name: str) -> str:
    """A load's state (JSON: :class:`LoadStatePayload`) under the base topic."""
    return f"{LOADS_TOPIC}/{name}/state"


def load_command_key(name: str, control: str) -> str:
    """A load's control under the base topic (``<base>/load/<name>_<control>/set``)."""
    return f"{LOADS_TOPIC}/{name}_{control}"


@dataclass(frozen=True, slots=True)
class LoadStatePayload:
    """What ``<base>/load/<name>/state`` holds."""

    name: str
    type: str
    output: str  # on / off, or boost / normal / block
    enabled: bool
    reliable: bool
    unreliable_until: str | None  # ISO time a load marked unreliable is tried again
    power_w: float | None  # measured (None: not measured)
    temperature_c: float | None  # a thermal store's: measured when fresh, else from its model
    temperature_source: str  # "measured" (a fresh reading), "model", or "" (not a store)
    temperature_age_s: float | None  # the age of the store's last reading (None: never read)
    next_run: str | None  # ISO time of its next planned run
    reason: str
    planned: list[str]  # the planned state of each of the next slots
    goal: str  # the requirement set at run time, in words ("" without one)
    goal_command: str  # the same as the load's goal topic takes it (JSON; "" without one)
    goal_unreachable: str  # why the plan does not meet its requirement ("" when it does, or none)
    draw: str  # a water heater's draw: learned from its measured power, or as configured ("" for others)


@dataclass(frozen=True, slots=True)
class LoadEvent:
    name: str
    # "load.unresponsive" (commanded again), "load.unreliable" (left to its default),
    # "load.retried" (its mark ended: planned and switched again)
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class LoadOutput:
    """What a load is told, and why."""

    name: str
    output: str
    reason: str


@dataclass
class LoadRuntime:
    config: LoadConfig
    enabled: bool
    output: str
    since: datetime | None  # when the output was last switched (None: not since the start)
    temperature_c: float | None = None
    appliance: ApplianceState = field(default_factory=ApplianceState)
    power_w: float | None = None
    power_at: datetime | None = None
    measured_at: datetime | None = None  # a store's last temperature reading
    # a measured store's hot water or heat drawn since local midnight (from its readings, the
    # heat put in and its loss), what its profile expected over the same time, and that since
    # the last reading
    drawn_today_kwh: float = 0.0
    expected_today_kwh: float = 0.0
    expected_since_kwh: float = 0.0
    day: date | None = None
    readings_idle: int = 0
    commanded_again: bool = False
    unreliable: bool = False
    unreliable_until: datetime | None = None  # tried again then (None: when told it is reliable)
    reason: str = "starting"
    schedule: LoadSchedule | None = None
    requirement: Requirement | None = None


def _default_output(config: LoadConfig) -> str:
    if isinstance(config, ApplianceConfig):
        return "off"
    return "normal" if isinstance(config, HeatPumpConfig) else "on"


def _running(output: str) -> bool:
    return output in ("on", "boost")


class LoadSwitcher:
    """The loads' outputs from the plan, the measured house and their defaults (no I/O)."""

    def __init__(self, loads: Sequence[LoadConfig], tz: tzinfo) -> None:
        self.tz = tz
        self.loads: dict[str, LoadRuntime] = {}
        for config in loads:
            temp = None if isinstance(config, ApplianceConfig) else _setpoint(config)
            self.loads[config.name] = LoadRuntime(config, config.enabled, _default_output(config), None, temp)
        self._last_tick: datetime | None = None
        self._tick_step = timedelta(0)  # the time between the last two ticks, at most MAX_TICK_STEP
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
        load = self.loads[name]
        load.unreliable, load.readings_idle, load.commanded_again = False, 0, False
        load.unreliable_until = None

    def mark_unreliable(self, name: str, until: datetime | None) -> None:
        """Load ``name`` does not follow its commands: its default until ``until`` (None: until
        it is said to be reliable again)."""
        load = self.loads[name]
        load.unreliable, load.unreliable_until = True, until

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
        """A measured power of load ``name``; the events it gives rise to."""
        load = self.loads[name]
        load.power_w, load.power_at = power_w, now
        sw = load.config.switch
        if not _running(load.output) or power_w >= sw.running_above_w or not self._should_draw(load):
            load.readings_idle = 0
            return []
        load.readings_idle += 1
        if load.readings_idle == sw.unresponsive_readings and not load.commanded_again:
            load.commanded_again = True
            load.readings_idle = 0
            return [
                LoadEvent(
                    name,
                    "load.unresponsive",
                    f"{name}: switched {load.output} but drawing {power_w:.0f} W; commanded again",
                )
            ]
        if load.readings_idle >= sw.unresponsive_readings and not load.unreliable:
            retry = sw.unreliable_retry_min
            self.mark_unreliable(name, now + timedelta(minutes=retry) if retry else None)
            return [
                LoadEvent(
                    name,
                    "load.unreliable",
                    f"{name}: still drawing {power_w:.0f} W after being commanded again; "
                    "left to its default and planned as not switchable",
                )
            ]
        return []

    def temperature_reading(self, name: str, temperature_c: float, now: datetime) -> bool:
        """A store's measured temperature: where it is now, the model going on from it until the
        next reading; whether it is more than ``TEMPERATURE_DRIFT_K`` from where the plan has the
        store now. A value no sensor of a store gives is refused, naming it; nothing changes."""
        load = self.loads[name]
        c = load.config
        if isinstance(c, ApplianceConfig):
            raise TypeError(f"temperature_topic: {name} is an appliance, not a store")
        low, high = MEASURED_RANGE_C
        if not (math.isfinite(temperature_c) and low <= temperature_c <= high):
            raise ValueError(f"temperature: {temperature_c!r} degC is outside {low:g}..{high:g}")
        planned = self._planned_c(load, now)
        if load.measured_at is not None and load.temperature_c is not None:
            # the model went on from the last reading with the profile's draw: what it is off by
            # is heat drawn beyond (or short of) the profile
            beyond = (load.temperature_c - temperature_c) * _capacity(c)
            load.drawn_today_kwh += max(load.expected_since_kwh + beyond, 0.0)
            load.expected_today_kwh += load.expected_since_kwh
        load.expected_since_kwh = 0.0
        load.temperature_c, load.measured_at = temperature_c, now
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

    def temperature_fresh(self, load: LoadRuntime, now: datetime) -> bool:
        """Is the store's last temperature reading recent enough to stand for it."""
        c = load.config
        if isinstance(c, ApplianceConfig) or load.measured_at is None:
            return False
        return now - load.measured_at <= timedelta(minutes=c.temperature_max_age_min)

    def _should_draw(self, load: LoadRuntime) -> bool:
        c = load.config
        if isinstance(c, ApplianceConfig) or load.temperature_c is None:
            return True
        return load.temperature_c < c.max_c - EXPECT_RUNNING_BELOW_K

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
                    load.temperature_c, _running(load.output), load.drawn_today_kwh, load.expected_today_kwh
                )
        return out

    def set_all_default(self, now: datetime) -> None:
        """Every load to its default at once (hemsd stops; minimum times do not hold it)."""
        for load in self.loads.values():
            load.output, load.since, load.schedule = self._default(load, now), now, None
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
                if self.temperature_fresh(load, now)
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
        dt_h = 0.0 if self._last_tick is None else max((now - self._last_tick).total_seconds(), 0.0) / 3600.0
        self._last_tick = now
        for load in self.loads.values():
            self._advance(load, now, dt_h)

    def tick(self, now: datetime, plan: LoadPlan | None, net_w: float | None) -> list[LoadOutput]:
        """Each load's output for now (``net_w``: the house's load less PV, None when unknown);
        those that changed are returned."""
        dt_h = 0.0 if self._last_tick is None else max((now - self._last_tick).total_seconds(), 0.0) / 3600.0
        self._last_tick = now
        self._tick_step = min(timedelta(hours=dt_h), MAX_TICK_STEP)
        fresh = plan is not None and plan.plan.slots and now - plan.plan.created_at <= STALE_PLAN
        slots = plan.plan.slots if fresh and plan is not None else ()
        self._plan_starts = [s.start for s in slots]
        self._plan_lengths = [s.end - s.start for s in slots]
        changed: list[LoadOutput] = []
        for name, load in self.loads.items():
            if load.unreliable and load.unreliable_until is not None and now >= load.unreliable_until:
                self.reliable_again(name)
                self._events.append(
                    LoadEvent(name, "load.retried", f"{name}: tried again after being marked unreliable")
                )
            self._advance(load, now, dt_h)
            schedule = None
            if fresh and plan is not None:
                schedule = next((s for s in plan.loads if s.name == name), None)
            load.schedule = schedule
            output, reason = self._wanted(load, now, plan if fresh else None, schedule, net_w)
            output, reason = self._kept(load, now, output, reason)
            load.reason = reason
            if output != load.output:
                self._switch(load, output, now)
                changed.append(LoadOutput(name, output, reason))
        return changed

    def _switch(self, load: LoadRuntime, output: str, now: datetime) -> None:
        c = load.config
        starts = _running(output) and not _running(load.output)
        if (
            isinstance(c, ApplianceConfig)
            and starts
            and load.appliance.started_at is None
            and not c.interruptible
        ):
            load.appliance = replace(load.appliance, started_at=now)
        load.output, load.since = output, now
        load.readings_idle, load.commanded_again = 0, False

    def _wanted(
        self,
        load: LoadRuntime,
        now: datetime,
        plan: LoadPlan | None,
        schedule: LoadSchedule | None,
        net_w: float | None,
    ) -> tuple[str, str]:
        c = load.config
        if load.unreliable:
            return self._default(load, now), f"{c.name}: does not follow its commands, its default"
        if isinstance(c, ApplianceConfig) and load.appliance.started_at is not None:
            return "on", f"{c.name}: a run goes on to its end"
        if not load.enabled:
            return self._default(load, now), f"{c.name}: disabled, its default"
        if plan is None or schedule is None:
            return self._default(load, now), f"{c.name}: no plan, its default"
        index = next((i for i, s in enumerate(plan.plan.slots) if s.start <= now < s.end), None)
        if index is None:
            return self._default(load, now), f"{c.name}: the plan does not cover now, its default"
        output = schedule.states[index]
        if (
            output == "off"
            and isinstance(c, ApplianceConfig)
            and c.optional
            and c.surplus_only
            and net_w is not None
            and self._window_open(load, now)
            and -net_w >= SURPLUS_SHARE * max(c.profile())
        ):
            return "on", f"{c.name}: {-net_w:.0f} W exported now, more than forecast"
        if isinstance(c, ApplianceConfig) and _running(output) and not self._window_open(load, now):
            return "off", f"{c.name}: no run due now (its window's run is done)"
        if _running(output) and not isinstance(c, ApplianceConfig):
            # a store's element planned for part of the slot runs its first part, switched off
            # at the tick nearest its end (at the first after it, it would heat more than planned)
            rated = c.electric_w if isinstance(c, HeatPumpConfig) else c.element_w
            slot = plan.plan.slots[index]
            share = min(schedule.power_w[index] / rated, 1.0)
            if now + self._tick_step / 2 >= slot.start + share * (slot.end - slot.start):
                return (
                    "normal" if output == "boost" else "off"
                ), f"{schedule.reason} (its share of the slot done)"
        return output, schedule.reason

    def _window_open(self, load: LoadRuntime, now: datetime) -> bool:
        c = load.config
        if not isinstance(c, ApplianceConfig):
            return False
        done = load.appliance.done_until
        duration = timedelta(minutes=c.duration_w_min())
        req = load.requirement
        if req is not None and req.temperature_c is None and req.start <= now < req.by:
            return True
        if c.repeat == "request" and not load.appliance.requested:
            return False
        return any(
            w.start <= now and now + duration <= w.end and (done is None or w.end > done)
            for w in windows(c, now, now + timedelta(minutes=1), self.tz)
        )

    def _default(self, load: LoadRuntime, now: datetime) -> str:
        c = load.config
        if not isinstance(c, ApplianceConfig):
            return _default_output(c)
        req = load.requirement
        if req is not None and req.temperature_c is None and req.start <= now < req.by:
            return "on"  # a run asked for, without hemsd to place it: at once
        when = c.default_start or c.earliest_start
        duration = timedelta(minutes=c.duration_w_min())
        for w in windows(c, now, now + timedelta(minutes=1), self.tz):
            if load.appliance.done_until is not None and w.end <= load.appliance.done_until:
                continue
            start = datetime.combine(w.start.astimezone(self.tz).date(), when, self.tz).astimezone(now.tzinfo)
            if start < w.start:
                start += timedelta(days=1)
            if start <= now < start + duration and (c.repeat == "daily" or load.appliance.requested):
                return "on"
        return "off"

    def _kept(self, load: LoadRuntime, now: datetime, output: str, reason: str) -> tuple[str, str]:
        """The output, unless the load must stay as it is a while longer."""
        if output == load.output:
            return output, reason
        c = load.config
        if isinstance(c, ApplianceConfig):
            least = timedelta(minutes=c.min_on_min if _running(load.output) else c.min_off_min)
        else:
            least = MIN_DWELL
        if load.since is not None and now - load.since < least:
            return load.output, f"{c.name}: kept {load.output} for its minimum time"
        return output, reason

    def _advance(self, load: LoadRuntime, now: datetime, dt_h: float) -> None:
        """Move the load's own state on by ``dt_h`` hours: a run's progress, a store's temperature."""
        c = load.config
        if isinstance(c, ApplianceConfig):
            st = load.appliance
            req = load.requirement
            if st.started_at is not None and now >= st.started_at + timedelta(minutes=c.duration_w_min()):
                # the windows the run was in (a required run's: those its requirement overlaps)
                required = req is not None and req.start <= st.started_at < req.by
                first, last = (
                    (req.start, req.by)
                    if req is not None and required
                    else (st.started_at, st.started_at + timedelta(minutes=1))
                )
                ended = [w.end for w in windows(c, first, last, self.tz)]
                load.appliance = ApplianceState(done_until=max(ended, default=now), requested=False)
                if required:
                    load.requirement = None
                    self._done.append(c.name)
            elif c.interruptible and _running(load.output):
                load.appliance = replace(st, ran_h=st.ran_h + dt_h)
                if load.appliance.ran_h >= c.duration_w_min() / 60.0 - 1e-9:
                    # the window's run is done: the next window's starts from nothing
                    required = req is not None and req.start <= now <= req.by
                    first, last = (req.start, req.by) if req is not None and required else (now, now)
                    ended = [w.end for w in windows(c, first, last + timedelta(minutes=1), self.tz)]
                    load.appliance = ApplianceState(done_until=max(ended, default=now))
                    if required:
                        load.requirement = None
                        self._done.append(c.name)
            elif c.interruptible and st.ran_h > 0 and not self._in_window(c, load, now):
                load.appliance = replace(st, ran_h=0.0)  # its window closed on a part of the run
            return
        if load.temperature_c is None or dt_h <= 0:
            return
        day = now.astimezone(self.tz).date()
        if day != load.day:  # a new local day: what it draws is counted from nothing
            load.day, load.drawn_today_kwh, load.expected_today_kwh = day, 0.0, 0.0
        measured = measured_w(load, now)
        power = self._modelled_w(load, now) if measured is None else measured
        cop = c.cop if isinstance(c, HeatPumpConfig) else 1.0
        outdoor = self.outdoor_at(now)
        load.expected_since_kwh += _demand_w(load, now, self.tz, outdoor) / 1000.0 * dt_h
        temp = load.temperature_c + (
            power * cop / 1000.0 * dt_h - _heat_out_w(load, now, self.tz, outdoor) / 1000.0 * dt_h
        ) / _capacity(c)
        load.temperature_c = min(temp, c.max_c)

    def _in_window(self, c: ApplianceConfig, load: LoadRuntime, now: datetime) -> bool:
        req = load.requirement
        if req is not None and req.start <= now < req.by:
            return True
        return bool(windows(c, now, now + timedelta(minutes=1), self.tz))

    def drawn_w(self, now: datetime) -> float:
        """What the loads draw now, in all: each one's measured power where a reading is fresh,
        else as its output and model say (:meth:`_modelled_w`)."""
        total = 0.0
        for load in self.loads.values():
            measured = measured_w(load, now)
            total += self._modelled_w(load, now) if measured is None else measured
        return total

    def modelled_w(self, name: str, now: datetime) -> float:
        """What load ``name`` draws now as it was told (:meth:`_modelled_w`)."""
        return self._modelled_w(self.loads[name], now)

    def _modelled_w(self, load: LoadRuntime, now: datetime) -> float:
        """A load's power as commanded: a running appliance its profile's power at this point of
        its run; a store switched on its rated power, or what holds it once at its top; a heat pump
        left to its own thermostat (``normal``) what holds the house at its setpoint."""
        c = load.config
        if isinstance(c, ApplianceConfig):
            if not _running(load.output):
                return 0.0
            profile = c.profile()
            started = load.appliance.started_at
            if started is None:
                return max(profile)
            quarter = int((now - started) / timedelta(minutes=PROFILE_STEP_MIN))
            return profile[quarter] if 0 <= quarter < len(profile) else 0.0
        rated = c.electric_w if isinstance(c, HeatPumpConfig) else c.element_w
        cop = c.cop if isinstance(c, HeatPumpConfig) else 1.0
        temp = load.temperature_c if load.temperature_c is not None else _setpoint(c)
        if load.output == "normal" and isinstance(c, HeatPumpConfig):
            top = c.setpoint_c
        elif _running(load.output):
            top = c.max_c
        else:
            return 0.0
        if temp < top:
            return rated
        return min(rated, max(_heat_out_w(load, now, self.tz, self.outdoor_at(now)), 0.0) / cop)


def measured_w(load: LoadRuntime, now: datetime) -> float | None:
    """The load's last power reading if it is fresh."""
    if load.power_w is None or load.power_at is None or now - load.power_at >= POWER_FRESH:
        return None
    return load.power_w


def _demand_w(load: LoadRuntime, now: datetime, tz: tzinfo, outdoor_c: float | None = None) -> float:
    """The hot water or the house's heat a store's profile draws now (W)."""
    c = load.config
    if isinstance(c, ApplianceConfig):
        return 0.0
    hour = now.astimezone(tz).hour
    if isinstance(c, HeatPumpConfig):
        air = None if outdoor_c is None else np.array([outdoor_c])
        return float(c.demand_w(np.array([hour], dtype=np.intp), air)[0])
    profile = c.draw_profile_kwh or tuple(c.draw_kwh_per_day * x / sum(DRAW_SHAPE) for x in DRAW_SHAPE)
    return profile[hour] * 1000.0


def _heat_out_w(load: LoadRuntime, now: datetime, tz: tzinfo, outdoor_c: float | None = None) -> float:
    """The heat a store gives off now (W): the hot water or the house's heat drawn, and its loss."""
    c = load.config
    temp = load.temperature_c
    if isinstance(c, ApplianceConfig) or temp is None:
        return 0.0
    ref = c.setpoint_c if isinstance(c, HeatPumpConfig) else c.ambient_c
    return _demand_w(load, now, tz, outdoor_c) + c.loss_w_per_k * (temp - ref)


def _capacity(config: WaterHeaterConfig | HeatPumpConfig) -> float:
    """A store's heat per kelvin (kWh/K)."""
    return config.capacity_kwh_per_k if isinstance(config, HeatPumpConfig) else config.capacity_kwh_per_k()


def _setpoint(config: WaterHeaterConfig | HeatPumpConfig) -> float:
    """A store's temperature until the model has run: its default's setpoint."""
    return config.setpoint_c if isinstance(config, HeatPumpConfig) else config.thermostat_c
