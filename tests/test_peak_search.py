"""The capacity charge's outer search (controller.planner.peak): the recourse search stops where
no higher cap can win, and chooses what trying every candidate chooses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from controller.config.models import HemsdConfig
from controller.forecast.errors import history_spread
from controller.physics import BatteryParams, GridLimits
from controller.planner import recourse
from controller.planner.goals import NO_GOALS, SocGoals, SocTarget
from controller.planner.inputs import (
    PricedSlot,
    end_value,
    make_plan,
    peak_charge,
    settled_slots,
    slot_errors_w,
)
from controller.planner.peak import CANDIDATES, PeakCharge, _peak_kw, capped_limits, recourse_against_peak
from controller.planner.plan import Horizon, PlanConstraints
from controller.settlement.config import SettlementConfig
from controller.settlement.prices import planning_limits

PARAMS = BatteryParams(capacity_kwh=5.0, min_soc_pct=10.0, max_charge_w=3000.0, max_discharge_w=3000.0)
RULES = PlanConstraints()
NOW = datetime(2025, 1, 6, tzinfo=UTC)
RNG = np.random.default_rng(7)


def evening(seed: int, evening_w: float) -> tuple[Horizon, np.ndarray]:
    """A day of quarter-hours: a dear evening with ``evening_w`` drawn, and departures."""
    rng = np.random.default_rng(seed)
    n = 96
    hour = np.arange(n) / 4
    load = 400.0 + evening_w * ((hour >= 18) & (hour < 21)) + 300.0 * rng.random(n)
    pv = 3000.0 * np.clip(np.sin((hour - 7) / 10 * np.pi), 0.0, None)
    price = 0.25 + 0.20 * ((hour >= 17) & (hour < 21)) - 0.10 * (hour < 5)
    errors = np.sort(rng.normal(0.0, 400.0, (n, 5)), axis=1)
    return Horizon(np.full(n, 0.25), pv, load, price, np.full(n, 0.05)), errors


def every_candidate(h: Horizon, errors: np.ndarray, charge: PeakCharge) -> float:
    """The cap trying every candidate chooses (the search before it stopped early)."""
    free = recourse.policy(PARAMS, GridLimits(), 2.0, h, errors, 0.1, rules=RULES)
    peak = _peak_kw(h, free.solution, charge.window_h)
    if peak <= charge.paid_kw + 1e-6:
        return charge.paid_kw
    caps = [charge.paid_kw + (peak - charge.paid_kw) * k / CANDIDATES for k in range(CANDIDATES + 1)]
    scores = [
        recourse.policy(
            PARAMS, capped_limits(GridLimits(), c, charge, h), 2.0, h, errors, 0.1, rules=RULES
        ).expected_cost
        + (c - charge.paid_kw) * charge.price_per_kw
        for c in caps
    ]
    return caps[int(np.argmin(scores))]


@pytest.mark.parametrize(
    ("seed", "evening_w", "price_per_kw"),
    [(1, 4000.0, 5.0), (2, 6000.0, 0.05), (3, 6000.0, 0.5), (4, 2500.0, 2.0), (5, 8000.0, 0.2)],
)
def test_the_search_chooses_the_cap_every_candidate_would(
    seed: int, evening_w: float, price_per_kw: float
) -> None:
    h, errors = evening(seed, evening_w)
    charge = PeakCharge(price_per_kw, 2.5)
    chosen = recourse_against_peak(PARAMS, GridLimits(), 2.0, h, 0.1, errors, None, None, charge, RULES)
    assert chosen.cap_kw == pytest.approx(every_candidate(h, errors, charge), abs=1e-12)


@pytest.mark.parametrize("goals", [NO_GOALS, SocGoals(targets=(SocTarget(90.0, NOW + timedelta(hours=17)),))])
def test_the_daemons_plan_is_the_searched_policy_as_a_fresh_plan_would_be(goals: SocGoals) -> None:
    h, _ = evening(6, 6000.0)
    slots = [
        PricedSlot(NOW + timedelta(minutes=15 * q), NOW + timedelta(minutes=15 * (q + 1)), float(i), float(e))
        for q, (i, e) in enumerate(zip(h.import_price, h.export_price, strict=True))
    ]
    capacity = SettlementConfig.model_validate({"capacity": {"price_per_kw_month": 0.5, "minimum_kw": 2.5}})
    config = HemsdConfig.model_validate({"inverter": {"type": "emulator"}}).model_copy(
        update={"settlement": capacity}
    )
    table = history_spread(
        np.tile(h.pv_w, 30), np.tile(h.load_w, 30) * RNG.uniform(0.5, 1.5, 30 * 96), 96, 96
    )
    made = make_plan(config, 40.0, slots, h.pv_w.tolist(), h.load_w.tolist(), NOW, table, goals)
    assert made.import_cap_w is not None
    params, step = (
        config.battery.params(),
        config.planner.soc_step_pct / 100.0 * config.battery.params().capacity_kwh,
    )
    errors_w, transitions = slot_errors_w(table, slots, NOW)
    charge = peak_charge(capacity.build(), 0.0)
    pv_peak_w = sum(a.kwp for a in config.forecast.arrays) * 1000.0
    limits = planning_limits(capacity.build().rules, config.grid.limits(), pv_peak_w)
    fresh = recourse.plan(
        soc_pct=40.0,
        params=params,
        prices=settled_slots(config, slots),
        pv_w=h.pv_w.tolist(),
        load_w=h.load_w.tolist(),
        errors_w=errors_w,
        transitions=transitions,
        limits=capped_limits(limits, made.import_cap_w / 1000.0, charge, h),
        end_value=end_value(config),
        soc_step_kwh=step,
        created_at=NOW,
        display_tz=config.site.zone,
        goals=goals,
    )
    assert made.import_cap_w > 2500.0  # the cap rose above the minimum: the search tried several
    assert made.slots == fresh.slots
    assert made.objective == fresh.objective
