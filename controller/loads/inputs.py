"""The daemon's and the backtest's way into the joint plan: the configured planner for the
battery, the configured loads placed with it (:func:`controller.loads.joint.plan_with_loads`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt

from controller.config.models import HemsdConfig
from controller.forecast.errors import ErrorTable
from controller.loads.joint import Horizon, LoadPlan, LoadState, plan_with_loads
from controller.loads.requirement import Requirement
from controller.planner import recourse
from controller.planner.goals import NO_GOALS, SocGoals
from controller.planner.inputs import PricedSlot, make_plan, settled_slots
from controller.planner.periods import netting_period_s, per_slot, periods_of
from controller.planner.plan import Plan, SlotValues, horizon_from_slots

FloatArray = npt.NDArray[np.float64]


def battery_values(config: HemsdConfig, plan: Plan, pv_w: Sequence[float], load_w: FloatArray) -> SlotValues:
    """The plan's values of stored energy; a deterministic plan has none, so those of the
    recourse planner without departures stand in."""
    if plan.values is not None:
        return plan.values
    params = config.battery.params()
    h = horizon_from_slots(plan.slots, pv_w, load_w.tolist())  # the plan's prices: settled ones
    step = config.planner.soc_step_pct / 100.0 * params.capacity_kwh
    return recourse.slot_values(
        params, config.grid.limits(), h, np.zeros((len(plan.slots), 1)), plan.end_value_per_kwh, step
    )


def make_load_plan(
    config: HemsdConfig,
    soc_pct: float,
    slots: Sequence[PricedSlot],
    pv_w: Sequence[float],
    load_w: Sequence[float],
    created_at: datetime,
    errors: ErrorTable | None,
    states: Mapping[str, LoadState],
    at_default: Collection[str] = (),
    *,
    goals: SocGoals = NO_GOALS,
    month_peak_kw: float = 0.0,
    period_net_kwh: float = 0.0,
    year_exported_kwh: float = 0.0,
    requirements: Mapping[str, Requirement] | None = None,
    outdoor_c: Sequence[float] | None = None,
) -> LoadPlan:
    """The joint plan of the battery and ``config.loads`` (at least one) over ``slots``; the loads
    named in ``at_default`` (disabled at run time, or not following their commands) are planned
    at their defaults; ``goals``, ``month_peak_kw``, ``period_net_kwh`` and ``year_exported_kwh``
    as for :func:`make_plan` (under netting within periods longer than the slots the battery is
    planned per period, :func:`controller.planner.periods.per_slot`);
    ``requirements``: the loads' set at run time, by name; ``outdoor_c``: the air temperature
    forecast per slot (NaN where unknown), which a heat pump's demand may follow."""
    base = np.asarray(load_w, dtype=np.float64)
    # under netting within periods longer than the slots the battery is planned per period, as
    # without loads, and its plan spread back over the slots the loads are placed in
    shortest = min(((s.end - s.start).total_seconds() for s in slots), default=0.0)
    netting = netting_period_s(config.settlement.build(), shortest) if slots else None
    periods = None if netting is None else periods_of([int(s.start.timestamp()) for s in slots], netting)

    def battery(extra_w: FloatArray) -> tuple[Plan, SlotValues]:
        total = base + extra_w
        plan = make_plan(
            config,
            soc_pct,
            slots,
            pv_w,
            total.tolist(),
            created_at,
            errors,
            goals,
            month_peak_kw=month_peak_kw,
            period_net_kwh=period_net_kwh,
            by_period=periods is not None,
            year_exported_kwh=year_exported_kwh,
        )
        if periods is not None:
            plan = per_slot(plan, settled_slots(config, slots), pv_w, total.tolist(), periods)
        return plan, battery_values(config, plan, pv_w, total)

    air = None if outdoor_c is None else np.asarray(outdoor_c, dtype=np.float64)
    # a store is guarded against the draw until the next plan, made from where it then is
    guard_h = config.daemon.plan_interval_min / 60.0
    horizon = Horizon(
        tuple(s.start for s in slots), tuple(s.end for s in slots), config.site.zone, air, guard_h
    )
    params = config.battery.params()
    loads = tuple(
        c.model_copy(update={"enabled": False}) if c.name in at_default else c for c in config.loads
    )
    return plan_with_loads(
        loads, states, horizon, params, config.grid.limits(), battery, requirements=requirements
    )
