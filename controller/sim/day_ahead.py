"""The what-if's ``planner`` strategy: one variant planned day-ahead and executed.

The planner (:func:`controller.planner.deterministic.solve`) plans at the start and every day
when the next day's prices are published (13:00 in the market's zone), over the prices known
then, with the recorded PV and load as forecast (perfect foresight: the most planning can get out
of a size); each slot is executed through :func:`controller.physics.step`. Where the variant's
scheme nets import and export within a period longer than the intervals, it plans per period as
the daemon does (:mod:`controller.planner.periods`, with the net metered so far in a period a
re-plan starts in) and holds the period's battery power through the period's intervals: only the
period's net is settled. Under a yearly feed-in cap it plans against what is left of it after the
replay's export that year (:mod:`controller.planner.export_room`), and under a capacity charge
against the month's peak the replay has reached so far (:func:`controller.planner.peak.plan_against_peak`),
as the daemon does. The planner sees the scheme's per-slot prices and export rules
(:mod:`controller.settlement.prices`).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.physics import BatteryParams, GridLimits, step
from controller.planner.deterministic import Solution, solve
from controller.planner.export_room import Made, within_room
from controller.planner.inputs import peak_charge
from controller.planner.peak import plan_against_peak
from controller.planner.periods import merged, netting_period_s, periods_of
from controller.planner.plan import Horizon, PlanConstraints
from controller.settlement.engine import Metered, local_fields, settle
from controller.settlement.prices import export_room, planning_limits, planning_prices
from controller.settlement.schemes import PER_SLOT, Scheme
from controller.sim.decisions import MonthPeak
from controller.sim.forecasts import published_stop
from controller.sim.scenario import Scenario
from controller.sim.settings import PERFECT, PlannerSettings
from controller.sim.variants import Flows, Variant

FloatArray = npt.NDArray[np.float64]


def variant_flows(
    scenario: Scenario,
    variant: Variant,
    battery: BatteryParams,
    pv_w: FloatArray,
    initial_soc_pct: float,
    tz: ZoneInfo,
    limits: GridLimits,
    settings: PlannerSettings,
    scheme: Scheme,
) -> Flows:
    """``variant``'s replay (with ``battery`` and PV ``pv_w``) at its tariff's prices, under the
    scheme that settles it (``scheme``: the site's, for tariffs that name none) and within its
    rules and limits."""
    settled_by = variant.tariff.settled_by(scheme)
    priced = _priced(scenario, variant, pv_w, tz, settled_by)
    return planner_flows(
        priced,
        battery,
        initial_soc_pct,
        tz,
        _limits(limits, settled_by, priced),
        settings,
        _constraints(settled_by),
        settled_by,
    )


def _priced(scenario: Scenario, variant: Variant, pv_w: FloatArray, tz: ZoneInfo, scheme: Scheme) -> Scenario:
    """The scenario with the variant's PV and its tariff's prices, as its scheme settles a kWh."""
    epoch = scenario.epoch_s()
    ip, ep = planning_prices(
        scheme,
        epoch,
        int(scenario.step.total_seconds()),
        variant.tariff.import_rule.prices(scenario.import_price, epoch, tz),
        variant.tariff.export_rule.prices(scenario.export_price, epoch, tz),
        tz,
    )
    return replace(scenario, pv_w=pv_w, import_price=ip, export_price=ep)


def planner_flows(
    scenario: Scenario,
    battery: BatteryParams,
    initial_soc_pct: float,
    tz: ZoneInfo,
    limits: GridLimits = GridLimits(),  # noqa: B008 - frozen
    settings: PlannerSettings = PERFECT,
    constraints: PlanConstraints = PlanConstraints(),  # noqa: B008 - frozen
    scheme: Scheme = PER_SLOT,
) -> Flows:
    """Day-ahead planning with perfect PV/load foresight, executed interval by interval (n, 1).
    Under ``scheme``'s netting within periods longer than the intervals it plans per period, and
    against its yearly feed-in cap with what the replay has exported this year
    (:mod:`controller.planner.export_room`), and under its capacity charge against the month's
    peak so far; its prices and rules are the caller's to apply."""
    n, dt = len(scenario), scenario.step_h
    stops = published_stop(scenario, tz)
    replans = [0, *(np.flatnonzero(np.diff(stops)) + 1).tolist(), n]
    charge, discharge, grid = np.zeros((n, 1)), np.zeros((n, 1)), np.zeros((n, 1))
    e = battery.energy_kwh(initial_soc_pct)
    pv, load, ip, ep = scenario.pv_w, scenario.load_w, scenario.import_price, scenario.export_price
    epoch = scenario.epoch_s()
    netting_s = netting_period_s(scheme, scenario.step.total_seconds())
    elapsed, period = 0.0, -1  # the net metered so far in the settlement period in progress
    capacity = scheme.capacity
    month_peak = None if capacity is None else MonthPeak(scenario, tz, capacity.window_min / 60.0)
    for first, until in itertools.pairwise(replans):
        stop = max(int(stops[first]), until)
        h = Horizon(
            np.full(stop - first, dt), pv[first:stop], load[first:stop], ip[first:stop], ep[first:stop]
        )
        slot_of = np.arange(stop - first)  # each interval's slot of the plan
        starts = epoch[first:stop]
        if netting_s is not None:
            periods = periods_of(starts, netting_s)
            if int(epoch[first]) // netting_s != period:
                elapsed = 0.0
            h, slot_of, starts = merged(h, periods, elapsed), periods.runs, starts[periods.first]
        value = settings.end_value.per_stored_kwh(battery, h.import_price)

        def made(
            export_price: FloatArray, h: Horizon = h, value: float = value, e0: float = e
        ) -> Made[Solution]:
            priced = replace(h, export_price=export_price)
            raised = 0.0
            if month_peak is None:
                sol = solve(
                    battery, limits, e0, priced, value, constraints, soc_step_kwh=settings.soc_step_kwh
                )
            else:
                charge = peak_charge(scheme, month_peak.peak_kw)
                chosen = plan_against_peak(
                    battery, limits, e0, priced, value, constraints, settings.soc_step_kwh, charge
                )
                sol, raised = chosen.solution, chosen.peak_cost
            exported = np.maximum(-sol.grid_w, 0.0) * priced.dt_h / 1000.0
            return Made(sol, export_price, exported, sol.objective + raised)

        room = export_room(scheme, starts, tz, _year_exported_kwh(scenario, grid[:first, 0], scheme, tz))
        sol = made(h.export_price).plan if room is None else within_room(made, h.export_price, room)
        for i in range(first, until):
            r = step(
                battery,
                e,
                float(sol.battery_w[slot_of[i - first]]),
                float(pv[i]),
                float(load[i]),
                dt,
                limits,
                curtail_export=bool(ep[i] < 0),
            )
            charge[i, 0], discharge[i, 0], grid[i, 0] = (
                -min(r.battery_w, 0.0),
                max(r.battery_w, 0.0),
                r.grid_w,
            )
            e = r.e_kwh
            if month_peak is not None:
                month_peak.add(i, r.import_kwh)
            if netting_s is not None:
                if int(epoch[i]) // netting_s != period:
                    elapsed, period = 0.0, int(epoch[i]) // netting_s
                elapsed += r.import_kwh - r.export_kwh
    return Flows(charge, discharge, grid)


def _year_exported_kwh(scenario: Scenario, grid_w: FloatArray, scheme: Scheme, tz: ZoneInfo) -> float:
    """What the replay exported (as settled) in the local year of the interval after ``grid_w``
    (the intervals replayed so far), where the scheme caps a year's paid export (0 otherwise)."""
    if scheme.export.yearly_cap_kwh is None or grid_w.size in (0, len(scenario)):
        return 0.0
    epoch = scenario.epoch_s()[: grid_w.size + 1]
    years = local_fields(epoch, tz).year
    inside = years[:-1] == years[-1]
    kwh = grid_w[inside] * scenario.step_h / 1000.0
    if kwh.size == 0:
        return 0.0
    metered = Metered(
        epoch[:-1][inside],
        int(scenario.step.total_seconds()),
        np.maximum(kwh, 0.0),
        np.maximum(-kwh, 0.0),
        np.zeros(kwh.size),
        np.zeros(kwh.size),
    )
    return settle(metered, Scheme(netting=scheme.netting), tz).component("export_kwh")


def _limits(limits: GridLimits, scheme: Scheme, scenario: Scenario) -> GridLimits:
    return planning_limits(scheme.rules, limits, float(scenario.pv_w.max(initial=0.0)))


def _constraints(scheme: Scheme) -> PlanConstraints:
    grid_charge, battery_export = scheme.rules.planner_flags()
    return PlanConstraints(allow_grid_charge=grid_charge, allow_battery_export=battery_export)
