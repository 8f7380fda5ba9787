"""Each planned interval of a replay: the battery request, decided as the daemon decides it.

- deterministic planner: the horizon it sees is solved (against the month's peak so far under a
  capacity charge) and the first slot applied: self-use slots follow the real house, the others
  hold the planned power (:func:`controller.physics.followed_request_w`).
- recourse planner: the executor picks the slot's mode from what the house really does, weighed
  against the planner's value of the energy the slot leaves stored
  (:func:`controller.planner.recourse.decide_followed`), as the daemon's control loop does on
  every reading. The values come worked out ahead (:mod:`controller.sim.recourse_ahead`), but
  under a capacity charge, where the month's peak so far sets each plan and they are made here.

Where the scheme nets import and export within a period longer than the intervals, the period is
planned as one slot with the net it has metered so far, and the period's power is held: only its
net is settled.

Under a yearly feed-in cap each plan is made against what is left of the cap after the export
the replay has settled that year (:class:`YearExport`, :mod:`controller.planner.export_room`),
as the daemon plans; the recourse planner's values are then made here wherever the horizon
could export more than is left (elsewhere the cap cannot change them). Under a capacity charge
as well, each of those plans is made by the peak search, and each plan's cost counts what it
raises the month's peak by.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.config.models import ExecutorConfig
from controller.physics import Action, BatteryParams, GridLimits, followed_request_w
from controller.planner import recourse
from controller.planner.deterministic import SocGrid, Solution, solve
from controller.planner.export_room import Made, within_room
from controller.planner.peak import (
    PeakCharge,
    RecoursePeakPlan,
    held_request_w,
    plan_against_peak,
    recourse_against_peak,
    shaved_request_w,
)
from controller.planner.periods import merged, merged_departures
from controller.planner.plan import Horizon, PlanConstraints, SlotValues, classify
from controller.settlement.engine import local_fields, period_keys
from controller.settlement.prices import ExportRoom, export_room
from controller.settlement.schemes import Scheme
from controller.sim.forecasts import Forecasts
from controller.sim.recourse_ahead import FirstSlotValues
from controller.sim.scenario import Scenario
from controller.sim.settings import PeakSettings

FloatArray = npt.NDArray[np.float64]
IDLE_STEP_W = ExecutorConfig().power_step_w  # the daemon's smallest power step, as configured by default


@dataclass(frozen=True, slots=True)
class Decision:
    """An interval's battery request (W, > 0 discharging), its action and how long it took (ms);
    ``case``: the recourse plan's case nearest what the house did, where it was planned here."""

    request_w: float
    action: Action
    solve_ms: float
    case: int | None = None


class MonthPeak:
    """The month's highest window-average import power so far, as the intervals are metered."""

    def __init__(self, scenario: Scenario, tz: ZoneInfo, window_h: float) -> None:
        self.scenario, self.tz = scenario, tz
        self.per = max(1, round(window_h / scenario.step_h))
        self.month = (0, 0)
        self.peak_kw = self.window_kwh = 0.0
        self.filled = 0

    def add(self, i: int, import_kwh: float) -> None:
        local = self.scenario.time(i).astimezone(self.tz)
        if (local.year, local.month) != self.month:
            self.month, self.peak_kw, self.window_kwh, self.filled = (local.year, local.month), 0.0, 0.0, 0
        self.window_kwh += import_kwh
        self.filled += 1
        if self.filled == self.per:
            self.peak_kw = max(self.peak_kw, self.window_kwh / (self.per * self.scenario.step_h))
            self.window_kwh, self.filled = 0.0, 0


