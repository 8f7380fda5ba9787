"""Planning against a capacity charge: an outer search over the month's import peak.

A capacity charge bills the month's highest window-average import power, so raising it costs
money for the whole month (and, where the charge averages twelve monthly peaks, for a year):
not a price of any one slot. For each candidate cap on import power, from the peak already paid
for (the month's peak so far, at least the charge's minimum) up to the peak a plan that ignores
the charge reaches, the deterministic planner plans with import above the cap priced as if that
slot alone raised the peak (its price per kW over the slot's hours per kWh); each plan is then
scored by its energy cost plus what it really raises the peak by, times the price per kW, and
the least wins.

The executor holds the chosen cap (or the slot's planned import, where the plan goes above it)
against the real house (:func:`held_request_w`): a charge is cut to what the cap leaves, and a
hold or a discharge that would import above it becomes self-use, where the inverter covers the
house as it draws, within a second (a discharge at a set power could only follow the house from
reading to reading, and the executor rewrites the inverter only for changes past its
hysteresis). A recourse plan's self-use above the cap covers only the draw above it where the
battery could not cover the whole house for an hour (:func:`shaved_request_w`).

The recourse planner searches the same caps by its expected cost
(:func:`recourse_against_peak`): each cap's policy is scored by its expected cost under the
cap, import above it surcharged in each case of the forecast's departures, plus what the cap
itself raises the peak by; the executor then decides on the house as measured under the chosen
cap's surcharge and holds the cap. With realistic forecasts on the Belgian house it kept more of
the optimum's savings than the deterministic search in four of five winter months (+1.5 to +7.3
points, 2.0 fewer in November; ``bench/bench_settlement.py``), at two to ten backward passes per
plan: a cap is tried only while it might still win.

Raising a month's peak by 1 kW costs ``price_per_kw_month`` whether the charge bills the month's
own peak or the mean of the last twelve (then 1/12 of it in each of twelve bills). The cap
applies to the whole horizon, also past the month's end (where it is conservative).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from controller.physics import BatteryParams, GridLimits
from controller.planner import recourse
from controller.planner.deterministic import Solution, solve
from controller.planner.goals import Floors
from controller.planner.plan import Horizon, PlanConstraints

CANDIDATES = 8  # caps tried between the peak paid for and the unconstrained plan's peak
HOLD_TOLERANCE_W = 1.0  # import this far above the cap is the plan's own, not a departure
# A self-use above the held peak covers only the draw above it where the battery would run empty
# within this long covering the whole house (bench/bench_settlement.py, Belgian winter months).
SHAVE_WITHIN_H = 1.0


@dataclass(frozen=True, slots=True)
class PeakCharge:
    """What raising the month's import peak costs, as the planner weighs it."""

    price_per_kw: float  # per kW the peak rises, VAT included
    paid_kw: float  # the peak already billed: the month's so far, at least the charge's minimum
    window_h: float = 0.25  # the charge's averaging window


@dataclass(frozen=True)
class PeakPlan:
    solution: Solution
    cap_kw: float  # the cap chosen (inf: none helped)
    peak_kw: float  # the plan's highest import power over the horizon
    energy_cost: float  # without any surcharge
    peak_cost: float  # what the plan raises the peak by, times the price


def _energy_cost(h: Horizon, sol: Solution, params: BatteryParams) -> float:
    grid_kwh = sol.grid_w * h.dt_h / 1000.0
    throughput = np.abs(sol.battery_w) * h.dt_h / 1000.0
    return float(
        (h.import_price * np.maximum(grid_kwh, 0.0) + h.export_price * np.minimum(grid_kwh, 0.0)).sum()
        + params.wear_cost_per_kwh * throughput.sum()
    )


def _peak_kw(h: Horizon, sol: Solution, window_h: float) -> float:
    """The plan's highest import power, as the charge's window averages it (slots longer than
    the window count at their mean)."""
    power = np.maximum(sol.grid_w, 0.0) / 1000.0
    if power.size == 0:
        return 0.0
    if float(h.dt_h.max()) >= window_h:
        return float(power.max())
    per = max(1, round(window_h / float(h.dt_h[0])))
    usable = power.size - power.size % per
    windows = power[:usable].reshape(-1, per).mean(axis=1) if usable else power
    return float(max(windows.max(), power[usable:].mean() if usable < power.size else 0.0))


def capped_limits(limits: GridLimits, cap_kw: float, charge: PeakCharge, horizon: Horizon) -> GridLimits:
    """The limits with import above ``cap_kw`` priced as if that slot alone raised the peak."""
    if not np.isfinite(cap_kw):
        return limits
    surcharge = charge.price_per_kw / float(horizon.dt_h.min())
    return replace(limits, peak_w=cap_kw * 1000.0, peak_price_per_kwh=surcharge)


