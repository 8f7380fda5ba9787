"""What-if replays: the vectorised self-use equals the model step by step; sweeps, tariffs, payback, planner."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.shared import SHARED, needs_shared

from controller.physics import BatteryParams, mode_request_w, step
from controller.sim.baselines import no_battery, self_consumption
from controller.sim.day_ahead import planner_flows
from controller.sim.scenario import Scenario, load_scenario
from controller.sim.tariffs import RECORDED, parse_tariff
from controller.sim.variants import Variant, self_use_flows
from controller.sim.whatif import Investment, outcomes, sweep

SCENARIOS = SHARED / "scenarios"
PL_SCENARIO = SCENARIOS / "kn4_pl_rce_2025-26_15min_pln.csv"
WARSAW = ZoneInfo("Europe/Warsaw")
BASE = BatteryParams(capacity_kwh=10.0, min_soc_pct=10.0)


def synthetic(days: int, step_min: int = 15, seed: int = 2, start: datetime | None = None) -> Scenario:
    """PV bell with clouds, evening load peak, prices high in the evening, export at a third."""
    rng = np.random.default_rng(seed)
    per_day = 24 * 60 // step_min
    n = days * per_day
    hour = (np.arange(n) % per_day) * step_min / 60
    clouds = np.repeat(rng.uniform(0.2, 1.0, days), per_day)
    pv = 5000 * np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * clouds
    load = 300 + 400 * rng.random(n) + 1500 * ((hour >= 17) & (hour < 21))
    price = 0.6 + 0.5 * ((hour >= 17) & (hour < 21)) - 0.3 * (hour < 5) + rng.normal(0, 0.05, n)
    return Scenario(
        name="synthetic_pln.csv",
        currency="PLN",
        start=start or datetime(2026, 3, 2, tzinfo=UTC),
        step=timedelta(minutes=step_min),
        filled_intervals=0,
        import_price=price,
        export_price=price / 3,
        pv_w=pv,
        load_w=load,
    )


def stepwise(params: BatteryParams, pv: np.ndarray, load: np.ndarray, dt: float, soc: float) -> np.ndarray:
    """grid_w of self-use, one model step at a time (what the backtest does)."""
    e, grid = params.energy_kwh(soc), []
    for p, q in zip(pv.tolist(), load.tolist(), strict=True):
        r = step(params, e, mode_request_w("self_use", params, e, p, q), p, q, dt)
        grid.append(r.grid_w)
        e = r.e_kwh
    return np.array(grid)


BATTERIES = (
    BASE,
    BatteryParams(
        capacity_kwh=3.0,
        min_soc_pct=20.0,
        max_soc_pct=90.0,
        max_charge_w=1500.0,
        max_discharge_w=2500.0,
        charge_efficiency=0.9,
        discharge_efficiency=0.97,
    ),
    BatteryParams(
        capacity_kwh=12.0, taper_start_soc_pct=80.0, taper_end_fraction=0.3, wear_cost_per_kwh=0.02
    ),
)


def test_vectorised_self_use_equals_the_model_step_by_step() -> None:
    sc = synthetic(10)
    flows = self_use_flows([*BATTERIES, None], sc.pv_w, sc.load_w, sc.step_h, 40.0)
    for j, params in enumerate(BATTERIES):
        expected = stepwise(params, sc.pv_w, sc.load_w, sc.step_h, 40.0)
        assert np.allclose(flows.grid_w[:, j], expected, rtol=0, atol=1e-6), params
    assert np.array_equal(flows.grid_w[:, -1], sc.load_w - sc.pv_w)
    assert not flows.charge_w[:, -1].any()
    assert not flows.discharge_w[:, -1].any()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 9000), st.floats(0, 6000)), min_size=1, max_size=80),
    st.floats(0.5, 30.0),
    st.floats(0.0, 60.0),
    st.floats(0.0, 100.0),
    st.sampled_from([0.25, 1.0]),
    st.one_of(st.none(), st.floats(50.0, 95.0)),
)
def test_vectorised_self_use_equals_the_model_for_any_house(
    rows: list[tuple[float, float]], capacity: float, floor: float, soc: float, dt: float, taper: float | None
) -> None:
    params = BatteryParams(
        capacity_kwh=capacity,
        min_soc_pct=floor,
        max_charge_w=3000.0,
        max_discharge_w=4000.0,
        charge_efficiency=0.93,
        taper_start_soc_pct=taper,
    )
    pv, load = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    flows = self_use_flows([params], pv, load, dt, soc)
    assert np.allclose(flows.grid_w[:, 0], stepwise(params, pv, load, dt, soc), rtol=0, atol=1e-6)


@needs_shared(PL_SCENARIO)
def test_a_sweep_on_a_real_year_agrees_with_the_backtest_baselines() -> None:
    sc = load_scenario(PL_SCENARIO)
    sizes = [Variant(float(c)) for c in range(0, 21)]
    result = sweep(sc, BASE, Variant(10.0), sizes, tz=WARSAW)
    by_size = {r.outcome.variant.capacity_kwh: r.outcome for r in result.rows}
    reference = self_consumption(sc, BASE, 50.0)
    for got in (by_size[10.0], result.reference.outcome):
        assert got.cost == pytest.approx(reference.cost, rel=1e-9)
        assert got.import_kwh == pytest.approx(reference.import_kwh, rel=1e-9)
        assert got.export_kwh == pytest.approx(reference.export_kwh, rel=1e-9)
        assert got.cycles == pytest.approx(reference.cycles, rel=1e-9)
    none = no_battery(sc)
    assert by_size[0.0].cost == pytest.approx(none.cost, rel=1e-12)
    assert by_size[0.0].import_kwh == pytest.approx(none.import_kwh, rel=1e-12)
    imports = [by_size[float(c)].import_kwh for c in range(21)]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(imports))  # more storage, less import


def test_yearly_cost_saving_and_payback() -> None:
    sc = synthetic(14)
    investment = Investment(battery_per_kwh=2000.0, fixed=1000.0, pv_per_kwp=3000.0, pv_kwp=5.0)
    variants = [
        Variant(0.0),
        Variant(10.0),
        Variant(15.0),
        Variant(10.0, pv_scale=1.5),
        Variant(20.0, power_w=8000.0),
    ]
    result = sweep(sc, BASE, Variant(10.0), variants, tz=WARSAW, investment=investment)
    assert result.covered_days == pytest.approx(14.0)
    ref = result.reference
    assert (ref.annual_saving, ref.investment, ref.payback_years) == (0.0, 0.0, None)
    assert ref.annual_cost == pytest.approx(ref.outcome.cost * 365.25 / 14)
    rows = {r.outcome.label: r for r in result.rows}
    assert set(rows) == {"no battery", "10 kWh 5 kW", "15 kWh 5 kW", "10 kWh 5 kW, PV x1.5", "20 kWh 8 kW"}
    bigger = rows["15 kWh 5 kW"]
    assert bigger.investment == pytest.approx(1000.0 + 5 * 2000.0)
    assert bigger.annual_saving == pytest.approx((ref.outcome.cost - bigger.outcome.cost) * 365.25 / 14)
    assert bigger.annual_saving > 0
    assert bigger.payback_years == pytest.approx(bigger.investment / bigger.annual_saving)
    more_pv = rows["10 kWh 5 kW, PV x1.5"]
    assert more_pv.investment == pytest.approx(1000.0 + 0.5 * 5.0 * 3000.0)
    assert more_pv.outcome.pv_kwh == pytest.approx(1.5 * ref.outcome.pv_kwh)
    assert rows["no battery"].annual_saving < 0
    assert rows["no battery"].payback_years is None
    assert rows["10 kWh 5 kW"].investment == 0.0
    partial = sweep(sc, BASE, Variant(10.0), [], tz=WARSAW, covered_intervals=7 * 96)
    assert partial.reference.annual_cost == pytest.approx(ref.outcome.cost * 365.25 / 7)


def test_another_tariff_changes_the_money_not_the_flows() -> None:
    sc = synthetic(7)
    flat = parse_tariff("0.80/0.10")
    result = sweep(sc, BASE, Variant(10.0), [Variant(10.0, tariff=flat)], tz=WARSAW)
    ref, other = result.reference.outcome, result.rows[0].outcome
    assert (other.import_kwh, other.export_kwh) == (ref.import_kwh, ref.export_kwh)
    assert other.cost == pytest.approx(0.80 * other.import_kwh - 0.10 * other.export_kwh, rel=1e-12)
    assert result.rows[0].outcome.label == "10 kWh 5 kW, tariff 0.80/0.10"


def test_zone_tariffs_follow_the_calendar_in_the_site_zone() -> None:
    tariff = parse_tariff("G12:peak=1.10,offpeak=0.60/0.05")
    # Thursday 2026-03-05 in Warsaw (UTC+1): off-peak 22-06 and 13-15 local
    local_hours = [0, 5, 6, 12, 13, 14, 15, 21, 22]
    epoch = np.array([int(datetime(2026, 3, 5, h, 30, tzinfo=WARSAW).timestamp()) for h in local_hours])
    recorded = np.zeros(epoch.size)
    prices = tariff.import_rule.prices(recorded, epoch, WARSAW)
    assert prices.tolist() == [0.6, 0.6, 1.1, 1.1, 0.6, 0.6, 1.1, 1.1, 0.6]
    assert tariff.export_rule.prices(recorded, epoch, WARSAW).tolist() == [0.05] * epoch.size
    assert parse_tariff("recorded") == RECORDED
    assert (
        parse_tariff("0.9").export_rule.prices(recorded + 0.3, epoch, WARSAW).tolist() == [0.3] * epoch.size
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cheap", "not 'recorded', a price or PRESET"),
        ("G99:a=1", "unknown zone preset 'G99'"),
        ("G12:peak=1.0", "needs a price for each of peak, offpeak"),
        ("G12:peak=1.0,offpeak=x", "'offpeak=x' is not zone=price"),
        ("0.5/nan", "must be finite"),
    ],
)
def test_bad_tariffs_are_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tariff(text)


def test_variants_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="capacity_kwh"):
        Variant(-1.0)
    with pytest.raises(ValueError, match="power_w"):
        Variant(5.0, power_w=0.0)
    with pytest.raises(ValueError, match="strategy"):
        sweep(synthetic(1), BASE, Variant(10.0), [], strategy="magic", tz=WARSAW)


def spread_scenario(days: int) -> Scenario:
    """No PV, 1 kW load, 0.10 from 00:00 to 06:00 local and 1.00 otherwise; nothing paid for export."""
    start = datetime(2026, 3, 2, tzinfo=WARSAW)
    n = days * 24
    local_hour = np.arange(n) % 24
    price = np.where(local_hour < 6, 0.10, 1.00)
    return Scenario(
        name="spread_pln.csv",
        currency="PLN",
        start=start.astimezone(UTC),
        step=timedelta(hours=1),
        filled_intervals=0,
        import_price=price,
        export_price=np.zeros(n),
        pv_w=np.zeros(n),
        load_w=np.full(n, 1000.0),
    )


def test_the_day_ahead_planner_fills_the_battery_in_cheap_hours() -> None:
    sc = spread_scenario(4)
    lossless = BatteryParams(
        capacity_kwh=10.0, min_soc_pct=0.0, charge_efficiency=1.0, discharge_efficiency=1.0
    )
    planned = planner_flows(sc, lossless, 50.0, WARSAW)
    plain = self_use_flows([lossless], sc.pv_w, sc.load_w, sc.step_h, 50.0)
    v = Variant(10.0)
    day2 = slice(24, 48)
    assert planned.charge_w[day2, 0][:6].sum() == pytest.approx(10_000.0)  # the battery filled overnight
    for flows, daily_cost in ((planned, 6 * 0.1 + 10 * 0.1 + 8 * 1.0), (plain, 6 * 0.1 + 18 * 1.0)):
        part = sc.slice(24, 48)
        sliced = type(flows)(flows.charge_w[day2], flows.discharge_w[day2], flows.grid_w[day2])
        (cost,) = outcomes(part, lossless, [v], sliced, part.pv_w[:, None], WARSAW)
        assert cost.cost == pytest.approx(daily_cost, abs=1e-6)
    # energy balance of every executed interval
    assert np.allclose(
        planned.grid_w[:, 0], sc.load_w - sc.pv_w + planned.charge_w[:, 0] - planned.discharge_w[:, 0]
    )


def test_a_planner_sweep_includes_a_no_battery_variant_and_beats_self_use_on_a_price_spread() -> None:
    sc = spread_scenario(5)
    result = sweep(sc, BASE, Variant(0.0), [Variant(10.0)], strategy="planner", tz=WARSAW)
    plain = sweep(sc, BASE, Variant(0.0), [Variant(10.0)], tz=WARSAW)
    assert result.reference.outcome.cost == pytest.approx(plain.reference.outcome.cost)
    assert result.rows[0].outcome.cost < plain.rows[0].outcome.cost
    assert result.rows[0].annual_saving > plain.rows[0].annual_saving > 0


def test_a_planner_sweep_in_several_processes_equals_one_in_one() -> None:
    sc = spread_scenario(4)
    variants = [Variant(0.0), Variant(5.0), Variant(10.0)]
    told: list[int] = []
    alone = sweep(sc, BASE, Variant(7.0), variants, strategy="planner", tz=WARSAW, workers=1)
    shared = sweep(
        sc, BASE, Variant(7.0), variants, strategy="planner", tz=WARSAW, workers=2, progress=told.append
    )
    assert shared.to_dict() == alone.to_dict()
    assert told == [1, 2, 3]