class YearExport:
    """The export the replay has settled so far in the local year (kWh), as the bill counts it
    (:func:`controller.settlement.engine.settle`): where the scheme nets within periods, each
    period's net export, the period in progress at its net so far; else each interval's."""

    def __init__(self, scenario: Scenario, tz: ZoneInfo, scheme: Scheme) -> None:
        epoch = scenario.epoch_s()
        local = local_fields(epoch, tz)
        self.scheme, self.tz, self.epoch, self.year = scheme, tz, epoch, local.year
        self.net = scheme.netting.net
        self.keys = period_keys(scheme.netting.period, epoch, local) if self.net else np.arange(epoch.size)
        self.closed_kwh = 0.0  # the year's periods before the one in progress
        self.open = (-1, -1)  # (year, period) in progress
        self.open_import_kwh = self.open_export_kwh = 0.0

    def _open_kwh(self) -> float:
        if self.net:
            return max(self.open_export_kwh - self.open_import_kwh, 0.0)
        return self.open_export_kwh

    def before(self, i: int) -> float:
        """Settled this year before interval ``i`` (none where ``i`` begins a local year)."""
        if int(self.year[i]) != self.open[0]:
            return 0.0
        return self.closed_kwh + self._open_kwh()

    def add(self, i: int, import_kwh: float, export_kwh: float) -> None:
        at = (int(self.year[i]), int(self.keys[i]))
        if at != self.open:
            self.closed_kwh = self.closed_kwh + self._open_kwh() if at[0] == self.open[0] else 0.0
            self.open, self.open_import_kwh, self.open_export_kwh = at, 0.0, 0.0
        self.open_import_kwh += import_kwh
        self.open_export_kwh += export_kwh

    def room(self, i: int, starts: npt.NDArray[np.int64]) -> ExportRoom | None:
        """What is left of the cap for the slots starting at ``starts`` (planned at ``i``)."""
        return export_room(self.scheme, starts, self.tz, self.before(i))


def _measured(scenario: Scenario, i: int) -> tuple[float, float, float, float]:
    """Interval ``i`` as the house ran it: PV and load (W), the import and the export price."""
    s = scenario
    return float(s.pv_w[i]), float(s.load_w[i]), float(s.import_price[i]), float(s.export_price[i])


def deterministic_decision(
    forecasts: Forecasts,
    limits: GridLimits,
    e: float,
    i: int,
    elapsed: float,
    fraction: float,
    month_peak: MonthPeak | None,
    year_export: YearExport | None = None,
) -> Decision:
    """The deterministic planner's first slot over the horizon seen at ``i`` from ``e`` kWh
    stored, with ``elapsed`` kWh net metered so far in the settlement period and a decision
    margin of ``fraction`` of the horizon's median import-export gap; against a feed-in cap
    with what ``year_export`` has settled this year."""
    params, settings = forecasts.params, forecasts.settings
    pv_i, load_i, _, _ = _measured(forecasts.scenario, i)
    started = time.perf_counter()
    h, value = forecasts.horizon(i)
    starts = forecasts.epoch[i : i + h.dt_h.size]
    periods = forecasts.periods(i, h.dt_h.size)
    if periods is not None:
        h, starts = merged(h, periods, elapsed), starts[periods.first]
    gap = float(np.median(h.import_price - h.export_price))
    constraints = PlanConstraints(
        allow_grid_charge=settings.allow_grid_charge,
        allow_battery_export=settings.allow_battery_export,
        self_use_margin_per_kwh=fraction * max(gap, 0.0),
    )

    def planned(export_price: FloatArray) -> Made[tuple[Solution, float]]:
        """The plan at ``export_price`` and the import it holds (W)."""
        seen = replace(h, export_price=export_price)
        held_w, raised = math.inf, 0.0
        if settings.peak is not None and month_peak is not None:
            paid = max(month_peak.peak_kw, settings.peak.minimum_kw)
            charge = PeakCharge(settings.peak.price_per_kw, paid, settings.peak.window_h)
            chosen = plan_against_peak(
                params, limits, e, seen, value, constraints, settings.soc_step_kwh, charge
            )
            sol = chosen.solution
            # as the daemon holds it: the cap, or the plan's own peak where none was needed
            held_kw = chosen.cap_kw if math.isfinite(chosen.cap_kw) else chosen.peak_kw
            held_w = max(held_kw, paid) * 1000.0
            raised = chosen.peak_cost
        else:
            sol = solve(params, limits, e, seen, value, constraints, settings.soc_step_kwh)
        exported = np.maximum(-sol.grid_w, 0.0) * seen.dt_h / 1000.0
        return Made((sol, held_w), export_price, exported, sol.objective + raised)

    room = None if year_export is None else year_export.room(i, starts)
    if room is None:
        sol, held_w = planned(h.export_price).plan
    else:
        sol, held_w = within_room(planned, h.export_price, room)
    first = slice(0, 1)
    action = classify(
        params,
        sol.e_kwh[first],
        h.dt_h[first],
        h.pv_w[first],
        h.load_w[first],
        sol.battery_w[first],
        sol.pv_used_w[first],
    )[0]
    solve_ms = (time.perf_counter() - started) * 1000.0
    decided_on_w = float(h.load_w[0] - h.pv_w[0])
    request = followed_request_w(action, float(sol.battery_w[0]), decided_on_w, load_i - pv_i)
    if periods is not None:
        request = float(sol.battery_w[0])  # the period's power: only its net is settled
    # as the daemon's executor: the cap, or the slot's planned import where it goes above
    request = held_request_w(request, load_i - pv_i, max(held_w, float(sol.grid_w[0])))
    return Decision(request, action, solve_ms)


