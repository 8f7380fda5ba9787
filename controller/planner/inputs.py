"""The planners' inputs: from the price service and the forecaster to a plan.

The optimizer itself is pure (controller.planner.deterministic); this module decides what it is fed: the
priced slots from now to the horizon (the slot in progress cut to start now), a forecast per
slot, the battery's current state and the end-of-horizon value from config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from controller.config.models import HemsdConfig
from controller.forecast.errors import ErrorTable
from controller.physics import GridLimits
from controller.planner import recourse
from controller.planner.deterministic import goal_floors
from controller.planner.deterministic import plan as optimize
from controller.planner.export_room import Made, made_plan, within_room
from controller.planner.goals import NO_GOALS, SocGoals
from controller.planner.peak import PeakCharge, capped_limits, plan_against_peak, recourse_against_peak
from controller.planner.periods import merged, netting_period_s, periods_of
from controller.planner.plan import EndValue, Plan, PlanConstraints, PlanSlot, horizon_from_slots
from controller.settlement.prices import export_room, planning_limits, planning_prices
from controller.settlement.schemes import Scheme

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PricedSlot:
    start: datetime
    end: datetime
    import_price: float
    export_price: float


def horizon_slots(slots: Sequence[PricedSlot], now: datetime, horizon: timedelta) -> list[PricedSlot]:
    """The contiguous run of slots from the one containing ``now`` up to ``now + horizon``.

    The slot in progress is cut to start at ``now`` (its first part is past); a gap in the
    prices ends the horizon there.
    """
    out: list[PricedSlot] = []
    limit = now + horizon
    for slot in sorted(slots, key=lambda s: s.start):
        if slot.end <= now or slot.start >= limit:
            continue
        if out and slot.start != out[-1].end:
            break
        start = max(slot.start, now)
        if (slot.end - start).total_seconds() < 1:
            continue
        out.append(PricedSlot(start, slot.end, slot.import_price, slot.export_price))
    return out


def end_value(config: HemsdConfig) -> EndValue:
    spec = config.planner.end_value
    if spec.mode == "price":
        return EndValue(price_per_kwh=spec.price, import_percentile=None)
    return EndValue(price_per_kwh=None, import_percentile=spec.percentile)


def make_plan(
    config: HemsdConfig,
    soc_pct: float,
    slots: Sequence[PricedSlot],
    pv_w: Sequence[float],
    load_w: Sequence[float],
    created_at: datetime,
    errors: ErrorTable | None = None,
    goals: SocGoals = NO_GOALS,
    month_peak_kw: float = 0.0,
    period_net_kwh: float = 0.0,
    by_period: bool = True,
    year_exported_kwh: float = 0.0,
) -> Plan:
    """The plan with the configured planner; ``errors``: the net-load error table the recourse
    planner weighs (None: no departure from the forecast); ``goals``: the battery's SoC targets
    and reserves in force; ``month_peak_kw``: this month's import peak so far, for a capacity
    charge (:mod:`controller.planner.peak`); ``period_net_kwh``: the net import metered so far in
    the settlement period in progress, where the scheme nets within periods longer than the
    slots (the plan's slots are then the periods, :mod:`controller.planner.periods`, unless not
    ``by_period``: the flexible loads' joint plan keeps the slots); ``year_exported_kwh``: the
    export settled since the local year began, for a yearly feed-in cap
    (:mod:`controller.planner.export_room`).

    The settlement scheme (``[settlement]``) reaches the planners as prices and limits: its
    per-slot parts priced into the slots, its export limit on the grid limits, and its rules on
    grid charging and battery export as plan constraints (both planners honour them); a capacity
    charge by an outer search over the month's peak (:mod:`controller.planner.peak`); a yearly
    feed-in cap by the export price of the year's slots (:mod:`controller.planner.export_room`)."""
    scheme = config.settlement.build()
    limits = config.grid.limits()
    if scheme.per_slot:
        return _planned(
            config, scheme, soc_pct, slots, pv_w, load_w, limits, created_at, errors, goals, month_peak_kw
        )[0]
    slots = settled_slots(config, slots)
    if by_period:
        slots, pv_w, load_w = period_slots(scheme, slots, pv_w, load_w, period_net_kwh)
    pv_peak_w = sum(array.kwp for array in config.forecast.arrays) * 1000.0
    limits = planning_limits(scheme.rules, limits, pv_peak_w)
    start_s = np.array([int(s.start.timestamp()) for s in slots], dtype=np.int64)
    room = export_room(scheme, start_s, config.site.zone, year_exported_kwh)
    if room is None:
        return _planned(
            config, scheme, soc_pct, slots, pv_w, load_w, limits, created_at, errors, goals, month_peak_kw
        )[0]

    def priced_at(export_price: FloatArray) -> Made[Plan]:
        repriced = [replace(s, export_price=float(e)) for s, e in zip(slots, export_price, strict=True)]
        plan, raised = _planned(
            config, scheme, soc_pct, repriced, pv_w, load_w, limits, created_at, errors, goals, month_peak_kw
        )
        made = made_plan(plan)
        return replace(made, objective=made.objective + raised)  # the bill counts the peak too

    return within_room(priced_at, np.array([s.export_price for s in slots]), room)


def _planned(
    config: HemsdConfig,
    scheme: Scheme,
    soc_pct: float,
    slots: Sequence[PricedSlot],
    pv_w: Sequence[float],
    load_w: Sequence[float],
    limits: GridLimits,
    created_at: datetime,
    errors: ErrorTable | None,
    goals: SocGoals,
    month_peak_kw: float,
) -> tuple[Plan, float]:
    """The plan over slots priced as the scheme settles them, within ``limits``, and what it
    raises the month's peak by, times the capacity charge's price (0 without one)."""
    params = config.battery.params()
    step = config.planner.soc_step_pct / 100.0 * params.capacity_kwh
    allow_grid_charge, allow_battery_export = scheme.rules.planner_flags()
    rules = PlanConstraints(allow_grid_charge, allow_battery_export)
    soc = min(max(soc_pct, 0.0), 100.0)
    if config.planner.kind == "recourse":
        errors_w, transitions = slot_errors_w(errors, slots, created_at)
        plan_limits, held_w, searched, raised = limits, None, None, 0.0
        if scheme.capacity is not None and slots:
            charge = peak_charge(scheme, month_peak_kw)
            h = horizon_from_slots(slots, pv_w, load_w)
            value = end_value(config).per_stored_kwh(params, h.import_price)
            floors = goal_floors(params, slots, h, goals)
            against = recourse_against_peak(
                params,
                limits,
                params.energy_kwh(soc),
                h,
                value,
                errors_w,
                transitions,
                step,
                charge,
                rules,
                floors,
            )
            plan_limits, held_w = against.limits, max(against.cap_kw, charge.paid_kw) * 1000.0
            searched, raised = against.policy, against.raised_cost
        made = recourse.plan(
            soc_pct=soc,
            params=params,
            prices=slots,
            pv_w=pv_w,
            load_w=load_w,
            errors_w=errors_w,
            transitions=transitions,
            limits=plan_limits,
            end_value=end_value(config),
            soc_step_kwh=step,
            created_at=created_at,
            display_tz=config.site.zone,
            goals=goals,
            rules=rules,
            searched=searched,
        )
        return (made if held_w is None else replace(made, import_cap_w=held_w)), raised
    spread = float(np.median([s.import_price - s.export_price for s in slots])) if slots else 0.0
    margin = config.planner.self_use_margin * max(spread, 0.0)
    constraints = PlanConstraints(
        allow_grid_charge=allow_grid_charge,
        allow_battery_export=allow_battery_export,
        self_use_margin_per_kwh=margin,
    )
    held_w, raised = None, 0.0
    if scheme.capacity is not None and slots:
        h = horizon_from_slots(slots, pv_w, load_w)
        value = end_value(config).per_stored_kwh(params, h.import_price)
        charge = peak_charge(scheme, month_peak_kw)
        chosen = plan_against_peak(
            params, limits, params.energy_kwh(soc), h, value, constraints, step, charge
        )
        limits = capped_limits(limits, chosen.cap_kw, charge, h)
        held_kw = chosen.cap_kw if math.isfinite(chosen.cap_kw) else chosen.peak_kw
        held_w, raised = max(held_kw, charge.paid_kw) * 1000.0, chosen.peak_cost
    planned = optimize(
        soc_pct=soc,
        params=params,
        prices=slots,
        pv_w=pv_w,
        load_w=load_w,
        limits=limits,
        end_value=end_value(config),
        constraints=constraints,
        soc_step_kwh=step,
        created_at=created_at,
        display_tz=config.site.zone,
        goals=goals,
    )
    return (planned if held_w is None else replace(planned, import_cap_w=held_w)), raised


def peak_charge(scheme: Scheme, month_peak_kw: float) -> PeakCharge:
    """What raising the month's peak costs under the scheme's capacity charge (it has one)."""
    c = scheme.capacity
    if c is None:
        raise ValueError(f"scheme {scheme.name!r} has no capacity charge")
    return PeakCharge(
        c.price_per_kw_month * (1.0 + scheme.vat), max(month_peak_kw, c.minimum_kw), c.window_min / 60.0
    )


def settled_slots(config: HemsdConfig, slots: Sequence[PricedSlot]) -> list[PricedSlot]:
    """The slots priced as the configured scheme settles a kWh of each
    (:func:`controller.settlement.prices.planning_prices`)."""
    if not slots:
        return list(slots)
    start_s = np.array([int(s.start.timestamp()) for s in slots], dtype=np.int64)
    ip, ep = planning_prices(
        config.settlement.build(),
        start_s,
        900,
        np.array([s.import_price for s in slots]),
        np.array([s.export_price for s in slots]),
        config.site.zone,
    )
    return [
        PricedSlot(s.start, s.end, float(i), float(e))
        for s, i, e in zip(slots, ip.tolist(), ep.tolist(), strict=True)
    ]


def period_slots(
    scheme: Scheme,
    slots: Sequence[PricedSlot],
    pv_w: Sequence[float],
    load_w: Sequence[float],
    period_net_kwh: float,
) -> tuple[list[PricedSlot], Sequence[float], Sequence[float]]:
    """The slots merged per settlement period where the scheme nets within periods longer than
    them (:func:`controller.planner.periods.merged`), else as they are."""
    if not slots:
        return list(slots), pv_w, load_w
    shortest = min((s.end - s.start).total_seconds() for s in slots)
    netting = netting_period_s(scheme, shortest)
    if netting is None:
        return list(slots), pv_w, load_w
    start_s = np.array([int(s.start.timestamp()) for s in slots], dtype=np.int64)
    periods = periods_of(start_s, netting)
    h = merged(horizon_from_slots(slots, pv_w, load_w), periods, period_net_kwh)
    ends = [*(slots[int(first)].start for first in periods.first[1:]), slots[-1].end]
    out = [
        PricedSlot(slots[int(first)].start, end, float(i), float(e))
        for first, end, i, e in zip(periods.first, ends, h.import_price, h.export_price, strict=True)
    ]
    return out, h.pv_w.tolist(), h.load_w.tolist()


def slot_errors_w(
    errors: ErrorTable | None, slots: Sequence[PricedSlot], now: datetime
) -> tuple[FloatArray, FloatArray | None]:
    """Each slot's net-load departures (W) by its lead time from ``now`` and its UTC hour (the
    table's hours are those of the UTC day the site's history is kept by), and their
    transitions from the slot before's, as many history intervals on as the slot before is long
    (None without a table)."""
    if errors is None or not slots:
        return np.zeros((len(slots), 1)), None
    lead_h = np.array([(s.start - now).total_seconds() / 3600.0 for s in slots])
    hour = np.array([s.start.astimezone(UTC).hour for s in slots])
    length_h = np.array([(s.end - s.start).total_seconds() / 3600.0 for s in slots])
    before_h = np.concatenate([length_h[:1], length_h[:-1]])
    return errors.spread_w(np.maximum(lead_h, 0.0), hour), errors.transitions_for(hour, before_h)


def slot_at(plan: Plan | None, now: datetime) -> PlanSlot | None:
    if plan is None:
        return None
    for slot in plan.slots:
        if slot.start <= now < slot.end:
            return slot
    return None
