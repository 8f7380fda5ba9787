"""Thermal stores: a hot-water tank and a heat pump's house (or buffer tank), planned as a second store.

One model serves both. The store's temperature T (degC) over a slot of ``dt`` hours:

    T' = T + (heat_in - drawn - loss_w_per_k * (T - ref_c) * dt / 1000) / capacity_kwh_per_k

with ``heat_in`` = the element's (or pump's) electric power times ``cop`` times ``dt`` while it
runs, cut where its own thermostat stops it at ``max_c``. A tank's ``ref_c`` is the room it
stands in and ``drawn`` the hot water used; a house's ``ref_c`` is its setpoint and ``drawn``
the heat it needs there. The store's default, what it does without hemsd, is its thermostat:
heat below ``thermostat_c - hysteresis_k`` until ``thermostat_c``.

The plan is a small dynamic program over a grid of temperatures: in each slot the element runs
for a share of it (:func:`levels`: not at all, ``MIN_RUN_MIN`` (the control loop's shortest stay
in a state) or whole ``ELEMENT_STEP_MIN`` steps longer, up to all of it; or just the share
that ends the slot at its floor, ``MIN_RUN_MIN`` at least, which holds a store at its minimum
without a level's step above it), at the slot's expected cost of that energy
(:class:`controller.loads.marginal.MarginalCost`, between two levels' costs for a share between them);
ending a slot where an hour's draw as high as the store's ``draw_spread`` makes likely
(:data:`DRAW_QUANTILE_Z`) would take it below ``min_c`` costs far more than any energy
(comfort comes first; the next plan starts from where the store then is, so only the
departure until then is guarded against, as the battery's plan keeps to its own), and the heat left
at the end is worth half of what heating it costs on the horizon's median (``HEAT_LEFT_WORTH``).
The element runs its share of a slot at full power, in pieces (:func:`pieces_count`), warming the
store first: the store loses more than at its start temperature (:meth:`ThermalStore.overshoot_kwh`),
which each move counts.
Where the store is measured, what it drew so far today moves the rest of today's draw and
narrows its spread (:func:`seen_today`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

import numpy as np
import numpy.typing as npt

from controller.config.loads import HeatPumpConfig, WaterHeaterConfig

FloatArray = npt.NDArray[np.float64]
GRID_POINTS = 121
# The element runs for a whole number of these minutes of a slot: a quarter of a 15-minute slot,
# a sixteenth of an hour (a coarser step kept hourly plans' stores warmer than they need be)
ELEMENT_STEP_MIN = 3.75
# the control loop keeps a store's switch at least this long in a state: a run that just ends a
# slot at its floor lasts at least this long
MIN_RUN_MIN = 5.0
# a store's share of a slot longer than this is run in pieces, one per this many minutes at most
PIECE_MIN = 15.0
# the share that just ends a slot at its floor, found again this many times with what its pieces
# lose beyond the loss at the slot's start (a small share of it: each round is ~100 times closer)
OVERSHOOT_ROUNDS = 3
BELOW_MIN_K = {"water_heater": 10.0, "heat_pump": 2.0}  # the grid reaches this far below min_c
# Heat left at the horizon's end is worth this share of what it costs on the horizon's median: it
# is partly lost before it is used (measured on winter and spring backtests: 0.5 beats 0 and 1)
HEAT_LEFT_WORTH = 0.5
COMFORT_WEIGHT = 100.0  # a kelvin below min_c costs the energy of COMFORT_WEIGHT kelvin at the dearest price
# A slot ends high enough for the hour's draw up to its end at the 99th percentile of a day's
# departure from the profile (a lognormal of the store's draw_spread whose mean is the profile): the plan is made again
# within the hour from where the store then is
DRAW_QUANTILE_Z = 2.326
GUARD_HOURS = 1.0
PLANNED_HEAT_W = 1.0  # a slot with more planned electric power than this heats
# the share of a day's hot water drawn in each local hour: a household's morning and evening peaks
DRAW_SHAPE = (1, 0.5, 0.5, 0.5, 1, 3, 9, 10, 7, 4, 3, 3, 3, 3, 3, 3, 4, 5, 7, 9, 9, 6, 4, 2)


@dataclass(frozen=True, eq=False)
class ThermalStore:
    """A thermal store over the slots of a horizon."""

    name: str
    kind: str  # "water_heater" or "heat_pump"
    capacity_kwh_per_k: float
    electric_w: float
    cop: float
    loss_w_per_k: float
    min_c: float
    max_c: float
    thermostat_c: float
    hysteresis_k: float
    dt_h: FloatArray  # (n,)
    ref_c: FloatArray  # (n,)
    drawn_kwh: FloatArray  # (n,) heat drawn in each slot
    draw_spread: float | FloatArray = (
        0.0  # how far a day's draw departs from drawn_kwh (lognormal spread; per slot)
    )
    required_c: FloatArray | None = None  # (n,) the lowest temperature asked for at each slot's end
    guard_h: float = GUARD_HOURS  # the draw guarded against: of these hours up to each slot's end

    def heat_max_kwh(self) -> FloatArray:
        out: FloatArray = self.electric_w * self.cop * self.dt_h / 1000.0
        return out

    def lost_kwh(self, t: int, temp_c: FloatArray | float) -> FloatArray:
        out: FloatArray = np.asarray(
            self.loss_w_per_k * (np.asarray(temp_c) - self.ref_c[t]) * self.dt_h[t] / 1000.0
        )
        return out

    def overshoot_kwh(self, t: npt.ArrayLike, heat_kwh: FloatArray | float) -> FloatArray:
        """What the store loses in slot ``t`` beyond the loss at its start temperature when its
        element gives ``heat_kwh`` in its pieces at full power (:func:`pieces_count`): each piece
        warms it first and it cools after, about s (1 - s) Q / (2 k C) kelvin warmer on average
        than at an even heat for the share s of the slot's full heat Q in k pieces."""
        idx = np.asarray(t)
        full = self.heat_max_kwh()[idx]
        share = np.clip(
            np.divide(heat_kwh, full, out=np.zeros(np.broadcast(heat_kwh, full).shape), where=full > 0),
            0.0,
            1.0,
        )
        count = pieces_count(self.dt_h[idx] * 60.0, share)
        mean_k = np.asarray(heat_kwh) * (1.0 - share) / (2.0 * count * self.capacity_kwh_per_k)
        out: FloatArray = self.loss_w_per_k * mean_k * self.dt_h[idx] / 1000.0
        return out

    def heat_in_kwh(self, t: int, temp_c: FloatArray | float) -> FloatArray:
        """The heat the element gives in slot ``t`` when it runs from ``temp_c``, its thermostat
        stopping it at ``max_c``."""
        room = (
            (self.max_c - np.asarray(temp_c)) * self.capacity_kwh_per_k
            + self.drawn_kwh[t]
            + self.lost_kwh(t, temp_c)
        )
        out: FloatArray = np.clip(room, 0.0, self.heat_max_kwh()[t])
        return out

    def after(self, t: int, temp_c: FloatArray | float, heat_kwh: FloatArray | float) -> FloatArray:
        out: FloatArray = (
            np.asarray(temp_c)
            + (np.asarray(heat_kwh) - self.drawn_kwh[t] - self.lost_kwh(t, temp_c)) / self.capacity_kwh_per_k
        )
        return out


