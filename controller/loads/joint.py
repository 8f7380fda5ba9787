"""One plan for the battery and the flexible loads, by decomposition.

The battery is planned with the loads at their defaults (thermostat, the user's time); each
load is then placed against what energy costs in each slot with that plan (its expected cost
over the forecast's cases, :mod:`controller.loads.marginal`), the loads placed before it and
the others' last places counted in, those moving the most energy first (the smaller ones then
fit around them, whatever the order of the configuration); the placed loads join the load forecast and the battery is
re-planned, until no load moves, a plan costs no less than the one before it (the loads then
swing about the best, placed against values of plans without them) or ``MAX_ROUNDS`` plans were
made. Of the plans made, the one of least cost is kept: the first has every load at its default,
so the joint plan is never worse than the defaults by the plan's own reckoning (unless a
requirement is in force, which the defaults do not hold).

A load's requirement set at run time (:mod:`controller.loads.requirement`: a run done by a
time, a store warm enough by one) is placed within it, and the load's reason says so or that it
cannot be reached; a load planned at its default runs a required run at once.

With no loads nothing of this runs: the battery's plan is made exactly as before.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

from controller.config.loads import ApplianceConfig, HeatPumpConfig, LoadConfig, WaterHeaterConfig
from controller.loads.appliance import ApplianceState, default_start, due_windows, place_appliance, run_power
from controller.loads.marginal import MarginalCost, SlotArrays
from controller.loads.requirement import REACHED_K, Requirement, floor_c, slot_of
from controller.loads.thermal import (
    GUARD_HOURS,
    ThermalRun,
    ThermalStore,
    levels,
    place,
    seen_today,
    thermal_store,
    thermostat_run,
)
from controller.physics import BatteryParams, GridLimits
from controller.planner.plan import Plan, SlotValues

FloatArray = npt.NDArray[np.float64]
MAX_ROUNDS = 8
MOVED_W = 1.0  # a load moved when its power in some slot changed by more than this


@dataclass(frozen=True, slots=True)
class ThermalState:
    temperature_c: float
    heating: bool = False
    # the heat drawn since local midnight as measured, and what the profile expected over the
    # same time (both 0 where nothing measures it): what the rest of the day will likely draw
    drawn_today_kwh: float = 0.0
    expected_today_kwh: float = 0.0


LoadState = ApplianceState | ThermalState


@dataclass(frozen=True, slots=True)
class LoadSchedule:
    """A load's part of the plan: its power and state per slot, and why."""

    name: str
    type: str
    power_w: tuple[float, ...]
    states: tuple[str, ...]  # "on"/"off", or a heat pump's "boost"/"normal"/"block"
    temperature_c: tuple[float, ...]  # a thermal store's at each slot's start (empty for others)
    energy_kwh: float
    next_run: datetime | None  # the start of the next slot it runs in (boosted, for a heat pump)
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type,
            "power_w": [round(w, 1) for w in self.power_w],
            "states": list(self.states),
            "temperature_c": [round(t, 2) for t in self.temperature_c],
            "energy_kwh": round(self.energy_kwh, 4),
            "next_run": None if self.next_run is None else self.next_run.isoformat(),
            "reason": self.reason,
        }


@dataclass(frozen=True, eq=False)
class LoadPlan:
    """The battery's plan (its load forecast holds the loads' runs) and each load's schedule."""

    plan: Plan
    loads: tuple[LoadSchedule, ...]
    rounds: int
    solve_ms: float

    def to_dict(self) -> dict[str, object]:
        return {
            "rounds": self.rounds,
            "solve_ms": round(self.solve_ms, 3),
            "loads": [s.to_dict() for s in self.loads],
        }


@dataclass(frozen=True, slots=True, eq=False)
class Horizon:
    starts: tuple[datetime, ...]
    ends: tuple[datetime, ...]
    tz: tzinfo
    outdoor_c: FloatArray | None = None  # the air temperature forecast per slot (NaN: unknown)
    guard_h: float = GUARD_HOURS  # a store's guard: against the draw of these hours before a slot's end

    def dt_h(self) -> FloatArray:
        return np.array(
            [(e - s).total_seconds() / 3600.0 for s, e in zip(self.starts, self.ends, strict=True)]
        )


@dataclass(frozen=True, eq=False)
class _Placed:
    power_w: FloatArray
    schedule: LoadSchedule
    value: float  # an optional run's worth to the user (counted against its cost)


def default_run(
    config: LoadConfig,
    state: LoadState | None,
    horizon: Horizon,
    requirement: Requirement | None = None,
) -> _Placed:
    """What the load does without hemsd: its thermostat, or its run at the user's time (a
    required run at once)."""
    if isinstance(config, ApplianceConfig):
        st = state if isinstance(state, ApplianceState) else ApplianceState()
        power = _default_appliance(config, st, horizon, requirement)
        why = f"{config.name}: at its default time"
        if requirement is not None and requirement.temperature_c is None:
            why += f"; the run asked for ({requirement.describe(horizon.tz)}) at once"
        return _Placed(power, _schedule(config, power, (), horizon, why), 0.0)
    th, store = _store(config, state, horizon)
    run = thermostat_run(store, th.temperature_c, th.heating)
    why = "on its own thermostat" + _required(run, requirement, horizon)
    return _Placed(run.power_w, _thermal_schedule(config, store, run, why, horizon), 0.0)


