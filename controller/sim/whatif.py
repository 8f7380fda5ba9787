"""What-if: the site's history (or a scenario) replayed with another battery, more PV or another tariff.

Each variant is a battery size and power (0 kWh: none), a PV scale (the recorded PV profile times
a factor) and a tariff. Strategies:

- ``self_consumption``: the battery stores PV surplus and covers deficits, as an inverter in
  self-use does. All variants are replayed at once, vectorised over the variants (one pass over
  time), with exactly the arithmetic of :func:`controller.physics.step` (the tests hold the two
  equal). A tariff changes only the money, not the flows.
- ``planner``: the planner (:func:`controller.planner.deterministic.solve`) plans day-ahead: at the start and
  every day when the next day's prices are published (13:00 in the market's zone), over the prices
  known then, with the recorded PV and load as forecast (perfect foresight: the most planning can
  get out of a size); each slot is executed through :func:`controller.physics.step`. One variant at
  a time. Where the variant's scheme nets import and export within a period longer than the
  intervals, it plans per period as the daemon does (:mod:`controller.planner.periods`, with the
  net metered so far in a period a re-plan starts in) and holds the period's battery power
  through the period's intervals: only the period's net is settled. Under a yearly feed-in cap
  it plans against what is left of it after the replay's export that year
  (:mod:`controller.planner.export_room`), as the daemon does.

Costs are annualised over the intervals that hold data; the simple payback of a variant is its
investment over its yearly saving against the reference (the site as it is).

Tariffs are written ``IMPORT[/EXPORT][@SCHEME]``, each side ``recorded`` (the stored or scenario
prices), a fixed price (``0.85``), or a price per zone of a calendar preset
(``G12:peak=1.10,offpeak=0.62``); the export side defaults to ``recorded``. ``@SCHEME`` settles
the variant under a published settlement scheme (``recorded@be_flanders_capacity``); without it
the site's ``[settlement]`` applies. Every variant's cost is its bill
(:func:`controller.settlement.engine.settle`) plus battery wear, and the planner plans against
the scheme's per-slot prices and export rules (:mod:`controller.settlement.prices`).
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.physics import BatteryParams, GridLimits, step
from controller.planner.deterministic import Solution, solve
from controller.planner.export_room import Made, within_room
from controller.planner.periods import merged, netting_period_s, periods_of
from controller.planner.plan import Horizon, PlanConstraints
from controller.settlement.engine import Metered, local_fields, settle
from controller.settlement.prices import export_room, planning_limits, planning_prices
from controller.settlement.schemes import PER_SLOT, SCHEME_PRESETS, Scheme, scheme_preset
from controller.sim.forecasts import published_stop
from controller.sim.scenario import Scenario
from controller.sim.settings import PERFECT, PlannerSettings
from drivers.prices.zones import PRESET_NAMES, CalendarConfig

FloatArray = npt.NDArray[np.float64]
STRATEGIES = ("self_consumption", "planner")
DAYS_PER_YEAR = 365.25
MAX_WORKERS = 8


# --- tariffs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceRule:
    """One side of a tariff: the recorded prices, one fixed price, or a price per calendar zone."""

    fixed: float | None = None  # None and no preset: recorded
    preset: str | None = None
    zone_prices: tuple[tuple[str, float], ...] = ()

    def prices(self, recorded: FloatArray, epoch_s: npt.NDArray[np.int64], tz: ZoneInfo) -> FloatArray:
        if self.fixed is not None:
            return np.full(recorded.size, self.fixed)
        if self.preset is None:
            return recorded
        calendar = CalendarConfig(preset=self.preset).build(tz)
        price = dict(self.zone_prices)
        hours = np.floor(epoch_s / 900.0).astype(np.int64)  # zones change on quarter-hours at most
        unique, inverse = np.unique(hours, return_inverse=True)
        per = [price[calendar.zone_at(datetime.fromtimestamp(int(q) * 900, UTC))] for q in unique]
        return np.asarray(per, dtype=np.float64)[inverse]


RECORDED_PRICES = PriceRule()


def _parse_rule(text: str, side: str) -> PriceRule:
    text = text.strip()
    if text == "recorded":
        return RECORDED_PRICES
    if ":" not in text:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"tariff {side} {text!r}: not 'recorded', a price or PRESET:zone=price,..."
            ) from None
        if not math.isfinite(value):
            raise ValueError(f"tariff {side} {text!r}: the price must be finite")
        return PriceRule(fixed=value)
    preset, _, pairs = text.partition(":")
    if preset not in PRESET_NAMES:
        raise ValueError(
            f"tariff {side} {text!r}: unknown zone preset {preset!r} (known: {', '.join(PRESET_NAMES)})"
        )
    zones = CalendarConfig(preset=preset).zones
    prices: dict[str, float] = {}
    for pair in pairs.split(","):
        zone, _, price = pair.partition("=")
        try:
            prices[zone.strip()] = float(price)
        except ValueError:
            raise ValueError(f"tariff {side} {text!r}: {pair!r} is not zone=price") from None
    if sorted(prices) != sorted(zones):
        raise ValueError(f"tariff {side} {text!r}: {preset} needs a price for each of {', '.join(zones)}")
    return PriceRule(preset=preset, zone_prices=tuple(sorted(prices.items())))


@dataclass(frozen=True, slots=True)
class VariantTariff:
    text: str
    import_rule: PriceRule = RECORDED_PRICES
    export_rule: PriceRule = RECORDED_PRICES
    scheme: Scheme | None = None  # None: the site's settlement

    def settled_by(self, site: Scheme) -> Scheme:
        return site if self.scheme is None else self.scheme


RECORDED = VariantTariff("recorded")


def parse_tariff(text: str) -> VariantTariff:
    """``IMPORT[/EXPORT][@SCHEME]``, e.g. ``recorded``, ``0.85/0.20``,
    ``G12:peak=1.10,offpeak=0.62/recorded``, ``recorded@be_flanders_capacity``."""
    prices, at, scheme_name = text.partition("@")
    scheme = None
    if at:
        try:
            scheme = scheme_preset(scheme_name.strip())
        except ValueError:
            known = ", ".join(p.name for p in SCHEME_PRESETS)
            raise ValueError(
                f"tariff {text!r}: unknown settlement scheme {scheme_name!r} (known: {known})"
            ) from None
    import_text, _, export_text = prices.partition("/")
    return VariantTariff(
        text.strip(),
        _parse_rule(import_text, "import"),
        _parse_rule(export_text or "recorded", "export"),
        scheme,
    )


# --- variants and their replay ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    capacity_kwh: float  # 0: no battery
    power_w: float | None = None  # charge and discharge limit; None: the base battery's
    pv_scale: float = 1.0
    tariff: VariantTariff = RECORDED

    def __post_init__(self) -> None:
        for name in ("capacity_kwh", "pv_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"variant {name} must be >= 0, got {value!r}")
        if self.power_w is not None and not (math.isfinite(self.power_w) and self.power_w > 0):
            raise ValueError(f"variant power_w must be > 0, got {self.power_w!r}")

    def battery(self, base: BatteryParams) -> BatteryParams | None:
        if self.capacity_kwh == 0:
            return None
        power = {"max_charge_w": self.power_w, "max_discharge_w": self.power_w} if self.power_w else {}
        return replace(base, capacity_kwh=self.capacity_kwh, **power)

    def label(self, base: BatteryParams) -> str:
        battery = self.battery(base)
        text = (
            "no battery"
            if battery is None
            else (f"{battery.capacity_kwh:g} kWh {battery.max_discharge_w / 1000:g} kW")
        )
        if self.pv_scale != 1.0:
            text += f", PV x{self.pv_scale:g}"
        if self.tariff != RECORDED:
            text += f", tariff {self.tariff.text}"
        return text


@dataclass(frozen=True)
class Flows:
    """Per interval (rows) and variant (columns), W: AC power into and out of the battery, grid (+import)."""

    charge_w: FloatArray
    discharge_w: FloatArray
    grid_w: FloatArray


def self_use_flows(
    batteries: Sequence[BatteryParams | None],
    pv_w: FloatArray,
    load_w: FloatArray,
    dt_h: float,
    initial_soc_pct: float,
) -> Flows:
    """Self-use replayed for every battery at once; ``pv_w`` is (n,) or (n, variants)."""
    n, m = load_w.size, len(batteries)
    pv = np.broadcast_to(pv_w.reshape(n, -1), (n, m))
    real = [b or BatteryParams(max_charge_w=0.0, max_discharge_w=0.0) for b in batteries]
    col = {
        name: np.array([getattr(b, name) for b in real])
        for name in (
            "capacity_kwh",
            "max_charge_w",
            "max_discharge_w",
            "charge_efficiency",
            "discharge_efficiency",
        )
    }
    e_min = np.array([b.e_min_kwh for b in real])
    e_max = np.array([b.e_max_kwh for b in real])
    net = load_w[:, None] - np.maximum(pv, 0.0)
    to_kwh = dt_h / 1000.0
    want_out = np.minimum(np.maximum(net, 0.0), col["max_discharge_w"]) * to_kwh / col["discharge_efficiency"]
    surplus_w = np.maximum(-net, 0.0)
    tapered = [b for b in real if b.taper_start_soc_pct is not None]
    want_in = np.minimum(surplus_w, col["max_charge_w"]) * to_kwh * col["charge_efficiency"]
    e = np.array([b.energy_kwh(initial_soc_pct) for b in real])
    stored_in, stored_out = np.empty((n, m)), np.empty((n, m))
    room_in, room_out = np.empty(m), np.empty(m)
    for t in range(n):
        if tapered:
            limit = np.array([b.charge_limit_w(b.soc_pct(float(x))) for b, x in zip(real, e, strict=True)])
            want_in[t] = np.minimum(surplus_w[t], limit) * to_kwh * col["charge_efficiency"]
        np.subtract(e_max, e, out=room_in)
        np.maximum(room_in, 0.0, out=room_in)
        np.minimum(want_in[t], room_in, out=stored_in[t])
        np.subtract(e, e_min, out=room_out)
        np.maximum(room_out, 0.0, out=room_out)
        np.minimum(want_out[t], room_out, out=stored_out[t])
        e += stored_in[t]
        e -= stored_out[t]
    charge = stored_in / col["charge_efficiency"] / to_kwh
    discharge = stored_out * col["discharge_efficiency"] / to_kwh
    return Flows(charge, discharge, net + charge - discharge)


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
    (:mod:`controller.planner.export_room`); its prices and rules are the caller's to apply."""
    n, dt = len(scenario), scenario.step_h
    stops = published_stop(scenario, tz)
    replans = [0, *(np.flatnonzero(np.diff(stops)) + 1).tolist(), n]
    charge, discharge, grid = np.zeros((n, 1)), np.zeros((n, 1)), np.zeros((n, 1))
    e = battery.energy_kwh(initial_soc_pct)
    pv, load, ip, ep = scenario.pv_w, scenario.load_w, scenario.import_price, scenario.export_price
    epoch = scenario.epoch_s()
    netting_s = netting_period_s(scheme, scenario.step.total_seconds())
    elapsed, period = 0.0, -1  # the net metered so far in the settlement period in progress
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
            sol = solve(battery, limits, e0, priced, value, constraints, soc_step_kwh=settings.soc_step_kwh)
            return Made(sol, export_price, np.maximum(-sol.grid_w, 0.0) * priced.dt_h / 1000.0, sol.objective)

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