@dataclass(frozen=True, eq=False)
class ThermalRun:
    """A store's run over the horizon: the element's mean power per slot and the temperature at
    each slot's start (and the horizon's end)."""

    power_w: FloatArray  # (n,)
    temp_c: FloatArray  # (n + 1,)
    thermostat_on: npt.NDArray[np.bool_]  # (n,): would its thermostat heat in the slot (from its start)

    def energy_kwh(self, dt_h: FloatArray) -> float:
        return float(self.power_w @ dt_h) / 1000.0


def _local_hours(starts: Sequence[datetime], tz: tzinfo) -> npt.NDArray[np.intp]:
    return np.array([s.astimezone(tz).hour for s in starts], dtype=np.intp)


def thermal_store(
    config: WaterHeaterConfig | HeatPumpConfig,
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    tz: tzinfo,
    outdoor_c: FloatArray | None = None,
) -> ThermalStore:
    """The configured store over the slots [starts[i], ends[i]); ``outdoor_c``: the air
    temperature forecast per slot (NaN where unknown), which a heat pump's demand may follow."""
    dt_h = np.array([(e - s).total_seconds() / 3600.0 for s, e in zip(starts, ends, strict=True)])
    hours = _local_hours(starts, tz)
    if isinstance(config, WaterHeaterConfig):
        per_hour = (
            np.array(config.draw_profile_kwh)
            if config.draw_profile_kwh
            else config.draw_kwh_per_day * np.array(DRAW_SHAPE) / sum(DRAW_SHAPE)
        )
        return ThermalStore(
            name=config.name,
            kind=config.type,
            capacity_kwh_per_k=config.capacity_kwh_per_k(),
            electric_w=config.element_w,
            cop=1.0,
            loss_w_per_k=config.loss_w_per_k,
            min_c=config.min_c,
            max_c=config.max_c,
            thermostat_c=config.thermostat_c,
            hysteresis_k=config.hysteresis_k,
            dt_h=dt_h,
            ref_c=np.full(dt_h.size, config.ambient_c),
            drawn_kwh=per_hour[hours] * dt_h,
            draw_spread=config.draw_spread,
        )
    demand = config.demand_w(hours, outdoor_c)
    return ThermalStore(
        name=config.name,
        kind=config.type,
        capacity_kwh_per_k=config.capacity_kwh_per_k,
        electric_w=config.electric_w,
        cop=config.cop,
        loss_w_per_k=config.loss_w_per_k,
        min_c=config.min_c,
        max_c=config.max_c,
        thermostat_c=config.setpoint_c,
        hysteresis_k=config.hysteresis_k,
        dt_h=dt_h,
        ref_c=np.full(dt_h.size, config.setpoint_c),
        drawn_kwh=demand * dt_h / 1000.0,
        draw_spread=config.draw_spread,
    )


