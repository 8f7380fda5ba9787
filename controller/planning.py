"""Planning glue: the inputs the optimizer needs, from the price service and the forecaster, and
the plan slot in force turned into an executor Intent.

The optimizer itself is pure (controller.optimizer); this module decides what it is fed: the
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

from controller import recourse
from controller.config import HemsdConfig
from controller.executor import Intent
from controller.forecast_spread import ErrorTable
from controller.model import step
from controller.optimizer import plan as optimize
from controller.plan import EndValue, Plan, PlanConstraints, PlanSlot
from drivers.inverter.types import Snapshot

FloatArray = npt.NDArray[np.float64]
LIVE_VERBS = {
    "self_use": "self-use",
    "hold": "holding the battery",
    "charge": "charging",
    "discharge": "discharging",
}


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
) -> Plan:
    """The plan with the configured planner; ``errors``: the net-load error table the recourse
    planner weighs (None: no departure from the forecast)."""
    params = config.battery.params()
    step = config.planner.soc_step_pct / 100.0 * params.capacity_kwh
    if config.planner.kind == "recourse":
        errors_w, transitions = slot_errors_w(errors, slots, created_at)
        return recourse.plan(
            soc_pct=min(max(soc_pct, 0.0), 100.0),
            params=params,
            prices=slots,
            pv_w=pv_w,
            load_w=load_w,
            errors_w=errors_w,
            transitions=transitions,
            limits=config.grid.limits(),
            end_value=end_value(config),
            soc_step_kwh=step,
            created_at=created_at,
            display_tz=config.site.zone,
        )
    spread = float(np.median([s.import_price - s.export_price for s in slots])) if slots else 0.0
    margin = config.planner.self_use_margin * max(spread, 0.0)
    return optimize(
        soc_pct=min(max(soc_pct, 0.0), 100.0),
        params=params,
        prices=slots,
        pv_w=pv_w,
        load_w=load_w,
        limits=config.grid.limits(),
        end_value=end_value(config),
        constraints=PlanConstraints(self_use_margin_per_kwh=margin),
        soc_step_kwh=step,
        created_at=created_at,
        display_tz=config.site.zone,
    )


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


def live_intent(
    config: HemsdConfig, plan: Plan, slot: PlanSlot, snapshot: Snapshot, at: datetime
) -> Intent | None:
    """The slot's mode chosen from the house as measured now, or None when the plan cannot say
    (no value of stored energy: not a recourse plan, or one read back from storage).

    Measured load - PV is taken to hold over the slot; the choice is re-made on every reading.
    A charge or discharge aims at the SoC its power reaches by the slot's end, which stays put
    while the slot goes as decided."""
    if plan.values is None:
        return None
    params, limits = config.battery.params(), config.grid.limits()
    dt_h = (slot.end - slot.start).total_seconds() / 3600.0
    pv_w, load_w = max(snapshot.pv_w, 0.0), max(snapshot.load_w, 0.0)
    e_kwh = params.energy_kwh(min(max(snapshot.soc_pct, 0.0), 100.0))
    best = recourse.decide_known(
        params,
        limits,
        plan.values,
        plan.slots.index(slot),
        e_kwh,
        load_w - pv_w,
        load_w,
        dt_h,
        slot.import_price,
        slot.export_price,
    )
    decision = recourse.followable(best, load_w - pv_w, slot.export_price, config.executor.power_step_w)
    reason = slot.explanation
    if best.action != decision.action and slot.export_price >= 0:
        reason = (
            f"battery idle, the {pv_w - load_w:.0f} W PV surplus exported at {slot.export_price:.2f}/kWh: "
            f"stored it would be worth less ({slot.explanation})"
        )
    elif best.action != decision.action:
        reason = (
            f"the {pv_w - load_w:.0f} W PV surplus stored, not exported at {slot.export_price:.2f}/kWh: "
            f"the inverter cannot leave the battery idle and curtail PV ({slot.explanation})"
        )
    elif decision.action != slot.action:
        reason = (
            f"{LIVE_VERBS[decision.action]} now: load-PV is {load_w - pv_w:.0f} W, "
            f"the plan expected {slot.load_w - slot.pv_w:.0f} W ({slot.explanation})"
        )
    if decision.action in ("charge", "discharge"):
        left_h = min(max((slot.end - at).total_seconds(), 1.0) / 3600.0, dt_h)
        after = step(params, e_kwh, decision.battery_w, pv_w, load_w, left_h, limits).e_kwh
        power = abs(decision.battery_w)
        intent = Intent(decision.action, power, params.soc_pct(after), reason=reason)
    else:
        intent = Intent(decision.action, reason=reason)
    return _not_exporting_at_a_loss(intent, slot.export_price)


def intent_of_slot(slot: PlanSlot) -> Intent:
    """What the executor should ask of the inverter to follow a plan slot (below a zero export
    price with export limited to zero: the plan never exports at a loss)."""
    reason = slot.explanation
    if slot.action == "charge":
        intent = Intent("charge", max(0.0, -slot.battery_w), slot.target_soc_pct, reason=reason)
    elif slot.action == "discharge":
        intent = Intent("discharge", max(0.0, slot.battery_w), slot.target_soc_pct, reason=reason)
    elif slot.action == "export_limit":
        allowed = max(0.0, -slot.grid_w)
        intent = Intent("export_limit", export_limit_w=math.floor(allowed), reason=reason)
    else:
        intent = Intent(slot.action, reason=reason)  # hold or self-use
    return _not_exporting_at_a_loss(intent, slot.export_price)


def _not_exporting_at_a_loss(intent: Intent, export_price: float) -> Intent:
    """``intent`` with export limited to zero below a zero export price, where the planner
    curtails PV rather than export it (self-use becomes self-use with export limited); an intent
    with a limit of its own keeps it."""
    if export_price >= 0 or intent.export_limit_w is not None:
        return intent
    action = "export_limit" if intent.action == "self_use" else intent.action
    return replace(intent, action=action, export_limit_w=0.0)
