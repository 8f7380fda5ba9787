"""Appliances: a run of a known power profile placed in its window where it costs least.

A run that cannot be interrupted starts at a slot's start (or its window's) and keeps its
profile; an interruptible one runs whole slots at its mean power, on for at least
``min_on_min`` and off for at least ``min_off_min`` between (a small dynamic program over
slots, runs done and how long the switch has been in its state). An optional appliance runs
only when its run costs at most its price cap per kWh, or only on forecast surplus PV. A run
asked for at run time (:class:`controller.loads.requirement.Requirement`) has its own window,
which stands for the configured ones it overlaps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

from controller.config.loads import PROFILE_STEP_MIN, ApplianceConfig
from controller.loads.marginal import MarginalCost
from controller.loads.requirement import Requirement, occurrences, overlaps

FloatArray = npt.NDArray[np.float64]
STEP = timedelta(minutes=PROFILE_STEP_MIN)
SURPLUS_SHARE = 0.9  # surplus-only: the forecast surplus covers at least this share of each slot's run


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class ApplianceState:
    """What the daemon knows of an appliance: windows ending by ``done_until`` have had their
    run; a run that cannot be interrupted started at ``started_at`` goes on; an interruptible
    one has run ``ran_h`` hours in the current window; ``requested``: a run is asked for."""

    done_until: datetime | None = None
    started_at: datetime | None = None
    ran_h: float = 0.0
    requested: bool = False


@dataclass(frozen=True, eq=False)
class AppliancePlacement:
    power_w: FloatArray  # (n,)
    runs: tuple[Window, ...]
    reason: str
    cost: float


def windows(config: ApplianceConfig, first: datetime, last: datetime, tz: tzinfo) -> list[Window]:
    """The appliance's windows that end after ``first`` and start before ``last`` (UTC)."""
    out: list[Window] = []
    day = first.astimezone(tz).date() - timedelta(days=1)
    for _ in range(math.ceil((last - first) / timedelta(days=1)) + 2):
        start = datetime.combine(day, config.earliest_start, tz)
        end = start + timedelta(minutes=config.window_min())
        start_utc, end_utc = start.astimezone(first.tzinfo), end.astimezone(first.tzinfo)
        if end_utc > first and start_utc < last:
            out.append(Window(start_utc, end_utc))
        day += timedelta(days=1)
    return out


def default_start(config: ApplianceConfig, window: Window, tz: tzinfo) -> datetime:
    """When the window's run starts without hemsd: at the user's time (``default_start``, else
    the window's start) in the window, or at the window's start where the run would not end in
    it from there (a time outside the window, or in a day's DST gap)."""
    local = window.start.astimezone(tz)
    when = config.default_start or config.earliest_start
    start = datetime.combine(local.date(), when, tz).astimezone(window.start.tzinfo)
    if start < window.start:
        start += timedelta(days=1)
    if start + timedelta(minutes=config.duration_w_min()) > window.end:
        start = window.start
    return start


def due_windows(
    config: ApplianceConfig,
    state: ApplianceState,
    first: datetime,
    last: datetime,
    tz: tzinfo,
    requirement: Requirement | None = None,
) -> list[tuple[Window, bool]]:
    """The windows whose run is still due between ``first`` and ``last``, each with whether it is
    a requirement's (which replaces the configured windows it overlaps)."""
    out: list[tuple[Window, bool]] = []
    for window in windows(config, first, last, tz):
        if state.done_until is not None and window.end <= state.done_until:
            continue
        if config.repeat == "request" and not state.requested:
            continue
        if any(overlaps(each, window.start, window.end) for each in occurrences(requirement)):
            continue
        out.append((window, False))
    for each in occurrences(requirement):
        if each.temperature_c is None and each.by > first:
            out.append((Window(each.start, each.by), True))
    return sorted(out, key=lambda w: w[0].start)


def run_power(
    profile: Sequence[float], start: datetime, starts: Sequence[datetime], ends: Sequence[datetime]
) -> FloatArray:
    """The mean power in each slot of a run of ``profile`` (W per quarter-hour) from ``start``."""
    out: FloatArray = run_powers(profile, [start], starts, ends)[0]
    return out