# --- outcomes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantOutcome:
    variant: Variant
    label: str
    cost: float  # over the replayed intervals, currency
    import_kwh: float
    export_kwh: float
    pv_kwh: float
    load_kwh: float
    charge_kwh: float
    discharge_kwh: float
    cycles: float  # stored energy discharged over the usable capacity (as the backtest counts)

    @property
    def self_consumption_ratio(self) -> float:
        return max(0.0, 1.0 - self.export_kwh / self.pv_kwh) if self.pv_kwh > 0 else 0.0

    @property
    def autarky_ratio(self) -> float:
        return max(0.0, 1.0 - self.import_kwh / self.load_kwh) if self.load_kwh > 0 else 0.0


def outcomes(
    scenario: Scenario,
    base: BatteryParams,
    variants: Sequence[Variant],
    flows: Flows,
    pv_w: FloatArray,
    tz: ZoneInfo,
    scheme: Scheme = PER_SLOT,
) -> list[VariantOutcome]:
    """Energy and money of each variant's flows (columns) under its own tariff, settled under its
    scheme (``scheme``: the site's, for tariffs that name none)."""
    kwh = scenario.step_h / 1000.0
    epoch = scenario.epoch_s()
    prices: dict[VariantTariff, tuple[FloatArray, FloatArray]] = {}
    out = []
    for j, variant in enumerate(variants):
        if variant.tariff not in prices:
            t = variant.tariff
            prices[t] = (
                t.import_rule.prices(scenario.import_price, epoch, tz),
                t.export_rule.prices(scenario.export_price, epoch, tz),
            )
        ip, ep = prices[variant.tariff]
        grid = flows.grid_w[:, j]
        imported, exported = np.maximum(grid, 0.0) * kwh, np.maximum(-grid, 0.0) * kwh
        charged, discharged = (
            float(flows.charge_w[:, j].sum() * kwh),
            float(flows.discharge_w[:, j].sum() * kwh),
        )
        battery = variant.battery(base)
        wear = (battery.wear_cost_per_kwh * (charged + discharged)) if battery else 0.0
        usable = (battery.e_max_kwh - battery.e_min_kwh) if battery else 0.0
        metered = Metered(epoch, int(scenario.step.total_seconds()), imported, exported, ip, ep)
        bill = settle(metered, variant.tariff.settled_by(scheme), tz)
        out.append(
            VariantOutcome(
                variant,
                variant.label(base),
                bill.total + wear,
                float(imported.sum()),
                float(exported.sum()),
                float(np.maximum(pv_w[:, j], 0.0).sum() * kwh),
                float(scenario.load_w.sum() * kwh),
                charged,
                discharged,
                discharged / battery.discharge_efficiency / usable if battery and usable else 0.0,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Investment:
    """What a variant costs over the reference: battery kWh and PV kWp added, plus a fixed amount."""

    battery_per_kwh: float = 0.0
    pv_per_kwp: float = 0.0
    pv_kwp: float = 0.0  # the site's PV peak power, to price a PV scale
    fixed: float = 0.0

    def cost(self, variant: Variant, reference: Variant) -> float:
        if (variant.capacity_kwh, variant.power_w, variant.pv_scale) == (
            reference.capacity_kwh,
            reference.power_w,
            reference.pv_scale,
        ):
            return 0.0
        added_kwh = max(0.0, variant.capacity_kwh - reference.capacity_kwh)
        added_kwp = max(0.0, variant.pv_scale - reference.pv_scale) * self.pv_kwp
        return self.fixed + self.battery_per_kwh * added_kwh + self.pv_per_kwp * added_kwp


@dataclass(frozen=True)
class SweepRow:
    outcome: VariantOutcome
    annual_cost: float
    annual_saving: float  # against the reference
    investment: float
    payback_years: float | None

    def to_dict(self) -> dict[str, object]:
        o = self.outcome
        return {
            "variant": o.label,
            "capacity_kwh": o.variant.capacity_kwh,
            "power_w": o.variant.power_w,
            "pv_scale": o.variant.pv_scale,
            "tariff": o.variant.tariff.text,
            "cost": round(o.cost, 2),
            "annual_cost": round(self.annual_cost, 2),
            "annual_saving": round(self.annual_saving, 2),
            "investment": round(self.investment, 2),
            "payback_years": None if self.payback_years is None else round(self.payback_years, 2),
            "import_kwh": round(o.import_kwh, 1),
            "export_kwh": round(o.export_kwh, 1),
            "cycles": round(o.cycles, 1),
            "self_consumption_ratio": round(o.self_consumption_ratio, 4),
            "autarky_ratio": round(o.autarky_ratio, 4),
        }


@dataclass(frozen=True)
class SweepResult:
    strategy: str
    currency: str
    intervals: int
    covered_days: float
    reference: SweepRow
    rows: list[SweepRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "strategy": self.strategy,
            "currency": self.currency,
            "intervals": self.intervals,
            "covered_days": round(self.covered_days, 2),
            "reference": self.reference.to_dict(),
            "variants": [r.to_dict() for r in self.rows],
        }


def sweep(
    scenario: Scenario,
    base: BatteryParams,
    reference: Variant,
    variants: Sequence[Variant],
    *,
    strategy: str = "self_consumption",
    initial_soc_pct: float = 50.0,
    tz: ZoneInfo,
    limits: GridLimits = GridLimits(),  # noqa: B008 - frozen
    settings: PlannerSettings = PERFECT,
    investment: Investment = Investment(),
    covered_intervals: int | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    scheme: Scheme = PER_SLOT,
) -> SweepResult:
    """Every variant and the reference replayed by ``strategy``; yearly costs, savings and payback.

    ``progress`` is told how many planned variants are done. ``workers``: processes the planner
    replays the variants in, one variant each (None: one per core; 1: here alone)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    everything = [reference, *variants]
    pv = scenario.pv_w[:, None] * np.array([v.pv_scale for v in everything])[None, :]
    batteries = [v.battery(base) for v in everything]
    if strategy == "self_consumption":
        flows = self_use_flows(batteries, pv, scenario.load_w, scenario.step_h, initial_soc_pct)
    else:
        parts: dict[int, Flows] = {}
        jobs = []
        for j, (variant, battery) in enumerate(zip(everything, batteries, strict=True)):
            if battery is None:
                parts[j] = self_use_flows([None], pv[:, j], scenario.load_w, scenario.step_h, initial_soc_pct)
            else:
                settled_by = variant.tariff.settled_by(scheme)
                jobs.append((j, _priced(scenario, variant, pv[:, j], tz, settled_by), battery, settled_by))
        workers = min(len(jobs), os.cpu_count() or 1, MAX_WORKERS) if workers is None else workers
        if workers <= 1:
            planned: Iterator[Flows] = (
                planner_flows(
                    s,
                    b,
                    initial_soc_pct,
                    tz,
                    _limits(limits, r, s),
                    settings,
                    _constraints(r),
                    r,
                )
                for _, s, b, r in jobs
            )
            for done, ((j, _, _, _), part) in enumerate(zip(jobs, planned, strict=True), start=1):
                parts[j] = part
                if progress is not None:
                    progress(done)
        else:
            # a variant per task; spawn, not fork: a fork of a process with threads may hang
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [
                    pool.submit(
                        planner_flows,
                        s,
                        b,
                        initial_soc_pct,
                        tz,
                        _limits(limits, r, s),
                        settings,
                        _constraints(r),
                        r,
                    )
                    for _, s, b, r in jobs
                ]
                for done, ((j, _, _, _), future) in enumerate(zip(jobs, futures, strict=True), start=1):
                    parts[j] = future.result()
                    if progress is not None:
                        progress(done)
        flows = Flows(
            *(
                np.hstack([getattr(parts[j], k) for j in range(len(everything))])
                for k in ("charge_w", "discharge_w", "grid_w")
            )
        )
    results = outcomes(scenario, base, everything, flows, pv, tz, scheme)
    covered = covered_intervals if covered_intervals is not None else len(scenario)
    days = covered * scenario.step_h / 24.0
    per_year = DAYS_PER_YEAR / days if days > 0 else 0.0

    def row(o: VariantOutcome) -> SweepRow:
        annual = o.cost * per_year
        saving = (results[0].cost - o.cost) * per_year
        spent = investment.cost(o.variant, reference)
        payback = spent / saving if saving > 0 and spent > 0 else None
        return SweepRow(o, annual, saving, spent, payback)

    return SweepResult(
        strategy, scenario.currency, len(scenario), days, row(results[0]), [row(o) for o in results[1:]]
    )