def seen_today(
    store: ThermalStore, drawn_kwh: float, expected_kwh: float, day_kwh: float, today: int
) -> ThermalStore:
    """The store with what its draw so far today says of the rest of the day: ``drawn_kwh``
    drawn since local midnight where its profile expected ``expected_kwh`` of the day's
    ``day_kwh``; ``today``: how many of the horizon's slots lie before the next midnight.

    A day's draw departs from its profile by a lognormal factor of spread s (its mean the
    profile: log-mean -s^2/2). Having seen the share w = expected / day of the day's profile,
    what was drawn counts as an observation of that factor with a spread of s sqrt((1 - w) / w)
    (none once the whole day is seen, no weight before any of it): the factor's log-mean moves
    the share w of the way to the log of drawn / expected, its spread narrows to s sqrt(1 - w).
    The rest of today is drawn at that factor's mean and guarded against at its spread; the
    days after keep the profile and its spread."""
    spread = float(np.max(store.draw_spread))
    if today <= 0 or spread <= 0 or day_kwh <= 0 or expected_kwh <= 0 or drawn_kwh <= 0:
        return store
    w = min(expected_kwh / day_kwh, 1.0)
    mean_log = (1.0 - w) * (-spread * spread / 2.0) + w * math.log(drawn_kwh / expected_kwh)
    left = spread * math.sqrt(1.0 - w)
    factor = math.exp(mean_log + left * left / 2.0)
    drawn = store.drawn_kwh.copy()
    drawn[:today] *= factor
    spreads = np.full(drawn.size, spread)
    spreads[:today] = left
    return replace(store, drawn_kwh=drawn, draw_spread=spreads)


def thermostat_run(store: ThermalStore, temp0_c: float, heating: bool = False) -> ThermalRun:
    """What the store does on its own thermostat from ``temp0_c`` (``heating``: it was heating)."""
    n = store.dt_h.size
    temps = np.empty(n + 1)
    power = np.zeros(n)
    wants = np.zeros(n, dtype=bool)
    temp = temps[0] = temp0_c
    for t in range(n):
        heating = temp < store.thermostat_c - store.hysteresis_k or (heating and temp < store.thermostat_c)
        wants[t] = heating
        heat = 0.0
        if heating:
            room = (store.thermostat_c - temp) * store.capacity_kwh_per_k + store.drawn_kwh[t]
            heat = float(np.clip(room + store.lost_kwh(t, temp), 0.0, store.heat_max_kwh()[t]))
        temp = float(store.after(t, temp, heat))
        heating = heating and temp < store.thermostat_c - 1e-6
        power[t] = heat / store.cop / store.dt_h[t] * 1000.0
        temps[t + 1] = temp
    return ThermalRun(power, temps, wants)