def run_powers(
    profile: Sequence[float],
    run_starts: Sequence[datetime],
    starts: Sequence[datetime],
    ends: Sequence[datetime],
) -> FloatArray:
    """:func:`run_power` of a run from each of ``run_starts`` (rows)."""
    origin = starts[0]
    s = np.array([(x - origin).total_seconds() for x in starts])
    e = np.array([(x - origin).total_seconds() for x in ends])
    step_s = STEP.total_seconds()
    begin = np.array([(x - origin).total_seconds() for x in run_starts])
    a = begin[:, None, None] + step_s * np.arange(len(profile))[None, :, None]  # (runs, quarters, 1)
    overlap = np.clip(np.minimum(a + step_s, e) - np.maximum(a, s), 0.0, None)  # (runs, quarters, n)
    out: FloatArray = (np.asarray(profile, dtype=np.float64) @ overlap) / (e - s)
    return out


def _describe(when: Window, tz: tzinfo) -> str:
    return f"{when.start.astimezone(tz):%H:%M}-{when.end.astimezone(tz):%H:%M}"


def place_appliance(
    config: ApplianceConfig,
    state: ApplianceState,
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    tz: tzinfo,
    marginal: MarginalCost,
    requirement: Requirement | None = None,
) -> AppliancePlacement:
    """The appliance's runs over the horizon [starts[0], ends[-1]): one per window that ends
    within it (or must start within it), at the least expected cost; ``requirement``: a run
    asked for by a time."""
    n = len(starts)
    total = np.zeros(n)
    runs: list[Window] = []
    reasons: list[str] = []
    cost = 0.0
    profile = config.profile()
    duration = len(profile) * STEP
    horizon_end = ends[-1]
    for window, requested in due_windows(config, state, starts[0], horizon_end, tz, requirement):
        asked = ", as requested" if requested else ""
        if state.started_at is not None and window.start <= state.started_at < window.end:
            power = run_power(profile, state.started_at, starts, ends)
            run = Window(state.started_at, state.started_at + duration)
            runs.append(run)
            total += power
            cost += float(marginal.cost(power).sum())
            reasons.append(f"{config.name} running {_describe(run, tz)}: started, runs to its end")
            continue
        if window.end - duration > horizon_end:
            reasons.append(
                f"{config.name}: waits for the prices after {horizon_end.astimezone(tz):%H:%M} "
                f"(window ends {window.end.astimezone(tz):%H:%M})"
            )
            continue
        found = (
            _interruptible(config, state, window, starts, ends, marginal)
            if config.interruptible
            else _whole(config, window, starts, ends, marginal)
        )
        if found is None:
            reasons.append(
                f"{config.name}: no room for a run before {window.end.astimezone(tz):%H:%M}"
                + (" as requested: not reachable" if requested else "")
            )
            continue
        power, run_cost = found
        kwh = (
            float(
                power
                @ np.array([(e - s).total_seconds() / 3600.0 for s, e in zip(starts, ends, strict=True)])
            )
            / 1000.0
        )
        per_kwh = run_cost / kwh if kwh > 0 else 0.0
        on = np.flatnonzero(power > 0)
        run = Window(starts[int(on[0])], ends[int(on[-1])]) if on.size else window
        if config.optional and not requested and not _worth_it(config, power, per_kwh, marginal):
            cap = "surplus PV only" if config.surplus_only else f"cap {config.price_cap:.2f}/kWh"
            reasons.append(
                f"{config.name} not run before {window.end.astimezone(tz):%H:%M}: best {per_kwh:.2f}/kWh ({cap})"
            )
            continue
        marginal.add(power)
        total += power
        cost += run_cost
        runs.append(run)
        reasons.append(
            f"{config.name} at {_describe(run, tz)}: {_why(config, power, per_kwh, window, tz, marginal)}{asked}"
        )
    return AppliancePlacement(total, tuple(runs), "; ".join(reasons) or f"{config.name}: no run due", cost)


def _why(
    config: ApplianceConfig,
    power: FloatArray,
    per_kwh: float,
    window: Window,
    tz: tzinfo,
    marginal: MarginalCost,
) -> str:
    if config.surplus_only:
        on = power > 0
        export = float(np.mean(marginal.slots.export_price[on])) if on.any() else 0.0
        return f"surplus PV worth {export:.2f}/kWh exported"
    hours = len(config.profile()) * PROFILE_STEP_MIN / 60.0
    return f"cheapest {hours:g} h before {window.end.astimezone(tz):%H:%M} ({per_kwh:.2f}/kWh expected)"