def recourse_decision(
    forecasts: Forecasts,
    limits: GridLimits,
    grid: SocGrid,
    known: FirstSlotValues,
    e: float,
    i: int,
    elapsed: float,
    export_price: float | None = None,
) -> Decision:
    """The executor's mode at ``i`` against the values worked out ahead (``known`` holds ``i``'s);
    ``export_price``: the one the plan saw for the interval, where not the interval's own."""
    params, settings = forecasts.params, forecasts.settings
    pv_i, load_i, pi, pe = _measured(forecasts.scenario, i)
    pe = pe if export_price is None else export_price
    started = time.perf_counter()
    after = known.after[i - known.first]
    values = SlotValues(float(grid.e[0]), grid.delta, after[None, None, :], np.zeros((1, 1)), np.zeros(1))
    rules = settings.rules
    if settings.netting_s is None:
        decision = decided(
            params, limits, values, e, load_i - pv_i, load_i, forecasts.scenario.step_h, pi, pe, rules
        )
        # the executor decides on the real house, as the daemon reads it
        request = followed_request_w(decision.action, decision.battery_w, load_i - pv_i, load_i - pv_i)
    else:  # on the rest of the period: this interval as measured, the rest as forecast
        rest = rest_of_period(forecasts, i, pv_i, load_i, elapsed)
        net_w = float(rest.load_w[0] - rest.pv_w[0])
        decision = decided(
            params,
            limits,
            values,
            e,
            net_w,
            float(rest.load_w[0]),
            float(rest.dt_h[0]),
            float(rest.import_price[0]),
            float(rest.export_price[0]) if export_price is None else export_price,
            rules,
        )
        request = decision.battery_w  # the period's power: only its net is settled
    solve_ms = float(known.solve_ms[i - known.first]) + (time.perf_counter() - started) * 1000.0
    return Decision(request, decision.action, solve_ms)


def capped_values(
    forecasts: Forecasts, limits: GridLimits, e: float, i: int, year_export: YearExport
) -> tuple[FirstSlotValues, float] | None:
    """The recourse planner's values for interval ``i`` planned against what is left of the
    feed-in cap (:func:`controller.planner.export_room.within_room`), and the export price that
    plan sees in its first slot; None where the horizon cannot export what is left (its plan is
    the one worked out ahead)."""
    s, params, settings = forecasts.scenario, forecasts.params, forecasts.settings
    started = time.perf_counter()
    h, value = forecasts.horizon(i)
    errors, chances = forecasts.departures(i, h.dt_h.size)
    starts = forecasts.epoch[i : i + h.dt_h.size]
    periods = forecasts.periods(i, h.dt_h.size)
    if periods is not None:
        errors, chances = merged_departures(errors, chances, h, periods)
        h, starts = merged(h, periods), starts[periods.first]
    room = year_export.room(i, starts)
    if room is None:
        return None
    out_w = np.maximum(h.pv_w - h.load_w, 0.0) + (
        params.max_discharge_w if settings.allow_battery_export else 0.0
    )
    most_kwh = np.minimum(out_w, limits.max_export_w) * h.dt_h / 1000.0
    if float(most_kwh[room.within].sum()) <= room.kwh:
        return None

    def planned(export_price: FloatArray) -> Made[recourse.Policy]:
        p = recourse.policy(
            params,
            limits,
            e,
            replace(h, export_price=export_price),
            errors,
            value,
            settings.soc_step_kwh,
            chances,
            None,
            settings.rules,
        )
        exported = np.maximum(-p.solution.grid_w, 0.0) * h.dt_h / 1000.0
        return Made(p, export_price, exported, p.solution.objective)

    made: list[Made[recourse.Policy]] = []

    def kept(export_price: FloatArray) -> Made[recourse.Policy]:
        made.append(planned(export_price))
        return made[-1]

    chosen = within_room(kept, h.export_price, room)
    seen = next(m.seen for m in made if m.plan is chosen)
    net_w = float(s.load_w[i]) - float(s.pv_w[i])
    after = chosen.values.after_slot[0, recourse.known_case(chosen.values, 0, net_w)]
    solve_ms = (time.perf_counter() - started) * 1000.0
    return FirstSlotValues(i, after[None, :], np.array([solve_ms])), float(seen[0])