def _thermostat_wants(
    store: ThermalStore, temps: FloatArray, power_w: FloatArray, ran: bool = False
) -> npt.NDArray[np.bool_]:
    """Would the thermostat heat in each slot, given the temperatures of a planned run: from its
    start, or once the store falls below its band before the slot's end. A slot without planned
    heat after one with it (``ran``: the store heats now, before the first slot) under the
    setpoint too: the device, heating when let back to its thermostat, runs on to the setpoint."""
    wants = np.zeros(power_w.size, dtype=bool)
    heating = False
    low = store.thermostat_c - store.hysteresis_k
    for t in range(power_w.size):
        temp = float(temps[t])
        heating = temp < low or (heating and temp < store.thermostat_c)
        runs_on = ran and temp < store.thermostat_c and power_w[t] <= PLANNED_HEAT_W
        wants[t] = heating or float(temps[t + 1]) < low or runs_on
        ran = bool(power_w[t] > PLANNED_HEAT_W)
    return wants


def pieces_count(slot_min: npt.ArrayLike, share: npt.ArrayLike) -> FloatArray:
    """In how many pieces a store's element runs the ``share`` of a slot of ``slot_min`` minutes:
    one per ``PIECE_MIN`` at most, each piece and each pause ``MIN_RUN_MIN`` at least (one
    where they cannot be)."""
    minutes, on = np.asarray(slot_min, dtype=np.float64), np.asarray(share, dtype=np.float64)
    on = on * minutes
    eps = 1e-9
    most = np.minimum(
        np.floor(minutes / PIECE_MIN + eps),
        np.minimum(np.floor(on / MIN_RUN_MIN + eps), np.floor((minutes - on) / MIN_RUN_MIN + eps)),
    )
    out: FloatArray = np.maximum(most, 1.0)
    return out


def levels(dt_h: FloatArray) -> FloatArray:
    """The shares of a slot the element may run for, off first (by the horizon's median slot):
    ``MIN_RUN_MIN`` and whole ``ELEMENT_STEP_MIN`` steps longer than that."""
    slot_min = float(np.median(dt_h)) * 60.0
    steps = max(1, round(slot_min / ELEMENT_STEP_MIN))
    least = min(MIN_RUN_MIN / slot_min, 1.0)
    shares = np.linspace(0.0, 1.0, steps + 1)
    out: FloatArray = np.concatenate(([0.0, least], shares[shares > least + 1e-9]))
    return out


def guard_k(store: ThermalStore) -> FloatArray:
    """How far above ``min_c`` each slot is to end: the extra drop of the draw of ``guard_h``
    (an hour by default) up to the slot's end at its high quantile (the store was last planned
    from where it was at most that long before)."""
    spread = np.asarray(store.draw_spread, dtype=np.float64)
    high = np.exp(DRAW_QUANTILE_Z * spread - spread * spread / 2.0) - 1.0  # the profile is the mean
    ends = np.cumsum(store.dt_h)
    since = ends - store.guard_h
    first = np.searchsorted(ends, since + 1e-9)  # the slot the guarded time begins in
    drawn = np.concatenate(([0.0], np.cumsum(store.drawn_kwh)))
    within = np.clip((ends[first] - since) / store.dt_h[first], 0.0, 1.0)  # of that slot, its share
    ahead = drawn[1:] - drawn[first + 1] + within * store.drawn_kwh[first]
    out: FloatArray = high * ahead / store.capacity_kwh_per_k
    return out


def temperature_grid(store: ThermalStore) -> FloatArray:
    """``GRID_POINTS`` temperatures from about ``BELOW_MIN_K`` below ``min_c`` up to ``max_c`` (or just
    above), one of them ``min_c``: a store held at its minimum ends its slots on a point, where
    the value of the heat it holds is exact, not between two."""
    spacing = (store.max_c - store.min_c + BELOW_MIN_K[store.kind]) / (GRID_POINTS - 1)
    above = math.ceil((store.max_c - store.min_c) / spacing - 1e-9)
    out: FloatArray = store.min_c + spacing * np.arange(above - GRID_POINTS + 1, above + 1, dtype=np.float64)
    return out