def plan_against_peak(
    params: BatteryParams,
    limits: GridLimits,
    e0_kwh: float,
    horizon: Horizon,
    end_value_per_kwh: float,
    constraints: PlanConstraints,
    soc_step_kwh: float | None,
    charge: PeakCharge,
) -> PeakPlan:
    """The least-cost plan counting what it raises the month's peak by (see the module docstring)."""

    def scored(cap_kw: float) -> PeakPlan:
        capped = capped_limits(limits, cap_kw, charge, horizon)
        sol = solve(params, capped, e0_kwh, horizon, end_value_per_kwh, constraints, soc_step_kwh)
        peak = _peak_kw(horizon, sol, charge.window_h)
        energy = _energy_cost(horizon, sol, params)
        raised = max(peak - charge.paid_kw, 0.0) * charge.price_per_kw
        return PeakPlan(sol, cap_kw, peak, energy, raised)

    free = scored(float("inf"))
    if free.peak_kw <= charge.paid_kw + 1e-6 or charge.price_per_kw <= 0:
        return free
    best = free
    for k in range(CANDIDATES):
        cap = charge.paid_kw + (free.peak_kw - charge.paid_kw) * k / CANDIDATES
        candidate = scored(cap)
        if candidate.energy_cost + candidate.peak_cost < best.energy_cost + best.peak_cost - 1e-9:
            best = candidate
    return best


@dataclass(frozen=True)
class RecoursePeakPlan:
    policy: recourse.Policy
    cap_kw: float  # the cap chosen
    limits: GridLimits  # the limits with import above the cap surcharged (capped_limits)
    raised_cost: float  # what the cap raises the month's peak by, times the price


def recourse_against_peak(
    params: BatteryParams,
    limits: GridLimits,
    e0_kwh: float,
    horizon: Horizon,
    end_value_per_kwh: float,
    errors_w: npt.NDArray[np.float64],
    transitions: npt.NDArray[np.float64] | None,
    soc_step_kwh: float | None,
    charge: PeakCharge,
    rules: PlanConstraints,
    floors: Floors | None = None,
) -> RecoursePeakPlan:
    """The outer search by the recourse planner's expected cost: caps from the peak paid for up
    to the peak the policy that ignores the charge reaches along the forecast, each scored by
    the policy's expected cost under it (import above the cap surcharged in each case as if that
    slot alone raised the peak) plus what the cap itself raises the peak by, times the price;
    ``floors``: the battery goals' bounds, as the plan is made with them (its policy is then the
    plan's, :func:`controller.planner.recourse.plan`'s ``searched``).

    The caps are tried upwards and the search stops where one cannot win: a surcharge only adds
    to the stages' costs, so no capped policy expects less than the policy without a cap, and
    a cap whose rise alone, on top of that, costs as much as the best so far is no better, nor
    is any cap above it. The cap chosen is the one trying every candidate would choose."""

    def scored(cap_kw: float) -> tuple[float, RecoursePeakPlan]:
        capped = capped_limits(limits, cap_kw, charge, horizon)
        p = recourse.policy(
            params,
            capped,
            e0_kwh,
            horizon,
            errors_w,
            end_value_per_kwh,
            soc_step_kwh,
            transitions,
            floors,
            rules,
        )
        raised = max(cap_kw - charge.paid_kw, 0.0) * charge.price_per_kw
        return p.expected_cost + raised, RecoursePeakPlan(p, cap_kw, capped, raised)

    free = recourse.policy(
        params, limits, e0_kwh, horizon, errors_w, end_value_per_kwh, soc_step_kwh, transitions, floors, rules
    )
    peak = _peak_kw(horizon, free.solution, charge.window_h)
    if peak <= charge.paid_kw + 1e-6 or charge.price_per_kw <= 0:
        return scored(charge.paid_kw)[1]
    best = scored(charge.paid_kw)
    for k in range(1, CANDIDATES + 1):
        cap = charge.paid_kw + (peak - charge.paid_kw) * k / CANDIDATES
        if free.expected_cost + (cap - charge.paid_kw) * charge.price_per_kw >= best[0]:
            break  # no cap from here on can do better (see below)
        candidate = scored(cap)
        if candidate[0] < best[0]:
            best = candidate
    return best[1]


def held_limits(limits: GridLimits, held_w: float, charge_per_kw: float, dt_h: float) -> GridLimits:
    """The limits a recourse plan under a capacity charge was made with, for the executor's
    decision on the house as measured: import above the held peak surcharged as the plan's."""
    return replace(limits, peak_w=held_w, peak_price_per_kwh=charge_per_kw / dt_h)


def shaved_request_w(house_w: float, held_w: float, deliverable_kwh: float) -> float:
    """The battery power (+ discharge) of a recourse plan's self-use decided on the house as
    measured, under a held peak: the house; but where it draws above ``held_w`` and the energy
    the battery can still deliver (``deliverable_kwh``) would not cover that draw for
    ``SHAVE_WITHIN_H``, only the draw above the peak, so that the battery lasts the hours the
    house may stay as high (a house far above its forecast for an evening)."""
    if house_w <= held_w + HOLD_TOLERANCE_W or deliverable_kwh >= house_w / 1000.0 * SHAVE_WITHIN_H:
        return house_w
    return house_w - held_w


def held_request_w(request_w: float, house_w: float, held_w: float) -> float:
    """The battery power (+ discharge) the executor asks for to keep import (``house_w`` = load -
    PV, minus the battery) at most ``held_w``: ``request_w`` where it does; a charge cut to the
    room left under the cap; otherwise self-use (the battery covers the house)."""
    if house_w - request_w <= held_w + HOLD_TOLERANCE_W:
        return request_w
    if request_w < 0 and house_w < held_w:
        return house_w - held_w
    return house_w