def recourse_peak_decision(
    forecasts: Forecasts,
    limits: GridLimits,
    e: float,
    i: int,
    peak: PeakSettings,
    month_peak: MonthPeak,
    before: int | None = None,
    year_export: YearExport | None = None,
) -> Decision:
    """The recourse planner under a capacity charge: planned at ``i`` against the month's peak so
    far (and against a feed-in cap with what ``year_export`` has settled this year, as the
    deterministic planner plans against both), the mode picked against that plan (``before``:
    the case of the interval before, as its decision found it) at the export price the plan saw
    for the interval, and the import held under its cap (a self-use that would soon empty the
    battery covers only the house's draw above it, :func:`controller.planner.peak.shaved_request_w`)."""
    s, params, settings = forecasts.scenario, forecasts.params, forecasts.settings
    pv_i, load_i, pi, pe = _measured(s, i)
    started = time.perf_counter()
    h, value = forecasts.horizon(i)
    errors, chances = forecasts.departures(i, h.dt_h.size)
    paid = max(month_peak.peak_kw, peak.minimum_kw)
    charge = PeakCharge(peak.price_per_kw, paid, peak.window_h)
    rules = settings.rules

    def planned(export_price: FloatArray) -> Made[RecoursePeakPlan]:
        chosen = recourse_against_peak(
            params,
            limits,
            e,
            replace(h, export_price=export_price),
            value,
            errors,
            chances,
            settings.soc_step_kwh,
            charge,
            rules,
        )
        sol = chosen.policy.solution
        exported = np.maximum(-sol.grid_w, 0.0) * h.dt_h / 1000.0
        return Made(chosen, export_price, exported, sol.objective + chosen.raised_cost)

    room = None if year_export is None else year_export.room(i, forecasts.epoch[i : i + h.dt_h.size])
    if room is None:
        against = planned(h.export_price).plan
    else:
        made: list[Made[RecoursePeakPlan]] = []

        def kept(export_price: FloatArray) -> Made[RecoursePeakPlan]:
            made.append(planned(export_price))
            return made[-1]

        against = within_room(kept, h.export_price, room)
        pe = float(next(m.seen for m in made if m.plan is against)[0])
    values = against.policy.values
    decision = decided(
        params, against.limits, values, e, load_i - pv_i, load_i, s.step_h, pi, pe, rules, before
    )
    solve_ms = (time.perf_counter() - started) * 1000.0
    house_w, held_w = load_i - pv_i, max(against.cap_kw, paid) * 1000.0
    request = followed_request_w(decision.action, decision.battery_w, house_w, house_w)
    if decision.action == Action.SELF_USE:
        deliverable = (e - params.e_min_kwh) * params.discharge_efficiency
        request = shaved_request_w(house_w, held_w, deliverable)
    request = held_request_w(request, house_w, held_w)
    return Decision(request, decision.action, solve_ms, recourse.known_case(values, 0, house_w))


def decided(
    params: BatteryParams,
    limits: GridLimits,
    values: SlotValues,
    e_kwh: float,
    net_w: float,
    load_w: float,
    dt_h: float,
    import_price: float,
    export_price: float,
    rules: PlanConstraints,
    before: int | None = None,
) -> recourse.ModeChoice:
    """The executor's decision on the house as measured, as the daemon's makes it: the best mode
    against the value of the energy the first slot of ``values`` leaves stored (``before``: the
    case of the interval before), as the inverter can follow it."""
    _, followed = recourse.decide_followed(
        params,
        limits,
        values,
        0,
        e_kwh,
        net_w,
        load_w,
        dt_h,
        import_price,
        export_price,
        IDLE_STEP_W,
        rules,
        before,
    )
    return followed


def rest_of_period(forecasts: Forecasts, i: int, pv_w: float, load_w: float, elapsed_kwh: float) -> Horizon:
    """The rest of interval ``i``'s settlement period as one slot (:func:`merged`): the interval
    as measured, the period's later intervals as forecast, the net metered so far in its load."""
    h, _ = forecasts.horizon(i)
    periods = forecasts.periods(i, h.dt_h.size)
    assert periods is not None
    pv, load = h.pv_w.copy(), h.load_w.copy()
    pv[0], load[0] = pv_w, load_w
    return merged(replace(h, pv_w=pv, load_w=load), periods, elapsed_kwh)