def place(
    store: ThermalStore, temp0_c: float, run_cost: FloatArray, max_price: float, heating: bool = False
) -> ThermalRun:
    """The least-cost run from ``temp0_c``: ``run_cost[l, t]`` is slot t's expected cost of the
    element running for ``levels(store.dt_h)[l + 1]`` of it (its full power for that share of the slot),
    ``max_price`` the dearest price per kWh (``heating``: the store heats now)."""
    n = store.dt_h.size
    count = levels(store.dt_h).size - 1
    if run_cost.shape != (count, n):
        raise ValueError(f"run_cost: expected ({count}, {n}) values, got {run_cost.shape}")
    grid = temperature_grid(store)
    electric_kwh = store.electric_w * store.dt_h / 1000.0
    per_kwh = HEAT_LEFT_WORTH * float(np.median(run_cost[-1] / electric_kwh))
    comfort = COMFORT_WEIGHT * max(max_price, 0.01) * store.capacity_kwh_per_k / store.cop
    floor = store.min_c
    slot_floor = floor + guard_k(store)
    if store.required_c is not None:  # a requirement is held as comfort is
        slot_floor = np.maximum(slot_floor, store.required_c)
    # the heat left at the end (above min_c) saves part of its energy at the horizon's median cost
    value = -np.maximum(grid - floor, 0.0) * store.capacity_kwh_per_k / store.cop * per_kwh
    value = value + comfort * np.maximum(floor - grid, 0.0)
    values = [value]
    step = _Step(store, grid, run_cost, comfort, slot_floor)
    extra, low, frac = step.on_grid()
    for t in range(n - 1, -1, -1):
        after = values[-1]
        best = after[low[t]] * (1.0 - frac[t]) + after[low[t] + 1] * frac[t] + extra[t]
        values.append(best.min(axis=0))
    values.reverse()  # values[t]: the cost from slot t's start on
    temps = np.empty(n + 1)
    power = np.zeros(n)
    temp = temps[0] = float(np.clip(temp0_c, grid[0], store.max_c))
    for t in range(n):
        heat, temp = step.best(t, temp, values[t + 1])
        power[t] = heat / store.cop / store.dt_h[t] * 1000.0
        temps[t + 1] = temp
    return ThermalRun(power, temps, _thermostat_wants(store, temps, power, heating))