def _worth_it(config: ApplianceConfig, power: FloatArray, per_kwh: float, marginal: MarginalCost) -> bool:
    if config.surplus_only:
        surplus = marginal.surplus_w()
        on = power > 0
        return bool(on.any()) and bool(np.all(surplus[on] >= SURPLUS_SHARE * power[on]))
    return config.price_cap is not None and per_kwh <= config.price_cap


def _whole(
    config: ApplianceConfig,
    window: Window,
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    marginal: MarginalCost,
) -> tuple[FloatArray, float] | None:
    """The least-cost start of an uninterrupted run, and its power per slot and cost."""
    profile = config.profile()
    duration = len(profile) * STEP
    first = max(window.start, starts[0])
    candidates = sorted(
        {s for s in starts if first <= s and s + duration <= window.end}
        | ({first} if first + duration <= window.end else set())
    )
    if config.surplus_only:
        candidates = [c for c in candidates if c >= starts[0]]
    if not candidates:
        return None
    powers = run_powers(profile, candidates, starts, ends)
    costs = marginal.cost(powers).sum(axis=1)
    if config.surplus_only:
        surplus = marginal.surplus_w()
        short = np.any((powers > 0) & (surplus[None, :] < SURPLUS_SHARE * powers), axis=1)
        costs = np.where(short, costs + 1e6, costs)  # a run fully on surplus first, when there is one
    best = int(np.argmin(costs))
    return powers[best], float(marginal.cost(powers[best]).sum())


def _interruptible(
    config: ApplianceConfig,
    state: ApplianceState,
    window: Window,
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    marginal: MarginalCost,
) -> tuple[FloatArray, float] | None:
    """The least-cost slots of an interruptible run at its mean power, on and off for at least
    the configured minimums (whole slots of the window)."""
    inside = [
        t for t, (s, e) in enumerate(zip(starts, ends, strict=True)) if s >= window.start and e <= window.end
    ]
    if not inside:
        return None
    dt_h = np.array([(ends[t] - starts[t]).total_seconds() / 3600.0 for t in inside])
    slot_h = float(np.median(dt_h))
    profile = config.profile()
    mean_w = float(np.mean(profile))
    need_h = max(len(profile) * PROFILE_STEP_MIN / 60.0 - state.ran_h, 0.0)
    need = math.ceil(need_h / slot_h - 1e-9)
    if need == 0:
        return np.zeros(len(starts)), 0.0
    on_min = max(1, math.ceil(config.min_on_min / 60.0 / slot_h - 1e-9))
    off_min = max(1, math.ceil(config.min_off_min / 60.0 / slot_h - 1e-9))
    power = np.zeros((1, len(starts)))
    power[0, inside] = mean_w
    slot_cost = marginal.cost(power)[0]
    # state: (slots run, streak): streak > 0 on for that many slots (capped), < 0 off, 0 not started
    best: dict[tuple[int, int], tuple[float, tuple[int, ...]]] = {(0, 0): (0.0, ())}
    for t in inside:
        nxt: dict[tuple[int, int], tuple[float, tuple[int, ...]]] = {}
        for (done, streak), (c, chosen) in best.items():
            options = []
            if streak <= 0 or streak >= on_min or done == need:  # off
                after = 0 if streak == 0 else (max(streak - 1, -off_min) if streak < 0 else -1)
                options.append(((done, after), c, chosen))
            if done < need and (streak >= 0 or streak <= -off_min):  # on
                options.append(
                    ((done + 1, min(max(streak, 0) + 1, on_min)), c + float(slot_cost[t]), (*chosen, t))
                )
            for key, value, path in options:
                if key not in nxt or value < nxt[key][0]:
                    nxt[key] = (value, path)
        best = nxt
    finished = [v for (done, streak), v in best.items() if done == need and (streak <= 0 or streak >= on_min)]
    if not finished:
        return None
    c, chosen = min(finished)
    out = np.zeros(len(starts))
    out[list(chosen)] = mean_w
    return out, c