def _store(
    config: WaterHeaterConfig | HeatPumpConfig, state: LoadState | None, horizon: Horizon
) -> tuple[ThermalState, ThermalStore]:
    """A store's state (its thermostat's setting when none is known) and its model over the
    horizon, the rest of today's draw as what it drew so far says (:func:`seen_today`)."""
    store = replace(
        thermal_store(config, horizon.starts, horizon.ends, horizon.tz, horizon.outdoor_c),
        guard_h=horizon.guard_h,
    )
    th = state if isinstance(state, ThermalState) else ThermalState(store.thermostat_c)
    if th.drawn_today_kwh <= 0 or th.expected_today_kwh <= 0:
        return th, store  # nothing measured today
    local = horizon.starts[0].astimezone(horizon.tz)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), horizon.tz)
    today = bisect.bisect_left(horizon.starts, midnight)
    day_kwh = th.expected_today_kwh + float(store.drawn_kwh[:today].sum())
    return th, seen_today(store, th.drawn_today_kwh, th.expected_today_kwh, day_kwh, today)


def _required(run: ThermalRun, requirement: Requirement | None, horizon: Horizon) -> str:
    """What a store's run makes of its requirement, in words ("" without one)."""
    if requirement is None or requirement.temperature_c is None:
        return ""
    asked = requirement.describe(horizon.tz)
    index = slot_of(requirement, list(horizon.ends))
    if index is None:
        return f"; {asked} as requested: waits for the prices up to then"
    reached = float(run.temp_c[index + 1])
    if reached >= requirement.temperature_c - REACHED_K:
        return f"; {asked} as requested"
    return f"; {asked} as requested is not reachable ({reached:.1f} degC then)"


def _default_appliance(
    config: ApplianceConfig, state: ApplianceState, horizon: Horizon, requirement: Requirement | None
) -> FloatArray:
    """The runs at the user's time (``default_start``, else the window's start) in each window;
    a required run's at once."""
    power = np.zeros(len(horizon.starts))
    for window, requested in due_windows(
        config, state, horizon.starts[0], horizon.ends[-1], horizon.tz, requirement
    ):
        if state.started_at is not None and window.start <= state.started_at < window.end:
            start = state.started_at
        elif requested:
            start = max(window.start, horizon.starts[0])
        else:
            start = default_start(config, window, horizon.tz)
            # a default time already past (a run not yet done): now, so that every round of the
            # joint plan carries the same runs
            start = max(start, horizon.starts[0])
        power += run_power(config.profile(), start, horizon.starts, horizon.ends)
    return power


def _schedule(
    config: LoadConfig, power: FloatArray, states: Sequence[str], horizon: Horizon, reason: str
) -> LoadSchedule:
    on = power > MOVED_W
    if not states:
        states = tuple("on" if x else "off" for x in on)
    running = [i for i, s in enumerate(states) if s in ("on", "boost")]
    return LoadSchedule(
        name=config.name,
        type=config.type,
        power_w=tuple(power.tolist()),
        states=tuple(states),
        temperature_c=(),
        energy_kwh=float(power @ horizon.dt_h()) / 1000.0,
        next_run=horizon.starts[running[0]] if running else None,
        reason=reason,
    )


def _thermal_schedule(
    config: LoadConfig, store: ThermalStore, run: ThermalRun, why: str, horizon: Horizon
) -> LoadSchedule:
    on = run.power_w > MOVED_W
    if isinstance(config, HeatPumpConfig):
        states = tuple(
            ("boost" if not wants else "normal") if x else ("block" if wants else "normal")
            for x, wants in zip(on, run.thermostat_on, strict=True)
        )
    else:
        states = tuple("on" if x else "off" for x in on)
    low, high = float(run.temp_c.min()), float(run.temp_c.max())
    reason = f"{config.name} {why}; {low:.1f}-{high:.1f} degC (comfort {store.min_c:g}-{store.max_c:g})"
    schedule = _schedule(config, run.power_w, states, horizon, reason)
    return LoadSchedule(
        name=schedule.name,
        type=schedule.type,
        power_w=schedule.power_w,
        states=schedule.states,
        temperature_c=tuple(run.temp_c[:-1].tolist()),
        energy_kwh=schedule.energy_kwh,
        next_run=schedule.next_run,
        reason=reason,
    )


