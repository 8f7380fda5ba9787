"""What-if: the site's history (or a scenario) replayed with another battery, more PV or another tariff.

Each variant (:mod:`controller.sim.variants`) is a battery size and power, a PV scale and a tariff
(:mod:`controller.sim.tariffs`). Strategies:

- ``self_consumption``: the battery stores PV surplus and covers deficits, as an inverter in
  self-use does; all variants at once (:func:`controller.sim.variants.self_use_flows`). A tariff
  changes only the money, not the flows.
- ``planner``: the planner plans day-ahead with perfect foresight of PV and load, one variant at
  a time (:mod:`controller.sim.day_ahead`).

Every variant's cost is its bill (:func:`controller.settlement.engine.settle`) plus battery wear.
Costs are annualised over the intervals that hold data; the simple payback of a variant is its
investment over its yearly saving against the reference (the site as it is).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.physics import BatteryParams, GridLimits
from controller.settlement.engine import Metered, settle
from controller.settlement.schemes import PER_SLOT, Scheme
from controller.sim.day_ahead import variant_flows
from controller.sim.scenario import Scenario
from controller.sim.settings import PERFECT, PlannerSettings
from controller.sim.tariffs import VariantTariff
from controller.sim.variants import Flows, Variant, self_use_flows

FloatArray = npt.NDArray[np.float64]
STRATEGIES = ("self_consumption", "planner")
DAYS_PER_YEAR = 365.25
MAX_WORKERS = 8


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
                jobs.append(
                    (j, (scenario, variant, battery, pv[:, j], initial_soc_pct, tz, limits, settings, scheme))
                )

        def take(planned: Iterable[Flows]) -> None:
            for done, ((j, _), part) in enumerate(zip(jobs, planned, strict=True), start=1):
                parts[j] = part
                if progress is not None:
                    progress(done)

        workers = min(len(jobs), os.cpu_count() or 1, MAX_WORKERS) if workers is None else workers
        if workers <= 1:
            take(variant_flows(*args) for _, args in jobs)
        else:
            # a variant per task; spawn, not fork: a fork of a process with threads may hang
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [pool.submit(variant_flows, *args) for _, args in jobs]
                take(future.result() for future in futures)
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
