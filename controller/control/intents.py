"""The plan slot in force turned into what the executor asks of the inverter (an Intent).

A recourse plan carries the value of stored energy in every slot and case, so the slot's mode is
chosen again from the house as measured (:func:`live_intent`); other plans are followed as
planned (:func:`intent_of_slot`). Neither exports at a negative export price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from controller.config.models import HemsdConfig
from controller.control.executor import Intent
from controller.physics import Action, BatteryParams, step
from controller.planner import recourse
from controller.planner.inputs import peak_charge
from controller.planner.peak import held_limits, held_request_w, shaved_request_w
from controller.planner.plan import Plan, PlanConstraints, PlanSlot, SlotValues
from drivers.inverter.types import Snapshot

LIVE_VERBS = {
    Action.SELF_USE: "self-use",
    Action.HOLD: "holding the battery",
    Action.CHARGE: "charging",
    Action.DISCHARGE: "discharging",
    Action.IDLE: "battery idle",
}


CONTIGUOUS_S = 60.0  # a slot that starts this soon after the one measured before follows it


@dataclass
class SlotCases:
    """The case of the slot before the one in progress, for :func:`live_intent`: the measured net
    load (load - PV) is averaged over each plan slot as the readings come, and when the next
    slot starts, the slot's case is the one nearest that mean among its departures in the plan
    last in force for it (:func:`controller.planner.recourse.known_case`). None where the
    readings of that slot began more than a minute after its start, it did not end where the
    next starts, or its plan carries no values (not planned by the recourse planner per slot)."""

    end: datetime | None = None  # the end of the slot being measured (a re-plan keeps it)
    started: datetime | None = None  # the first reading in it
    first: datetime | None = None  # the slot's start as first planned
    net_w: float = 0.0
    readings: int = 0
    values: SlotValues | None = None
    index: int = 0
    before: int | None = None

    def update(self, plan: Plan, slot: PlanSlot, net_w: float, at: datetime) -> int | None:
        """Account a reading of ``net_w`` at ``at`` in ``slot`` of ``plan``; the case of the slot before."""
        if slot.end != self.end:
            measured_whole = (
                self.end is not None
                and self.values is not None
                and self.values.after_slot.shape[1] > 1
                and self.readings > 0
                and self.started is not None
                and self.first is not None
                and (self.started - self.first).total_seconds() <= CONTIGUOUS_S
                and 0.0 <= (slot.start - self.end).total_seconds() <= CONTIGUOUS_S
            )
            self.before = (
                recourse.known_case(self.values, self.index, self.net_w / self.readings)
                if measured_whole and self.values is not None
                else None
            )
            self.end, self.first, self.started, self.net_w, self.readings = slot.end, slot.start, at, 0.0, 0
        self.net_w += net_w
        self.readings += 1
        self.values, self.index = plan.values, plan.slots.index(slot)
        return self.before


def live_intent(
    config: HemsdConfig,
    plan: Plan,
    slot: PlanSlot,
    snapshot: Snapshot,
    at: datetime,
    before: int | None = None,
) -> Intent | None:
    """The slot's mode chosen from the house as measured now, or None when the plan cannot say
    (no value of stored energy: not a recourse plan, or one read back from storage).

    Measured load - PV is taken to hold over the slot; the choice is re-made on every reading.
    ``before``: the case of the slot before (:class:`SlotCases`), with which the values after
    this slot weigh its cases by how likely each is (None: the case nearest the reading).
    A charge or discharge aims at the SoC its power reaches by the slot's end, which stays put
    while the slot goes as decided. The settlement's rules on grid charging and battery export
    bound it on the house as measured."""
    if plan.values is None:
        return None
    params, limits = config.battery.params(), config.grid.limits()
    scheme = config.settlement.build()
    rules = PlanConstraints(*scheme.rules.planner_flags())
    dt_h = (slot.end - slot.start).total_seconds() / 3600.0
    if plan.import_cap_w is not None and scheme.capacity is not None:  # as the plan was made
        shortest = min((s.end - s.start).total_seconds() for s in plan.slots) / 3600.0
        limits = held_limits(limits, plan.import_cap_w, peak_charge(scheme, 0.0).price_per_kw, shortest)
    pv_w, load_w = max(snapshot.pv_w, 0.0), max(snapshot.load_w, 0.0)
    e_kwh = params.energy_kwh(min(max(snapshot.soc_pct, 0.0), 100.0))
    best, decision = recourse.decide_followed(
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
        config.executor.power_step_w,
        rules,
        before,
    )
    reason = slot.explanation
    if best.action != decision.action and decision.action == Action.IDLE:
        reason = (
            f"battery idle (standby), the {pv_w - load_w:.0f} W PV surplus exported at "
            f"{slot.export_price:.2f}/kWh: stored it would be worth less ({slot.explanation})"
        )
    elif best.action != decision.action and slot.export_price >= 0:
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
    if decision.action in (Action.CHARGE, Action.DISCHARGE):
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
    if slot.action == Action.CHARGE:
        intent = Intent(Action.CHARGE, max(0.0, -slot.battery_w), slot.target_soc_pct, reason=reason)
    elif slot.action == Action.DISCHARGE:
        intent = Intent(Action.DISCHARGE, max(0.0, slot.battery_w), slot.target_soc_pct, reason=reason)
    elif slot.action == Action.EXPORT_LIMIT:
        allowed = max(0.0, -slot.grid_w)
        intent = Intent(Action.EXPORT_LIMIT, export_limit_w=math.floor(allowed), reason=reason)
    else:
        intent = Intent(slot.action, reason=reason)  # hold or self-use
    return _not_exporting_at_a_loss(intent, slot.export_price)


def holding_peak(
    intent: Intent,
    plan: Plan,
    slot: PlanSlot,
    snapshot: Snapshot,
    power_step_w: float,
    params: BatteryParams,
) -> Intent:
    """``intent`` kept from importing above the peak a plan holds under a capacity charge (or the
    slot's planned import, where the plan goes above it), on the house as measured
    (:func:`controller.planner.peak.held_request_w`); a recourse plan's self-use, decided on
    the house as measured, discharges only the house's draw above it where covering the whole
    house would soon empty the battery (:func:`controller.planner.peak.shaved_request_w`)."""
    if plan.import_cap_w is None:
        return intent
    cap = max(plan.import_cap_w, slot.grid_w)
    house_w = max(snapshot.load_w, 0.0) - max(snapshot.pv_w, 0.0)
    if intent.action == Action.SELF_USE and plan.values is not None and intent.source == "plan":
        stored = params.energy_kwh(min(max(snapshot.soc_pct, 0.0), 100.0))
        deliverable = max(stored - params.e_min_kwh, 0.0) * params.discharge_efficiency
        shaved = shaved_request_w(house_w, cap, deliverable)
        if shaved == house_w:
            return intent
        why = f"holding this month's {cap / 1000:.2f} kW import peak (load-PV {house_w:.0f} W)"
        return Intent(Action.DISCHARGE, shaved, reason=f"discharging the draw above it: {why}")
    if intent.action not in (Action.CHARGE, Action.HOLD, Action.IDLE, Action.DISCHARGE):
        return intent
    asked = {Action.CHARGE: -intent.power_w, Action.HOLD: 0.0, Action.IDLE: 0.0}.get(
        intent.action, intent.power_w
    )
    held = held_request_w(asked, house_w, cap)
    if held == asked:
        return intent
    why = f"holding this month's {cap / 1000:.2f} kW import peak (load-PV {house_w:.0f} W)"
    if held < 0 and -held >= power_step_w:
        return replace(intent, power_w=-held, reason=f"charging less: {why}")
    if held < 0:
        return Intent(Action.HOLD, reason=f"hold: {why}")
    return Intent(Action.SELF_USE, reason=f"self-use: {why}")


def _not_exporting_at_a_loss(intent: Intent, export_price: float) -> Intent:
    """``intent`` with export limited to zero below a zero export price, where the planner
    curtails PV rather than export it (self-use becomes self-use with export limited); an intent
    with a limit of its own keeps it."""
    if export_price >= 0 or intent.export_limit_w is not None:
        return intent
    action = Action.EXPORT_LIMIT if intent.action == Action.SELF_USE else intent.action
    return replace(intent, action=action, export_limit_w=0.0)