def _runs(flags: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Runs of set flags as (first, last) slot indices."""
    out: list[tuple[int, int]] = []
    for t, flag in enumerate(flags.tolist()):
        if flag and out and out[-1][1] == t - 1:
            out[-1] = (out[-1][0], t)
        elif flag:
            out.append((t, t))
    return out


def _thermal_why(store: ThermalStore, run: ThermalRun, marginal: MarginalCost, horizon: Horizon) -> str:
    """Each run of the element, and what the energy it uses is worth."""
    parts: list[str] = []
    on = run.power_w > MOVED_W
    surplus = marginal.surplus_w()
    tz = horizon.tz
    for first, last in _runs(on)[:4]:
        span = f"{horizon.starts[first].astimezone(tz):%H:%M}-{horizon.ends[last].astimezone(tz):%H:%M}"
        slots = slice(first, last + 1)
        if np.all(surplus[slots] >= 0.5 * run.power_w[slots]):
            export = float(np.mean(marginal.slots.export_price[slots]))
            parts.append(f"on {span}: surplus PV worth {export:.2f}/kWh exported")
        else:
            power = run.power_w[slots]
            cost = float(marginal.cost(np.pad(power, (first, on.size - last - 1))).sum())
            kwh = float(power @ horizon.dt_h()[slots]) / 1000.0
            parts.append(f"on {span}: {cost / kwh if kwh else 0.0:.2f}/kWh expected")
    if isinstance(store, ThermalStore) and store.kind == "heat_pump":
        blocked = _runs(~on & run.thermostat_on)[:2]
        for first, last in blocked:
            span = f"{horizon.starts[first].astimezone(tz):%H:%M}-{horizon.ends[last].astimezone(tz):%H:%M}"
            price = float(np.max(marginal.slots.import_price[first : last + 1]))
            parts.append(f"blocked {span}: dear hours up to {price:.2f}/kWh")
    return ", ".join(parts) if parts else "off: the heat it holds lasts"


def _place(
    config: LoadConfig,
    state: LoadState | None,
    horizon: Horizon,
    marginal: MarginalCost,
    requirement: Requirement | None,
) -> _Placed:
    if isinstance(config, ApplianceConfig):
        st = state if isinstance(state, ApplianceState) else ApplianceState()
        found = place_appliance(config, st, horizon.starts, horizon.ends, horizon.tz, marginal, requirement)
        value = found.cost if config.optional else 0.0
        return _Placed(found.power_w, _schedule(config, found.power_w, (), horizon, found.reason), value)
    th, store = _store(config, state, horizon)
    store = replace(store, required_c=floor_c(requirement, list(horizon.ends)))
    full = np.full(len(horizon.starts), store.electric_w)
    costs = marginal.cost(levels(store.dt_h)[1:, None] * full)
    run = place(store, th.temperature_c, costs, float(np.max(marginal.slots.import_price)), th.heating)
    why = _thermal_why(store, run, marginal, horizon) + _required(run, requirement, horizon)
    return _Placed(run.power_w, _thermal_schedule(config, store, run, why, horizon), 0.0)


def plan_with_loads(
    loads: Sequence[LoadConfig],
    states: Mapping[str, LoadState],
    horizon: Horizon,
    params: BatteryParams,
    limits: GridLimits,
    battery: Callable[[FloatArray], tuple[Plan, SlotValues]],
    max_rounds: int = MAX_ROUNDS,
    requirements: Mapping[str, Requirement] | None = None,
) -> LoadPlan:
    """The joint plan: ``battery(extra_w)`` plans the battery with ``extra_w`` added to the load
    forecast and gives the plan with its values of stored energy. Loads not enabled keep their
    defaults and are counted in as such; ``requirements``: the loads' set at run time, by name."""
    required = dict(requirements or {})
    if not loads:
        raise ValueError("loads: plan_with_loads needs at least one load")
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds!r}")
    started = time.perf_counter()
    current = {c.name: default_run(c, states.get(c.name), horizon, required.get(c.name)) for c in loads}
    best: tuple[float, Plan, dict[str, _Placed]] | None = None
    held = any(c.enabled and c.name in required for c in loads)  # requirements the defaults do not hold
    rounds = 0
    dt_h = horizon.dt_h()
    for rounds in range(1, max_rounds + 1):
        extra = sum((p.power_w for p in current.values()), np.zeros(len(horizon.starts)))
        plan, values = battery(extra)
        score = plan.objective - sum(p.value for p in current.values())
        if rounds == 1 and held:
            score = math.inf  # any plan that places the loads goes before the defaults
        if best is not None and score >= best[0] - 1e-9:
            break  # the loads moved to a plan no cheaper: they oscillate about the best
        best = (score, plan, dict(current))
        if rounds == max_rounds:
            break
        marginal = MarginalCost(params, limits, SlotArrays.of(plan, params), values)
        moved = False
        # the loads that move the most energy first: those placed after them see the values of
        # stored energy with them counted in, and fit around them
        for config in sorted(loads, key=lambda c: -float(current[c.name].power_w @ dt_h)):
            if not config.enabled:
                continue
            others = sum((p.power_w for n, p in current.items() if n != config.name), np.zeros(extra.size))
            marginal.placed_w = others - extra
            placed = _place(config, states.get(config.name), horizon, marginal, required.get(config.name))
            moved = moved or bool(np.max(np.abs(placed.power_w - current[config.name].power_w)) > MOVED_W)
            current[config.name] = placed
        if not moved:
            break
    assert best is not None  # at least one round ran
    _, plan, chosen = best
    schedules = tuple(chosen[c.name].schedule for c in loads)
    return LoadPlan(plan, schedules, rounds, (time.perf_counter() - started) * 1000.0)
