"""Backtests with flexible loads: a load spec file beside the scenario, three strategies.

The spec (``<scenario>.loads.toml``, or any file given) holds ``[[loads]]`` tables as in the
configuration (their ``[loads.switch]`` is not read) and how far the hot water and heat really
drawn depart from the profiles the planner is given (``draw_spread``, seeded): the scenario's
``load_w`` is then the rest of the house.

- ``no_battery`` and ``self_consumption``: every load at its default (a tank or a heat pump on its
  own thermostat, an appliance at its ``default_start``), as the backtest's other baselines;
- ``hemsd``: every ``replan_h`` the joint plan (:func:`controller.loads.joint.plan_with_loads`)
  over the horizon the planner sees (more often than the intervals: within them too, as the
  daemon plans every 15 minutes, the first slot cut to what is left of it, each interval's hot
  water and heat drawn evenly over it), from the loads' true state (a store's temperature, and what
  it drew since local midnight against its profile, as a store with a ``temperature_topic`` tells
  the daemon); between, each load is switched as the daemon switches it
  (:class:`controller.control.loads.LoadSwitcher`, ticked as on every reading at the daemon's
  default ``poll_interval_s``, at the moments its outputs can change: a run that cannot be
  interrupted goes on to its end, an interruptible one runs the pieces planned, each load kept on
  and off for its minimum times, a store's element for part of a slot run in its pieces, an optional
  surplus-only appliance started on an export the forecast missed); each store measured on every
  tick and doing between ticks what the device does with its output, reading by reading: a
  tank or a boosted heat pump switched on heats until its own thermostat stops it at ``max_c``,
  a heat pump left ``normal`` runs on its own thermostat (below ``setpoint_c - hysteresis_k``
  on to ``setpoint_c``, whatever power the plan expected of it), off or blocked it is off; the
  battery's mode is chosen on every
  interval from what the house, loads included, really does (:func:`controller.planner.recourse.decide_known`).
  As in the daemon, the load forecast is made from the house as measured (loads included) less
  what each load is recorded to have drawn: its true draw where its ``[loads.switch]`` has a
  ``power_topic`` (it is metered), else as commanded (:func:`controller.control.load_model.modelled_w`
  on each reading: a store switched on at its rated power, a heat pump left ``normal`` at its
  rated power below its thermostat's band and at what holds it within, an appliance's run at
  its profile's power).

Each load's energy, its cost (at the import price of each interval where the house imported,
else the export price it did not earn) and its runs are reported.
"""

from __future__ import annotations

import math
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from pydantic import Field, ValidationError

from controller.config.base import Section
from controller.config.loads import ApplianceConfig, LoadConfig, unique_names
from controller.config.models import DaemonConfig
from controller.control import load_model
from controller.control.load_rules import PLANNED_W, held_for, pieces
from controller.control.load_state import LoadRuntime
from controller.control.loads import LoadSwitcher
from controller.loads.appliance import ApplianceState, run_power, windows
from controller.loads.joint import Horizon, LoadPlan, LoadSchedule, LoadState, ThermalState, plan_with_loads
from controller.loads.thermal import GUARD_HOURS, ThermalStore, thermal_store
from controller.physics import Action, BatteryParams, GridLimits, followed_request_w, mode_request_w, step
from controller.planner import recourse
from controller.planner.deterministic import plan_from_solution
from controller.planner.plan import Horizon as PlanHorizon
from controller.planner.plan import Plan, SlotValues, inputs_digest
from controller.sim.baselines import no_battery, self_consumption
from controller.sim.decisions import IDLE_STEP_W
from controller.sim.forecasts import Forecasts
from controller.sim.scenario import Scenario, ScenarioError
from controller.sim.settings import PlannerSettings
from controller.sim.totals import Meter, StrategyTotals

FloatArray = npt.NDArray[np.float64]
RUNS_REPORTED = 40
MINUTE = timedelta(minutes=1)
# the daemon's step between two readings by default: it switches the loads on every reading
POLL = timedelta(seconds=DaemonConfig.model_fields["poll_interval_s"].default)


class LoadSpec(Section):
    loads: Annotated[tuple[LoadConfig, ...], Field(min_length=1, max_length=16)]
    # hot water and heat drawn: each day's a lognormal factor of this spread times the profile
    draw_spread: Annotated[float, Field(ge=0, le=2)] = 0.0
    seed: Annotated[int, Field(ge=0)] = 1


