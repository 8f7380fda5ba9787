"""Forecast errors that persist from slot to slot: the recourse planner's transitions between
cases (controller.planner.recourse), counted from hindcasts (controller.forecast.errors)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from test_optimizer import slots
from test_recourse import Case, uncertain
from test_safety_invariants import Clock, RecordingInverter, loop_config, reading

from controller.config.loading import load_config_text
from controller.control.intents import SlotCases
from controller.control.loop import ControlLoop
from controller.forecast.errors import DayErrors, ErrorTable
from controller.physics import BatteryParams, GridLimits
from controller.planner import recourse
from controller.planner.inputs import make_plan
from controller.planner.plan import Horizon, SlotValues
from storage.datamanager import DataManager, StorageOptions


def _uniform(errors: np.ndarray) -> np.ndarray:
    n, k = errors.shape
    return np.full((n, k, k), 1.0 / k)


def _identity(errors: np.ndarray) -> np.ndarray:
    n, k = errors.shape
    return np.broadcast_to(np.eye(k), (n, k, k)).copy()


@settings(max_examples=40, deadline=None)
@given(uncertain())
def test_chances_that_ignore_the_slot_before_plan_as_independent_errors(
    drawn: tuple[Case, np.ndarray],
) -> None:
    (params, limits, e0, h, end_value), errors = drawn
    independent = recourse.slot_values(params, limits, h, errors, end_value)
    uniform = recourse.slot_values(params, limits, h, errors, end_value, transitions=_uniform(errors))
    assert independent.after_slot.shape[1] == 1
    assert uniform.after_slot.shape[1] == errors.shape[1] or h.dt_h.size == 1
    np.testing.assert_allclose(
        uniform.after_slot, np.broadcast_to(independent.after_slot, uniform.after_slot.shape), atol=1e-9
    )
    first = recourse.decide(params, limits, e0, h, errors, end_value)
    again = recourse.decide(params, limits, e0, h, errors, end_value, transitions=_uniform(errors))
    assert again.expected_cost == pytest.approx(first.expected_cost, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(uncertain())
def test_an_error_that_persists_is_known_after_the_first_slot(drawn: tuple[Case, np.ndarray]) -> None:
    """With each slot in the case of the slot before, the first slot's case fixes the rest: the
    value after it in case j is the value of planning for the departures of case j alone."""
    (params, limits, _, h, end_value), errors = drawn
    persistent = recourse.slot_values(params, limits, h, errors, end_value, transitions=_identity(errors))
    after_first = persistent.after_slot[0]  # one row when nothing follows the first slot
    for j in range(errors.shape[1]):
        alone = recourse.slot_values(params, limits, h, errors[:, j : j + 1], end_value)
        np.testing.assert_allclose(
            after_first[min(j, after_first.shape[0] - 1)], alone.after_slot[0, 0], atol=1e-9
        )


def test_the_error_table_counts_how_errors_persist() -> None:
    spd, k = 24, 5
    rng = np.random.default_rng(7)
    # every issue's error the same at all its leads: a slot's bin is the one before's
    lasting = [DayErrors(d, np.repeat(rng.normal(0.0, 500.0, (spd, 1)), 12, axis=1)) for d in range(1, 29)]
    table = ErrorTable.from_days(lasting, spd, k)
    chances = table.transitions_for(np.arange(24))
    assert chances.shape == (24, k, k)
    np.testing.assert_allclose(chances.sum(axis=2), 1.0)
    assert np.all(np.diagonal(chances, axis1=1, axis2=2) > 0.6)
    # errors drawn anew at every lead: about one chance in k whatever the bin before
    fresh = [DayErrors(d, rng.normal(0.0, 500.0, (spd, 48))) for d in range(1, 29)]
    mixed = ErrorTable.from_days(fresh, spd, k).transitions_for(np.arange(24))
    assert np.all(np.abs(mixed - 1.0 / k) < 0.12)
    assert np.all(np.abs(mixed.mean(axis=0) - 1.0 / k) < 0.03)


def test_the_executor_values_what_is_left_in_the_case_the_house_is_in() -> None:
    """Case 0 (2 kW more surplus than forecast) leaves stored energy worth what the export pays
    (0.1/kWh), case 1 (as forecast) 0.5/kWh. A 1.2 kW surplus is nearest case 0: exported, the
    battery idle (losses make storing it and selling what is stored both cost). A 0.8 kW one is
    nearest case 1: stored."""
    params = BatteryParams(capacity_kwh=10.0, min_soc_pct=0.0)
    grid_e = np.arange(0.0, 10.0 + 1e-9, 0.1)
    values = SlotValues(
        e_min_kwh=0.0,
        step_kwh=0.1,
        after_slot=np.stack([-0.1 * grid_e, -0.5 * grid_e])[None, :, :],
        departures_w=np.array([[-2000.0, 0.0]]),
        forecast_net_w=np.array([0.0]),
    )

    def decided(net_w: float) -> str:
        return recourse.decide_known(params, GridLimits(), values, 0, 5.0, net_w, 300.0, 1.0, 0.6, 0.1).action

    assert decided(-1200.0) == "hold"
    assert decided(-800.0) == "self_use"


def test_transitions_that_do_not_fit_are_refused() -> None:
    params = BatteryParams()
    h = Horizon(np.ones(3), np.zeros(3), np.full(3, 500.0), np.full(3, 0.3), np.full(3, 0.1))
    errors = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"transitions: expected \(3, 2, 2\)"):
        recourse.decide(params, GridLimits(), 5.0, h, errors, 0.1, transitions=np.full((3, 3, 3), 1 / 3))
    with pytest.raises(ValueError, match="transitions: each row of chances must sum to 1"):
        recourse.decide(params, GridLimits(), 5.0, h, errors, 0.1, transitions=np.full((3, 2, 2), 0.4))
    bad = _uniform(errors)
    bad[1, 0] = [1.5, -0.5]
    with pytest.raises(ValueError, match="transitions: chances must be finite and >= 0"):
        recourse.decide(params, GridLimits(), 5.0, h, errors, 0.1, transitions=bad)
    with pytest.raises(ValueError, match="departures_w"):
        SlotValues(0.0, 0.1, np.zeros((2, 3, 11)), np.zeros((2, 2)), np.zeros(2))


def test_a_slot_longer_than_the_history_step_is_as_many_steps_on() -> None:
    """Transitions are counted between 15-minute intervals; hourly price slots are four of them."""
    rng = np.random.default_rng(11)
    days = [DayErrors(d, np.cumsum(rng.normal(0.0, 200.0, (96, 16)), axis=1)) for d in range(1, 15)]
    table = ErrorTable.from_days(days, 96, 3)
    quarter = table.transitions_for(np.array([10, 10]), np.array([0.25, 0.25]))
    hourly = table.transitions_for(np.array([10]), np.array([1.0]))
    np.testing.assert_allclose(quarter[0], table.transitions[10])
    np.testing.assert_allclose(hourly[0], np.linalg.matrix_power(table.transitions[10], 4))
    assert np.trace(hourly[0]) < np.trace(quarter[0])  # a random walk forgets over an hour


def _three_cases(transitions: np.ndarray | None) -> SlotValues:
    """One slot in three cases: 1 kW more surplus than forecast, as forecast, 1 kW more load;
    what is left stored is worth 0.1, 0.3 and 0.5/kWh in them."""
    grid_e = np.arange(0.0, 10.0 + 1e-9, 0.1)
    return SlotValues(
        e_min_kwh=0.0,
        step_kwh=0.1,
        after_slot=np.stack([-0.1 * grid_e, -0.3 * grid_e, -0.5 * grid_e])[None, :, :],
        departures_w=np.array([[-1000.0, 0.0, 1000.0]]),
        forecast_net_w=np.array([200.0]),
        transitions=transitions,
    )


def test_the_cases_are_weighed_by_the_case_before_and_how_likely_the_reading_is() -> None:
    """Without the case of the slot before, all weight is on the case nearest the reading. With
    it, each case weighs its chance after that case times a Gaussian likelihood of the reading's
    departure, CASE_WIDTH of the departures' spread wide."""
    chances = np.array([[[0.6, 0.3, 0.1], [0.2, 0.6, 0.2], [0.1, 0.3, 0.6]]])
    values = _three_cases(chances)
    np.testing.assert_array_equal(recourse.case_weights(values, 0, -600.0), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(recourse.case_weights(_three_cases(None), 0, -600.0, before=2), [1, 0, 0])
    spread = recourse.CASE_WIDTH * np.std([-1000.0, 0.0, 1000.0])
    likelihood = np.exp(-0.5 * ((np.array([-1000.0, 0.0, 1000.0]) + 800.0) / spread) ** 2)
    for before in range(3):
        weights = recourse.case_weights(values, 0, -600.0, before)  # a departure of -800 W
        expected = likelihood * chances[0, before]
        np.testing.assert_allclose(weights, expected / expected.sum())
        assert weights[0] == weights.max()
    # the case before pulls the weights its way
    assert recourse.case_weights(values, 0, -600.0, 2)[2] > recourse.case_weights(values, 0, -600.0, 0)[2]
    grid_e = values.e_min_kwh + values.step_kwh * np.arange(values.after_slot.shape[2])
    weighed = recourse.known_value(values, 0, -600.0, 1)
    per_kwh = recourse.case_weights(values, 0, -600.0, 1) @ np.array([0.1, 0.3, 0.5])
    np.testing.assert_allclose(weighed, -per_kwh * grid_e)


def test_the_executor_stores_a_surplus_as_the_weighed_value_says() -> None:
    """A 700 W surplus (900 W under the forecast) is nearest the surplus case, where a stored kWh
    is worth what the export pays (0.1): exported with the battery idle (losses make storing it
    cost). After a slot as forecast, which is likely followed by another, the weighed value is
    above the export price and the surplus is stored."""
    params = BatteryParams(capacity_kwh=10.0, min_soc_pct=0.0)
    sticky = np.array([[[0.98, 0.01, 0.01], [0.01, 0.98, 0.01], [0.01, 0.01, 0.98]]])
    values = _three_cases(sticky)

    def decided(before: int | None) -> str:
        return recourse.decide_known(
            params, GridLimits(), values, 0, 5.0, -700.0, 300.0, 1.0, 0.6, 0.1, before=before
        ).action

    assert decided(None) == "hold"
    assert decided(0) == "hold"
    assert decided(1) == "self_use"


def test_slot_values_carry_the_transitions_and_refuse_ones_that_do_not_fit() -> None:
    params = BatteryParams()
    h = Horizon(np.ones(3), np.zeros(3), np.full(3, 500.0), np.full(3, 0.3), np.full(3, 0.1))
    errors = np.array([[-300.0, 0.0, 300.0]] * 3)
    chances = _uniform(errors)
    made = recourse.slot_values(params, GridLimits(), h, errors, 0.1, transitions=chances)
    assert made.transitions is not None
    np.testing.assert_array_equal(made.transitions, chances)
    with pytest.raises(ValueError, match=r"transitions: expected \(1, 3, 3\)"):
        _three_cases(np.full((1, 2, 2), 0.5))


def test_the_control_loop_tells_the_case_of_the_slot_measured_before() -> None:
    """The readings of a slot measured from its start are averaged; once the next slot starts,
    that slot's case is the one nearest the mean among its departures. A slot whose readings
    began late, or that does not end where the next starts, tells none."""
    config = load_config_text('[site]\nid = "cases"\ntimezone = "UTC"\n[planner]\nkind = "recourse"\n')
    prices = slots([0.25] * 8, [0.3] * 8, [0.05] * 8)
    rng = np.random.default_rng(3)
    table = ErrorTable.from_days(
        [DayErrors(d, rng.normal(0.0, 800.0, (96, 96))) for d in range(1, 15)], 96, 5
    )
    made = make_plan(config, 50.0, prices, [0.0] * 8, [500.0] * 8, prices[0].start, table)
    assert made.values is not None
    assert made.values.transitions is not None
    first, second, third = made.slots[:3]
    cases = SlotCases()
    assert cases.update(made, first, -400.0, first.start) is None
    assert cases.update(made, first, -1600.0, first.start + timedelta(minutes=10)) is None
    expected = recourse.known_case(made.values, 0, -1000.0)
    assert cases.update(made, second, 300.0, second.start + timedelta(seconds=10)) == expected
    assert cases.update(made, second, 300.0, second.start + timedelta(minutes=5)) == expected
    assert cases.update(made, third, 0.0, third.start) == recourse.known_case(made.values, 1, 300.0)
    late = SlotCases()
    late.update(made, first, 0.0, first.start + timedelta(minutes=5))
    assert late.update(made, second, 0.0, second.start) is None
    gap = SlotCases()
    gap.update(made, first, 0.0, first.start)
    assert gap.update(made, third, 0.0, third.start) is None


async def test_the_control_loop_weighs_a_slot_by_the_case_it_measured_before(tmp_path: Path) -> None:
    """The control loop averages the readings of the slot in progress and, once the next slot
    starts, gives its executor that slot's case: a slot measured with a 1 kW surplus where
    500 W of load was forecast is in the case of the largest surplus."""
    config = loop_config(tmp_path)
    prices = slots([0.25] * 8, [0.3] * 8, [0.05] * 8)
    rng = np.random.default_rng(5)
    days = [DayErrors(d, rng.normal(0.0, 800.0, (96, 96))) for d in range(1, 15)]
    made = make_plan(
        config, 50.0, prices, [0.0] * 8, [500.0] * 8, prices[0].start, ErrorTable.from_days(days, 96, 5)
    )
    assert made.values is not None
    first, second = made.slots[:2]
    clock = Clock()
    async with DataManager(StorageOptions(state_dir=config.storage.state_dir), now=clock) as data:
        control = ControlLoop(config, RecordingInverter(), data, clock)
        for minute in (0, 5, 10):
            at = first.start + timedelta(minutes=minute)
            control.intent(made, [], at, reading(at, pv_w=1500.0, load_w=500.0))
            assert control.slot_cases.before is None
        at = second.start + timedelta(seconds=10)
        control.intent(made, [], at, reading(at, pv_w=0.0, load_w=500.0))
    assert control.slot_cases.before == recourse.known_case(made.values, 0, -1000.0)
    assert control.slot_cases.before == int(np.argmin(made.values.departures_w[0]))
