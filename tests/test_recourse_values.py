"""The recourse planner's vectorised backward recursion (controller.planner.recourse_values) and
one-state decision (controller.planner.recourse._best) against the straightforward ones they
replaced (tests/support/recourse_reference.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.recourse_reference import reference_best, reference_values
from test_recourse import Case, uncertain

from controller.physics import BatteryParams, GridLimits
from controller.planner import recourse
from controller.planner.deterministic import make_soc_grid
from controller.planner.plan import Horizon
from controller.planner.recourse_values import CHUNK, values


@st.composite
def with_chances(draw: st.DrawFn) -> tuple[Case, np.ndarray, np.ndarray | None, float]:
    case, errors = draw(uncertain())
    if draw(st.booleans()):  # a main fuse that stops the largest charge powers
        case = (
            case[0],
            replace(case[1], max_import_w=draw(st.sampled_from([0.0, 1500.0, 4000.0]))),
            *case[2:],
        )
    n, k = errors.shape
    chances = None
    if draw(st.booleans()):
        raw = np.array(
            draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=n * k * k, max_size=n * k * k))
        )
        raw = raw.reshape(n, k, k)
        raw[:, :, 0] += raw.sum(axis=2) == 0  # every row has a case that follows
        chances = raw / raw.sum(axis=2, keepdims=True)
    params = case[0]
    step = draw(st.sampled_from([0.005, 0.01, 0.03, 0.1])) * params.capacity_kwh
    return case, errors, chances, step


@settings(max_examples=150, deadline=None)
@given(with_chances())
def test_the_vectorised_recursion_gives_the_straightforward_values(
    drawn: tuple[Case, np.ndarray, np.ndarray | None, float],
) -> None:
    (params, limits, _, h, end_value), errors, chances, step = drawn
    grid = make_soc_grid(params, step)
    slots = recourse._slots(h, errors, chances)
    fast = values(params, limits, grid, slots, end_value)
    slow = reference_values(params, limits, grid, slots, end_value)
    assert len(fast) == len(slow)
    scale = 1.0 + max(float(np.abs(v).max()) for v in slow)
    for got, want in zip(fast, slow, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * scale)


def test_horizons_longer_than_a_chunk_are_prepared_chunk_by_chunk() -> None:
    rng = np.random.default_rng(3)
    n, k = 2 * CHUNK + 5, 5
    h = Horizon(
        np.full(n, 0.25),
        rng.uniform(0, 5000, n),
        rng.uniform(200, 3000, n),
        rng.uniform(0.1, 1.0, n),
        rng.uniform(-0.1, 0.5, n),
    )
    params, limits = BatteryParams(taper_start_soc_pct=80.0), GridLimits(max_export_w=3000.0)
    errors = rng.normal(0, 800, (n, k))
    chances = rng.dirichlet(np.ones(k), (n, k))
    grid = make_soc_grid(params, 0.1)
    slots = recourse._slots(h, errors, chances)
    for got, want in zip(
        values(params, limits, grid, slots, 0.2),
        reference_values(params, limits, grid, slots, 0.2),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(with_chances(), st.lists(st.floats(0, 1), min_size=1, max_size=4))
def test_a_states_decision_is_the_straightforward_one(
    drawn: tuple[Case, np.ndarray, np.ndarray | None, float], where: list[float]
) -> None:
    (params, limits, _, h, end_value), errors, chances, step = drawn
    grid = make_soc_grid(params, step)
    slots = recourse._slots(h, errors, chances)
    after = values(params, limits, grid, slots, end_value)
    for t, slot in enumerate(slots):
        for at in where:
            e = params.e_min_kwh + at * (params.e_max_kwh - params.e_min_kwh)
            for before in range(slot.weights.shape[0]):
                action, power, cost = recourse._best(params, limits, grid, e, after[t], slot, before)
                want_action, want_power, want_cost, margin = reference_best(
                    params, limits, grid, e, after[t], slot, before
                )
                tolerance = 1e-9 * (1.0 + abs(want_cost))
                assert cost == pytest.approx(want_cost, abs=tolerance)
                if margin > tolerance:
                    assert (action, power) == (want_action, pytest.approx(want_power, abs=1e-6))


@pytest.mark.parametrize(("charge_w", "discharge_w"), [(0.0, 5000.0), (5000.0, 0.0), (0.0, 0.0)])
@pytest.mark.parametrize("persistent", [False, True])
def test_a_battery_that_may_not_charge_or_discharge(
    charge_w: float, discharge_w: float, persistent: bool
) -> None:
    """An override may set a power limit to zero: no charge column but hold, no discharge column."""
    rng = np.random.default_rng(5)
    n, k = 12, 3
    h = Horizon(
        np.full(n, 0.25),
        rng.uniform(0, 5000, n),
        rng.uniform(200, 3000, n),
        rng.uniform(0.1, 1.0, n),
        rng.uniform(0.0, 0.5, n),
    )
    params = BatteryParams(max_charge_w=charge_w, max_discharge_w=discharge_w)
    errors = rng.normal(0, 800, (n, k))
    chances = rng.dirichlet(np.ones(k), (n, k)) if persistent else None
    grid = make_soc_grid(params, 0.1)
    slots = recourse._slots(h, errors, chances)
    for got, want in zip(
        values(params, GridLimits(), grid, slots, 0.2),
        reference_values(params, GridLimits(), grid, slots, 0.2),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("taper", [None, 80.0])
def test_surprises_beyond_the_charge_limit_at_the_daemons_step(taper: float | None) -> None:
    """At the daemon's 0.5 % step, PV surprises larger than the charge limit take cases to the
    limit from the hold column on, and the states near the top fill up in every case: the charge
    columns read below and at the limit, and near the top, as the straightforward scoring does."""
    rng = np.random.default_rng(11)
    n, k = 14, 5
    h = Horizon(
        np.full(n, 0.25),
        rng.uniform(0, 6000, n),
        rng.uniform(200, 3000, n),
        rng.uniform(0.1, 1.0, n),
        rng.uniform(-0.05, 0.4, n),
    )
    params = BatteryParams(taper_start_soc_pct=taper)
    errors = np.column_stack([np.full(n, -7000.0), rng.normal(0, 900, (n, k - 1))])  # 1.75 kWh of surplus
    chances = rng.dirichlet(np.ones(k), (n, k))
    grid = make_soc_grid(params, 0.005 * params.capacity_kwh)
    slots = recourse._slots(h, errors, chances)
    for got, want in zip(
        values(params, GridLimits(max_export_w=4000.0), grid, slots, 0.2),
        reference_values(params, GridLimits(max_export_w=4000.0), grid, slots, 0.2),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("taper", [None, 80.0])
@pytest.mark.parametrize("step_pct", [0.5, 1.0])
def test_hourly_slots_and_quarter_hours_in_one_horizon(taper: float | None, step_pct: float) -> None:
    """Hourly slots span 48 (1 % step) or 96 (0.5 %) charge columns, weighed per column or run by
    run, and fewer of them are prepared at once; quarter-hours before them span a quarter of
    that. PV surprises take cases to the limit and the states near the top fill up."""
    rng = np.random.default_rng(17)
    n, k = 10, 4
    dt = np.array([0.25] * 4 + [1.0] * (n - 4))
    h = Horizon(
        dt,
        rng.uniform(0, 6000, n),
        rng.uniform(200, 3000, n),
        rng.uniform(0.1, 1.0, n),
        rng.uniform(-0.05, 0.4, n),
    )
    params = BatteryParams(taper_start_soc_pct=taper)
    errors = np.column_stack([np.full(n, -4000.0), rng.normal(0, 900, (n, k - 1))])
    chances = rng.dirichlet(np.ones(k), (n, k))
    grid = make_soc_grid(params, step_pct / 100.0 * params.capacity_kwh)
    limits = GridLimits(max_import_w=9000.0, max_export_w=4000.0)
    slots = recourse._slots(h, errors, chances)
    for got, want in zip(
        values(params, limits, grid, slots, 0.2),
        reference_values(params, limits, grid, slots, 0.2),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