class _Step:
    """One slot of the plan for each level of running (rows, off first) from each temperature:
    the slot's cost, comfort and the heat each gives, and where it leaves the store."""

    def __init__(
        self, store: ThermalStore, grid: FloatArray, run_cost: FloatArray, comfort: float, floor: FloatArray
    ) -> None:
        self.store, self.grid, self.comfort, self.floor = store, grid, comfort, floor
        self.heat_max = store.heat_max_kwh()  # (n,)
        self.run_cost = run_cost  # (levels - 1, n)
        self.levels = levels(store.dt_h)
        self.shares = self.levels.tolist()
        self.level_cost = np.vstack((np.zeros(run_cost.shape[1]), run_cost))  # (levels, n), off first

    def fit_cost(self, share: FloatArray, t: npt.NDArray[np.intp] | int) -> FloatArray:
        """Slot ``t``'s cost of running for ``share`` of it, between the levels' costs."""
        share = np.clip(share, 0.0, 1.0)
        low = np.clip(np.searchsorted(self.levels, share, side="right") - 1, 0, self.levels.size - 2)
        frac = (share - self.levels[low]) / (self.levels[low + 1] - self.levels[low])
        out: FloatArray = self.level_cost[low, t] * (1.0 - frac) + self.level_cost[low + 1, t] * frac
        return out

    def _moves(self, temp: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """For ``temp`` (..., n, T) at each slot: the heat (..., n, L, T), the temperature after
        it and the slot's cost of it with comfort."""
        s = self.store
        cap = s.capacity_kwh_per_k
        lost = s.loss_w_per_k * (temp - s.ref_c[:, None]) * s.dt_h[:, None] / 1000.0  # (n, T)
        room = np.clip((s.max_c - temp) * cap + s.drawn_kwh[:, None] + lost, 0.0, self.heat_max[:, None])
        heat = np.minimum(self.levels[None, :, None] * self.heat_max[:, None, None], room[:, None, :])
        slots = np.arange(heat.shape[0])[:, None, None]
        over = s.overshoot_kwh(slots, heat)
        after = temp[:, None, :] + (heat - over - (s.drawn_kwh[:, None] + lost)[:, None, :]) / cap
        cost = np.zeros_like(heat)
        full = self.levels[None, 1:, None] * self.heat_max[:, None, None]
        # a level its thermostat cuts short costs its share
        share = np.divide(heat[:, 1:], full, out=np.zeros_like(full * heat[:, 1:]), where=full > 0)
        cost[:, 1:] = self.run_cost.T[:, :, None] * share
        # the last move: just the heat that ends the slot at its floor (the element's share need not
        # be a level: the control loop switches it off once the share is done), for MIN_RUN_MIN at least
        need = (self.floor[:, None] - temp) * cap + s.drawn_kwh[:, None] + lost
        least = np.minimum(MIN_RUN_MIN / 60.0 / s.dt_h, 1.0) * self.heat_max  # (n,)
        slots = np.arange(need.shape[0])[:, None]
        fit = np.zeros_like(need)
        for _ in range(OVERSHOOT_ROUNDS):  # and what its pieces lose beyond the start's loss
            more = need + s.overshoot_kwh(slots, fit)
            fit = np.minimum(np.where(need > 0, np.maximum(more, least[:, None]), 0.0), room)  # (n, T)
        share = np.divide(
            fit, self.heat_max[:, None], out=np.zeros_like(fit), where=self.heat_max[:, None] > 0
        )
        fit_after = temp + (fit - s.overshoot_kwh(slots, fit) - s.drawn_kwh[:, None] - lost) / cap
        heat = np.concatenate((heat, fit[:, None, :]), axis=1)
        after = np.concatenate((after, fit_after[:, None, :]), axis=1)
        cost = np.concatenate((cost, self.fit_cost(share, slots)[:, None, :]), axis=1)
        extra = cost + self.comfort * np.maximum(self.floor[:, None, None] - after, 0.0)
        return heat, after, extra

    def on_grid(self) -> tuple[FloatArray, npt.NDArray[np.intp], FloatArray]:
        """Every slot from every grid point: the cost and comfort (n, L, G), and the grid cell
        (low index, share of the way to the next) the store ends in."""
        n = self.store.dt_h.size
        _, after, extra = self._moves(np.broadcast_to(self.grid, (n, self.grid.size)))
        g = self.grid
        pos = np.clip((after - g[0]) / (g[1] - g[0]), 0.0, g.size - 1)
        low = np.minimum(pos.astype(np.intp), g.size - 2)
        return extra, low, pos - low

    def best(self, t: int, temp: float, value_next: FloatArray) -> tuple[float, float]:
        """The heat of the least-cost level of slot ``t`` from ``temp`` (off first on a tie),
        and the temperature it leaves."""
        s, heat_max, grid = self.store, float(self.heat_max[t]), self.grid
        cap, drawn = s.capacity_kwh_per_k, float(s.drawn_kwh[t])
        lost = s.loss_w_per_k * (temp - float(s.ref_c[t])) * float(s.dt_h[t]) / 1000.0
        room = min(max((s.max_c - temp) * cap + drawn + lost, 0.0), heat_max)
        g0, dg, last = float(grid[0]), float(grid[1] - grid[0]), grid.size - 1
        floor = float(self.floor[t])

        def worth(after: float) -> float:
            """The value of ending the slot at ``after`` (between the grid's points), and the
            comfort it falls short by."""
            pos = min(max((after - g0) / dg, 0.0), float(last))
            low = min(int(pos), last - 1)
            frac = pos - low
            value = float(value_next[low]) * (1.0 - frac) + float(value_next[low + 1]) * frac
            return value + self.comfort * max(floor - after, 0.0)

        best_score, best_heat, best_after = math.inf, 0.0, temp
        for level, share_of_slot in enumerate(self.shares):
            heat = min(share_of_slot * heat_max, room)
            after = temp + (heat - float(s.overshoot_kwh(t, heat)) - drawn - lost) / cap
            score = worth(after)
            if level and heat_max > 0:  # a level its thermostat cuts short costs its share
                score += float(self.run_cost[level - 1, t]) * heat / (share_of_slot * heat_max)
            if score < best_score:
                best_score, best_heat, best_after = score, heat, after
        need = (floor - temp) * cap + drawn + lost
        least = min(MIN_RUN_MIN / 60.0 / float(s.dt_h[t]), 1.0) * heat_max
        fit = 0.0
        for _ in range(OVERSHOOT_ROUNDS):
            fit = min(max(need + float(s.overshoot_kwh(t, fit)), least), room) if need > 0 else 0.0
        if fit > 0 and heat_max > 0:
            after = temp + (fit - float(s.overshoot_kwh(t, fit)) - drawn - lost) / cap
            score = worth(after) + float(self.fit_cost(np.array(fit / heat_max), t))
            if score < best_score:
                best_heat, best_after = fit, after
        return best_heat, best_after