def spec_beside(scenario_path: Path) -> Path:
    return scenario_path.with_name(scenario_path.stem + ".loads.toml")


def load_spec(path: Path) -> LoadSpec:
    """The spec in ``path``; ScenarioError naming the file and the key when it is not one."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        spec = LoadSpec(**data)
        unique_names(spec.loads)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"{path}: {problems}") from None
    except ValueError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return spec


@dataclass(frozen=True)
class LoadTotals:
    energy_kwh: float
    cost: float
    runs: tuple[tuple[str, str], ...]  # local start and end of its first runs
    lowest_c: float | None  # a thermal store's lowest temperature
    # each interval's mean power (W) and a store's temperature at its end (degC)
    power_w: FloatArray | None = field(default=None, compare=False, repr=False)
    temp_c: FloatArray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"energy_kwh": round(self.energy_kwh, 3), "cost": round(self.cost, 4)}
        out["runs"] = [list(r) for r in self.runs]
        if self.lowest_c is not None:
            out["lowest_c"] = round(self.lowest_c, 2)
        return out


@dataclass(frozen=True)
class LoadsBacktest:
    currency: str
    intervals: int
    strategies: dict[str, StrategyTotals]
    loads: dict[str, dict[str, LoadTotals]]

    def to_dict(self) -> dict[str, object]:
        return {
            "currency": self.currency,
            "intervals": self.intervals,
            "strategies": {
                name: {**totals.to_dict(), "loads": {n: t.to_dict() for n, t in self.loads[name].items()}}
                for name, totals in self.strategies.items()
            },
        }


class _Site:
    """The loads' true state over the scenario: tanks and houses warm and cool, runs progress."""

    def __init__(self, scenario: Scenario, spec: LoadSpec, tz: ZoneInfo) -> None:
        n = len(scenario)
        self.scenario, self.tz = scenario, tz
        self.starts = tuple(scenario.time(i) for i in range(n))
        self.ends = tuple(scenario.time(i + 1) for i in range(n))
        rng = np.random.default_rng(spec.seed)
        days = math.ceil(n / scenario.steps_per_day) + 1
        factor = np.exp(rng.normal(0.0, spec.draw_spread, days) - spec.draw_spread**2 / 2)
        day_of = np.arange(n) // scenario.steps_per_day
        self.stores: dict[str, ThermalStore] = {}
        self.true_drawn: dict[str, FloatArray] = {}
        self.temp: dict[str, float] = {}
        self.heating: dict[str, bool] = {}
        self.appliances: dict[str, ApplianceState] = {}
        self.configs = {c.name: c for c in spec.loads}
        self.end = scenario.time(n)
        step_1 = timedelta(minutes=1)
        for c in spec.loads:
            if isinstance(c, ApplianceConfig):
                # a window open at the start is the past's: its run is taken as done
                opened = [
                    w.end
                    for w in windows(c, scenario.start, scenario.start + step_1, tz)
                    if w.start < scenario.start
                ]
                self.appliances[c.name] = ApplianceState(done_until=max(opened, default=None))
                continue
            store = thermal_store(c, self.starts, self.ends, tz)
            self.stores[c.name] = store
            self.true_drawn[c.name] = store.drawn_kwh * factor[day_of]
            self.temp[c.name] = store.thermostat_c
            self.heating[c.name] = False
        self.lowest = dict(self.temp)
        self.ends_c: dict[str, list[float]] = {name: [] for name in self.temp}
        # since local midnight: the heat drawn, and what the profile expected (a sensor's view)
        self.today: dict[str, tuple[float, float]] = {}

    def interval_ended(self) -> None:
        for name, ends in self.ends_c.items():
            ends.append(self.temp[name])

    def states(self) -> dict[str, LoadState]:
        out: dict[str, LoadState] = dict(self.appliances)
        for name, temp in self.temp.items():
            drawn, expected = self.today.get(name, (0.0, 0.0))
            out[name] = ThermalState(temp, self.heating[name], drawn, expected)
        return out

    def thermostat(self, name: str, i: int) -> bool:
        store, temp = self.stores[name], self.temp[name]
        return temp < store.thermostat_c - store.hysteresis_k or (
            self.heating[name] and temp < store.thermostat_c
        )

    def step(self, i: int, on: dict[str, float]) -> dict[str, float]:
        """Interval ``i`` (its hot water and heat drawn evenly) with each load at its default,
        on (1) or off (0): a thermal store on its own thermostat heats up to its setting, an
        appliance runs; the mean power each drew."""
        power: dict[str, float] = {}
        share = 1.0
        part = (0.0, 1.0)
        dt = self.scenario.step_h
        for name, c in self.configs.items():
            if isinstance(c, ApplianceConfig):
                power[name] = self._appliance(name, c, i, on[name] > 0)
                continue
            store = self.stores[name]
            temp = self.temp[name]
            true_drawn = float(self.true_drawn[name][i]) * share
            heat = 0.0
            if on[name]:
                room = (store.thermostat_c - temp) * store.capacity_kwh_per_k + true_drawn
                heat = float(
                    np.clip(
                        room + store.lost_kwh(i, temp) * share,
                        0.0,
                        on[name] * store.heat_max_kwh()[i] * share,
                    )
                )
            lost = float(store.lost_kwh(i, temp)) * share
            temp += (heat - true_drawn - lost) / store.capacity_kwh_per_k
            self.count_today(name, i, part)
            self.temp[name] = temp
            self.heating[name] = on[name] > 0 and heat > 0
            self.lowest[name] = min(self.lowest[name], temp)
            power[name] = heat / store.cop / dt * 1000.0
        return power

    def _appliance(self, name: str, c: ApplianceConfig, i: int, on: bool) -> float:
        st = self.appliances[name]
        t = self.starts[i]
        if on and st.started_at is None and self._open(c, st, t):
            st = ApplianceState(st.done_until, t, st.ran_h, st.requested)
        if st.started_at is None:
            self.appliances[name] = st
            return 0.0
        power = float(run_power(c.profile(), st.started_at, [t], [self.ends[i]])[0])
        if self.ends[i] >= st.started_at + timedelta(minutes=c.duration_w_min()):
            ended = [w.end for w in windows(c, st.started_at, st.started_at + timedelta(minutes=1), self.tz)]
            st = ApplianceState(done_until=max(ended, default=self.ends[i]))
        self.appliances[name] = st
        return power

    def _open(self, c: ApplianceConfig, st: ApplianceState, t: datetime) -> bool:
        done = st.done_until
        return any(
            w.start <= t < w.end and w.end <= self.end and (done is None or w.end > done)
            for w in windows(c, t, t + timedelta(minutes=1), self.tz)
        )

    def recorded_w(self, name: str, on: float, drawn_w: float) -> float:
        """What the daemon records load ``name`` drew over an interval it was switched on for
        the share ``on`` of and really drew ``drawn_w`` in, at its default: the draw where it is
        metered, else as commanded (a store at its rated power, an appliance's run at its profile's)."""
        c = self.configs[name]
        store = self.stores.get(name)
        if c.switch.power_topic or store is None:
            return drawn_w
        return on * store.electric_w

    def count_today(self, name: str, i: int, part: tuple[float, float]) -> None:
        """Store ``name``'s heat drawn since local midnight, and its profile's, moved on by the
        ``part`` of interval ``i`` (from nothing once the interval ends on a new day)."""
        share = part[1] - part[0]
        if (
            part[1] == 1.0
            and self.ends[i].astimezone(self.tz).date() != self.starts[i].astimezone(self.tz).date()
        ):
            self.today[name] = (0.0, 0.0)  # the next interval starts a new day
            return
        drawn, expected = self.today.get(name, (0.0, 0.0))
        store = self.stores[name]
        self.today[name] = (
            drawn + float(self.true_drawn[name][i]) * share,
            expected + float(store.drawn_kwh[i]) * share,
        )

    def device(
        self, i: int, load: LoadRuntime, begin: datetime, end: datetime, tz: ZoneInfo
    ) -> tuple[list[float], list[float]]:
        """Store ``load`` through ``[begin, end)`` of interval ``i`` as the device does with its
        output, reading by reading (``POLL``): switched on (``on``, ``boost``) it heats until
        its own thermostat stops it at ``max_c``; a heat pump left ``normal`` runs on its
        thermostat, heating below ``setpoint_c - hysteresis_k`` and on to ``setpoint_c`` (the
        planned power is no part of what it does); else it is off. The electricity it drew in
        each reading's step and what the daemon records it drew (kWh): as measured where its
        ``power_topic`` meters it, else as commanded (:func:`load_model.modelled_w`, the store
        measured)."""
        name = load.config.name
        store = self.stores[name]
        interval = self.ends[i] - self.starts[i]
        count = max(1, round((end - begin) / POLL))
        sub = POLL if count * POLL == end - begin else (end - begin) / count
        share = sub / interval
        metered = bool(load.config.switch.power_topic)
        temp, heating = self.temp[name], self.heating[name]
        drawn = float(self.true_drawn[name][i]) * share
        heat_max = float(store.heat_max_kwh()[i]) * share
        thermostat = load.output == "normal" and store.kind == "heat_pump"
        on = load.output in ("on", "boost")
        electric, recorded = [], []
        for j in range(count):
            lost = float(store.lost_kwh(i, temp)) * share
            if thermostat:
                heating = temp < store.thermostat_c - store.hysteresis_k or (
                    heating and temp < store.thermostat_c
                )
                top = store.thermostat_c
            else:
                heating, top = on, store.max_c
            heat = 0.0
            if heating:
                heat = min(max((top - temp) * store.capacity_kwh_per_k + drawn + lost, 0.0), heat_max)
            electric.append(heat / store.cop)
            if not metered:
                load.temperature_c = temp
                modelled = load_model.modelled_w(load, begin + j * sub, tz, None)
                recorded.append(modelled * sub.total_seconds() / 3.6e6)
            temp += (heat - drawn - lost) / store.capacity_kwh_per_k
            heating = heating and heat > 0 and temp < top - 1e-6
            self.lowest[name] = min(self.lowest[name], temp)
        self.temp[name], self.heating[name] = temp, heating
        load.temperature_c = temp
        return electric, electric if metered else recorded

    def default_on(self, name: str, i: int) -> bool:
        c = self.configs[name]
        if not isinstance(c, ApplianceConfig):
            return self.thermostat(name, i)
        t = self.starts[i]
        when = c.default_start or c.earliest_start
        done = self.appliances[name].done_until
        for w in windows(c, t, t + timedelta(minutes=1), self.tz):
            if w.end > self.end or (done is not None and w.end <= done):
                continue  # closing after the period: no strategy runs it
            start = datetime.combine(w.start.astimezone(self.tz).date(), when, self.tz).astimezone(t.tzinfo)
            if start < w.start:
                start += timedelta(days=1)
            if start <= t < start + self.scenario.step:
                return True
        return False


class _Switched:
    """The daemon's switching of the loads over the backtest: its
    :class:`~controller.control.loads.LoadSwitcher` ticked through each interval as the daemon
    ticks it on every reading (``poll``), from the loads' true state (an appliance's run is the
    switcher's to keep).

    Within an interval the plan and the house as last measured stand still, so the outputs of a
    switcher ticked every ``poll`` change only at a minute's mark (a slot's, a window's and a
    run's times are whole minutes), at the first reading after each piece of a store's planned
    share of the slot starts or ends, and when a load's minimum time ends: ticked at just those moments
    (``every=None``), it switches as the reading-by-reading daemon does, each output held to the
    next; ``every`` ticks it at fixed steps instead."""

    def __init__(self, site: _Site, poll: timedelta = POLL, every: timedelta | None = None) -> None:
        self.site = site
        self.poll, self.every = poll, every
        self.switcher = LoadSwitcher(tuple(site.configs.values()), site.tz)

    def interval(
        self, i: int, plan: LoadPlan, k: int, net_w: float, part: tuple[float, float] = (0.0, 1.0)
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Interval ``i`` (the plan's slot ``k``; or the ``part`` of it between two shares of its
        length) switched as the daemon would, each store measured on every tick (as with a
        ``temperature_topic``) and doing between ticks what the device does with its output
        (:meth:`_Site.device`): each load's mean power over that time, and what the daemon
        records it drew (its power where it is metered, else as commanded)."""
        site, switcher = self.site, self.switcher
        for name, load in switcher.loads.items():
            if name in site.appliances:
                load.appliance = site.appliances[name]
        step = site.ends[i] - site.starts[i]
        begin, end = site.starts[i] + part[0] * step, site.starts[i] + part[1] * step
        length = end - begin
        hours = length.total_seconds() / 3600.0
        electric: dict[str, list[float]] = {name: [] for name in site.stores}
        recorded: dict[str, list[float]] = {name: [] for name in site.stores}
        appliance_w: dict[str, list[float]] = {name: [] for name in site.appliances}
        shares = self._share_ends(plan, k, {s.name: s for s in plan.loads})
        t = begin
        while t < end:
            switcher.advance(t)
            for name in site.stores:
                switcher.temperature_reading(name, site.temp[name], t)
            switcher.tick(t, plan, net_w)
            after = self._next(t, site.starts[i], end, shares)
            for name, w in appliance_w.items():
                w.append(switcher.modelled_w(name, t) * (after - t).total_seconds())
            for name in site.stores:
                drew, rec = site.device(i, switcher.loads[name], t, after, site.tz)
                electric[name] += drew
                recorded[name] += rec
            t = after
        switcher.advance(end)
        for name in site.stores:
            site.count_today(name, i, part)
        for name in site.appliances:
            site.appliances[name] = switcher.loads[name].appliance
        # summed exactly: the same steps give the same sums however the ticks group them
        power = {name: math.fsum(kwh) * 1000.0 / hours for name, kwh in electric.items()}
        logged = {name: math.fsum(kwh) * 1000.0 / hours for name, kwh in recorded.items()}
        for name, w in appliance_w.items():
            power[name] = logged[name] = math.fsum(w) / length.total_seconds()
        return power, logged

    def _share_ends(self, plan: LoadPlan, k: int, schedules: dict[str, LoadSchedule]) -> list[datetime]:
        """The first reading at or after the start and the end of each piece of each store's
        planned share of slot ``k`` (:func:`~controller.control.load_rules.pieces`)."""
        slot = plan.plan.slots[k]
        out = []
        for name in self.site.stores:
            schedule, c = schedules.get(name), self.site.configs[name]
            if schedule is None or isinstance(c, ApplianceConfig):
                continue
            state = schedule.states[k]
            if state not in ("on", "boost") and not (state == "normal" and schedule.power_w[k] > PLANNED_W):
                continue
            for piece in pieces(c, slot.start, slot.end, schedule.power_w[k]):
                out += [slot.start + math.ceil((t - slot.start) / self.poll) * self.poll for t in piece]
        return out

    def _next(self, t: datetime, begin: datetime, end: datetime, shares: list[datetime]) -> datetime:
        """The next tick after ``t`` within ``[begin, end)`` (``end`` when there is none)."""
        if self.every is not None:
            return min(t + self.every, end)
        minutes = (t - begin) // MINUTE + 1
        moments = [begin + minutes * MINUTE, end, *(s for s in shares if s > t)]
        for load in self.switcher.loads.values():
            if load.since is not None:
                held = load.since + held_for(load)
                if held > t:
                    moments.append(held)
        return min(moments)


def _runs(
    on: FloatArray, starts: Sequence[datetime], tz: ZoneInfo, step: timedelta
) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    first = None
    for i, flag in enumerate([*(on > 1.0).tolist(), False]):
        if flag and first is None:
            first = i
        elif not flag and first is not None:
            end = starts[i - 1] + step
            out.append((starts[first].astimezone(tz).isoformat(), end.astimezone(tz).isoformat()))
            first = None
    return tuple(out[:RUNS_REPORTED])


def _load_totals(site: _Site, power: dict[str, FloatArray], grid_w: FloatArray) -> dict[str, LoadTotals]:
    s = site.scenario
    price = np.where(grid_w > 0, s.import_price, s.export_price)
    out = {}
    for name, w in power.items():
        kwh = w * s.step_h / 1000.0
        lowest = site.lowest.get(name)
        ends = site.ends_c.get(name)
        out[name] = LoadTotals(
            float(kwh.sum()),
            float(kwh @ price),
            _runs(w, site.starts, site.tz, s.step),
            lowest,
            w.copy(),
            None if ends is None else np.array(ends),
        )
    return out


def _defaults(scenario: Scenario, spec: LoadSpec, tz: ZoneInfo) -> tuple[dict[str, FloatArray], _Site]:
    site = _Site(scenario, spec, tz)
    power = {name: np.zeros(len(scenario)) for name in site.configs}
    for i in range(len(scenario)):
        drawn = site.step(i, {name: float(site.default_on(name, i)) for name in site.configs})
        for name, w in drawn.items():
            power[name][i] = w
        site.interval_ended()
    return power, site


def _with_loads(scenario: Scenario, extra_w: FloatArray) -> Scenario:
    return replace(scenario, load_w=scenario.load_w + extra_w)


def baselines(
    scenario: Scenario, spec: LoadSpec, params: BatteryParams, initial_soc_pct: float, tz: ZoneInfo
) -> tuple[dict[str, StrategyTotals], dict[str, dict[str, LoadTotals]]]:
    """``no_battery`` and ``self_consumption`` with every load at its default."""
    power, site = _defaults(scenario, spec, tz)
    house = _with_loads(scenario, sum(power.values(), np.zeros(len(scenario))))
    strategies = {
        "no_battery": no_battery(house),
        "self_consumption": self_consumption(house, params, initial_soc_pct),
    }
    loads = {}
    for name, totals in strategies.items():
        assert totals.trace is not None  # both strategies keep their trace
        loads[name] = _load_totals(site, power, totals.trace.grid_w)
    return strategies, loads


def joint(
    scenario: Scenario,
    spec: LoadSpec,
    params: BatteryParams,
    initial_soc_pct: float,
    settings: PlannerSettings,
    limits: GridLimits,
    replan_h: float = 1.0,
    tz: ZoneInfo | None = None,
    progress: Callable[[int], None] | None = None,
    seen_w: FloatArray | None = None,
    tick: timedelta | None = None,
    guard_h: float | None = None,
) -> tuple[StrategyTotals, dict[str, LoadTotals]]:
    """The ``hemsd`` strategy with the loads planned jointly (see the module docstring), planned
    every ``replan_h`` (shorter than an interval: again within each, the loads switched by the
    plan made last and the stores moved on to then);
    ``seen_w`` (the scenario's ``load_w`` copied, if given) ends as the house's load the forecasts
    were made from: as measured, less what the loads were recorded to draw; ``tick``: the loads'
    switcher ticked at this fixed step rather than at the moments the daemon's readings switch them;
    ``guard_h``: the stores guarded against the draw of these hours before each slot's end (by
    default ``replan_h``: until the next plan, as the daemon guards them until its next)."""
    guard = replan_h if guard_h is None else guard_h
    zone = tz or ZoneInfo("Europe/Warsaw")
    site = _Site(scenario, spec, zone)
    if seen_w is None:
        seen_w = scenario.load_w.copy()
    elif seen_w.shape != scenario.load_w.shape:
        raise ValueError(f"seen_w: {seen_w.shape} values, the scenario has {scenario.load_w.shape}")
    else:
        seen_w[:] = scenario.load_w
    forecasts = Forecasts(scenario, params, settings, seen_w)
    n, dt = len(scenario), scenario.step_h
    every = max(1, round(replan_h / dt))
    # planned more often than the intervals: again within each, the first slot cut to its rest
    within = max(1, round(dt / replan_h))
    power = {name: np.zeros(n) for name in site.configs}
    meter = Meter(params)
    e = params.energy_kwh(initial_soc_pct)
    plan: LoadPlan | None = None
    first = 0
    solve_ms: list[float] = []
    switched = _Switched(site, every=tick)
    drawn: dict[str, float] = {}
    case_before: int | None = None  # the case the interval before was in, as the daemon's loop keeps it
    for i in range(n):
        pv_i, base_i = float(scenario.pv_w[i]), float(scenario.load_w[i])
        pi, pe = float(scenario.import_price[i]), float(scenario.export_price[i])
        if forecasts.planned(i) and (plan is None or i - first >= every or i - first >= len(plan.plan.slots)):
            plan, first = _plan(site, forecasts, params, limits, settings, e, i, zone, guard_h=guard), i
            solve_ms.append(plan.solve_ms)
        if plan is None or not forecasts.planned(i):
            on = {name: float(site.default_on(name, i)) for name in site.configs}
            drawn = site.step(i, on)
            recorded = {name: site.recorded_w(name, on[name], w) for name, w in drawn.items()}
        else:
            net_w = base_i + sum(drawn.values()) - pv_i  # the house as last measured
            drawn, recorded = dict.fromkeys(site.configs, 0.0), dict.fromkeys(site.configs, 0.0)
            for j in range(within):
                part = (j / within, (j + 1) / within)
                if j > 0:  # planned again within the interval, from where the loads are now
                    plan, first = (
                        _plan(site, forecasts, params, limits, settings, e, i, zone, part[0], guard),
                        i,
                    )
                    solve_ms.append(plan.solve_ms)
                drawn_j, recorded_j = switched.interval(i, plan, i - first, net_w, part)
                for name in site.configs:
                    drawn[name] += drawn_j[name] / within
                    recorded[name] += recorded_j[name] / within
        for name, w in drawn.items():
            power[name][i] = w
        site.interval_ended()
        load_i = base_i + sum(drawn.values())
        seen_w[i] = max(load_i - sum(recorded.values()), 0.0)
        action = Action.SELF_USE
        if plan is None or plan.plan.values is None or not forecasts.planned(i):
            request = mode_request_w(Action.SELF_USE, params, e, pv_i, load_i)
            case_before = None
        else:
            values = plan.plan.values
            _, decision = recourse.decide_followed(
                params, limits, values, i - first, e, load_i - pv_i, load_i, dt, pi, pe, IDLE_STEP_W,
                before=case_before,
            )  # fmt: skip
            request = followed_request_w(decision.action, decision.battery_w, load_i - pv_i, load_i - pv_i)
            action = decision.action
            case_before = recourse.known_case(values, i - first, load_i - pv_i)
        r = step(params, e, request, pv_i, load_i, dt, limits, curtail_export=pe < 0)
        meter.add(r, pi, pe, str(action))
        e = r.e_kwh
        if progress is not None:
            progress(i + 1)
    totals = meter.totals(tuple(solve_ms))
    assert totals.trace is not None
    return totals, _load_totals(site, power, totals.trace.grid_w)


@dataclass(frozen=True)
class _Slot:
    start: datetime
    end: datetime
    import_price: float
    export_price: float


def _plan(
    site: _Site,
    forecasts: Forecasts,
    params: BatteryParams,
    limits: GridLimits,
    settings: PlannerSettings,
    e_kwh: float,
    i: int,
    tz: ZoneInfo,
    cut: float = 0.0,
    guard_h: float = GUARD_HOURS,
) -> LoadPlan:
    """The joint plan made in interval ``i``, the share ``cut`` of it gone: its first slot is what
    is left of it, made from where the loads are then, with the forecasts of the interval's start
    and the battery as it was then (the backtest's battery moves by whole intervals)."""
    h, value = forecasts.horizon(i)
    m = h.dt_h.size
    errors, chances = forecasts.departures(i, m)
    now = site.starts[i] + cut * (site.ends[i] - site.starts[i])
    if cut > 0:
        dt_h = h.dt_h.copy()
        dt_h[0] *= 1.0 - cut
        h = PlanHorizon(dt_h, h.pv_w, h.load_w, h.import_price, h.export_price)
    slots = [
        _Slot(
            now if k == 0 else site.starts[i + k],
            site.ends[i + k],
            float(h.import_price[k]),
            float(h.export_price[k]),
        )
        for k in range(m)
    ]
    soc = params.soc_pct(e_kwh)

    def battery(extra_w: FloatArray) -> tuple[Plan, SlotValues]:
        started = time.perf_counter()
        hz = PlanHorizon(h.dt_h, h.pv_w, h.load_w + extra_w, h.import_price, h.export_price)
        sol, actions, values = recourse.solve_recourse(
            params, limits, e_kwh, hz, errors, value, settings.soc_step_kwh, chances
        )
        digest = inputs_digest(
            "loads-backtest", soc, params, limits, settings.end_value, settings.soc_step_kwh, [], []
        )
        plan = plan_from_solution(params, slots, hz, sol, actions, digest, started, now, tz, values)
        return plan, values

    horizon = Horizon(tuple(s.start for s in slots), tuple(s.end for s in slots), tz, guard_h=guard_h)
    return plan_with_loads(tuple(site.configs.values()), site.states(), horizon, params, limits, battery)
