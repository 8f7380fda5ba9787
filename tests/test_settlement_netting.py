"""Planning under netting within a settlement period longer than the slots (hourly netting with
15-minute slots, controller.planner.periods): the planners plan per period, and reach the LP
optimum of the same settlement (tests/support/lp_reference.py) with perfect forecasts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from support.lp_reference import settled_optimum

from controller.config.loading import load_config_text
from controller.config.models import HemsdConfig
from controller.loads.inputs import make_load_plan
from controller.physics import BatteryParams
from controller.planner.inputs import PricedSlot, make_plan
from controller.planner.periods import merged, netting_period_s, periods_of
from controller.planner.plan import Horizon
from controller.settlement.config import SettlementConfig
from controller.settlement.schemes import Netting, Scheme
from controller.sim import backtest
from controller.sim.day_ahead import planner_flows
from controller.sim.scenario import Scenario
from controller.sim.settings import PERFECT
from controller.sim.totals import settled
from controller.sim.variants import Variant
from controller.sim.whatif import outcomes, sweep

WARSAW = ZoneInfo("Europe/Warsaw")
PARAMS = BatteryParams(capacity_kwh=10.0, min_soc_pct=10.0, max_soc_pct=100.0)
HOURLY = Scheme(name="hourly_netting", netting=Netting("hour", net=True))


def quarters(days: int = 3) -> Scenario:
    """15-min slots, prices flat within each hour (cheap nights, a dear evening); PV that comes
    and goes quarter by quarter around noon, so that hours both import and export."""
    n = days * 96
    q = np.arange(n)
    hour = (q // 4) % 24
    sun = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None)
    pv = sun * np.where(q % 2 == 0, 5000.0, 300.0)
    load = 600.0 + 1500.0 * ((hour >= 17) & (hour < 21))
    imp = np.where(hour < 6, 0.15, np.where((hour >= 17) & (hour < 21), 0.45, 0.30))
    exp = np.full(n, 0.05)
    return Scenario(
        name="quarters",
        currency="EUR",
        start=datetime(2025, 5, 5, tzinfo=WARSAW).astimezone(UTC),
        step=timedelta(minutes=15),
        filled_intervals=0,
        import_price=imp,
        export_price=exp,
        pv_w=pv,
        load_w=load,
    )


def test_slots_merge_into_their_periods_and_the_metered_net_counts_in_the_first() -> None:
    start = int(datetime(2025, 5, 5, 10, 30, tzinfo=UTC).timestamp())
    periods = periods_of(start + 900 * np.arange(6), 3600)
    assert periods.runs.tolist() == [0, 0, 1, 1, 1, 1]
    assert periods.first.tolist() == [0, 2]
    h = Horizon(
        np.full(6, 0.25),
        np.array([4000.0, 0.0, 1000.0, 1000.0, 1000.0, 1000.0]),
        np.full(6, 500.0),
        np.array([0.3, 0.5, 0.2, 0.2, 0.2, 0.2]),
        np.full(6, 0.05),
    )
    m = merged(h, periods, elapsed_net_kwh=-0.25)
    assert m.dt_h.tolist() == [0.5, 1.0]
    assert m.pv_w.tolist() == [2000.0, 1000.0]
    assert m.load_w.tolist() == [500.0 - 500.0, 500.0]  # 0.25 kWh exported earlier, over 0.5 h
    assert m.import_price.tolist() == pytest.approx([0.4, 0.2])
    assert netting_period_s(HOURLY, 900.0) == 3600
    assert netting_period_s(HOURLY, 3600.0) is None  # hourly slots: per slot is per period
    assert netting_period_s(replace(HOURLY, netting=Netting("hour", net=False)), 900.0) is None
    assert netting_period_s(replace(HOURLY, netting=Netting("day", net=True)), 900.0) is None


def test_the_lp_optimum_under_netting_is_the_bill_of_its_own_flows() -> None:
    s = quarters(2)
    bill, lp = settled_optimum(PARAMS, s, HOURLY, WARSAW)
    assert bill == pytest.approx(lp.energy_cost, abs=0.005)  # prices flat within each hour
    per_slot, _ = settled_optimum(PARAMS, s, Scheme(), WARSAW)
    assert bill < per_slot - 0.05  # netting is worth money here


@pytest.mark.parametrize("planner", ["deterministic", "recourse"])
def test_with_perfect_forecasts_the_plan_reaches_the_netted_optimum(planner: str) -> None:
    s = quarters(3)
    settings = replace(PERFECT, planner=planner, timezone=WARSAW)
    result = backtest.run_backtest(s, PARAMS, 50.0, settings=settings, workers=1, scheme=HOURLY).strategies
    optimum, _ = settled_optimum(PARAMS, s, HOURLY, WARSAW)
    base = result["no_battery"].cost
    share = (base - result["hemsd"].cost) / (base - optimum)
    assert share >= 0.99
    # planned per slot, the same flows settled under netting pay more: the battery stores the
    # sunny quarters and covers the cloudy ones, losing what netting would give for free
    blind = backtest.hemsd(s, PARAMS, 50.0, settings=settings)
    blind_cost = settled(blind, s, HOURLY, WARSAW).cost
    assert result["hemsd"].cost < blind_cost - 0.05


def test_the_daemon_plans_per_settlement_period_from_the_net_metered_so_far() -> None:
    now = datetime(2025, 5, 5, 10, 30, tzinfo=UTC)
    starts = [now + timedelta(minutes=15 * k) for k in range(16)]
    slots = [PricedSlot(t, t + timedelta(minutes=15), 0.30, 0.05) for t in starts]
    pv = [5000.0 if k % 2 == 0 else 300.0 for k in range(16)]
    load = [600.0] * 16
    config = HemsdConfig.model_validate(
        {
            "inverter": {"type": "emulator"},
            "settlement": SettlementConfig.model_validate({"period": "hour", "net": True}),
        }
    )
    plan = make_plan(config, 50.0, slots, pv, load, now)
    assert [s.start for s in plan.slots][:3] == [
        now,
        now + timedelta(minutes=30),
        now + timedelta(minutes=90),
    ]
    assert plan.slots[0].end == now + timedelta(minutes=30)
    assert plan.slots[1].end - plan.slots[1].start == timedelta(hours=1)
    exported = make_plan(config, 50.0, slots, pv, load, now, period_net_kwh=-2.0)
    assert exported.slots[0].load_w == pytest.approx(plan.slots[0].load_w - 4000.0)  # 2 kWh in 0.5 h


def test_the_what_if_plans_per_settlement_period_and_costs_what_the_backtest_does() -> None:
    s = quarters(3)
    settings = replace(PERFECT, timezone=WARSAW)
    result = backtest.run_backtest(s, PARAMS, 50.0, settings=settings, workers=1, scheme=HOURLY).strategies
    what_if = sweep(s, PARAMS, Variant(0.0), [Variant(10.0)], strategy="planner", tz=WARSAW, scheme=HOURLY)
    # both plan with the recorded house known; the what-if re-plans once a day, the backtest
    # every interval, which changes nothing here
    assert what_if.rows[0].outcome.cost == pytest.approx(result["hemsd"].cost, abs=0.005)
    assert what_if.reference.outcome.cost == pytest.approx(result["no_battery"].cost, abs=1e-9)
    # the same day-ahead plan made per slot, settled under netting, pays more
    per_slot = planner_flows(s, PARAMS, 50.0, WARSAW)
    (blind,) = outcomes(s, PARAMS, [Variant(10.0)], per_slot, s.pv_w[:, None], WARSAW, HOURLY)
    assert what_if.rows[0].outcome.cost < blind.cost - 0.05


def test_the_loads_joint_plan_plans_the_battery_per_settlement_period() -> None:
    dishwasher = (
        '[[loads]]\nname = "dishwasher"\ntype = "appliance"\npower_w = 2000\nduration_min = 90\n'
        'earliest_start = "11:00"\nlatest_end = "18:00"\ndefault_start = "17:00"\n'
    )
    config = load_config_text(
        '[mqtt]\nhost = "localhost"\n[site]\ntimezone = "Europe/Warsaw"\n'
        '[settlement]\nperiod = "hour"\nnet = true\n' + dishwasher
    )
    s = quarters(2)
    now = s.start + timedelta(minutes=15 * 38)  # 09:30 local: the first hour has half left
    slots = [
        PricedSlot(now + timedelta(minutes=15 * k), now + timedelta(minutes=15 * (k + 1)), float(i), float(e))
        for k, (i, e) in enumerate(zip(s.import_price[38:134], s.export_price[38:134], strict=True))
    ]
    pv, load = s.pv_w[38:134].tolist(), s.load_w[38:134].tolist()
    joint = make_load_plan(config, 50.0, slots, pv, load, now, None, {}, period_net_kwh=-0.2)
    assert [p.start for p in joint.plan.slots] == [p.start for p in slots]  # the loads' slots
    (schedule,) = joint.loads
    total = (np.array(load) + np.array(schedule.power_w)).tolist()
    per_period = make_plan(config, 50.0, slots, pv, total, now, period_net_kwh=-0.2)
    assert len(per_period.slots) == 25  # half an hour, 23 hours, half an hour
    hours = [0, 0] + [1 + k // 4 for k in range(94)]
    assert [p.battery_w for p in joint.plan.slots] == [per_period.slots[h].battery_w for h in hours]
    assert [p.action for p in joint.plan.slots] == [per_period.slots[h].action for h in hours]
    assert joint.plan.objective == per_period.objective
    ends = [1, *range(5, 96, 4), 95]  # each period's last quarter
    assert [joint.plan.slots[k].target_soc_pct for k in ends] == pytest.approx(
        [p.target_soc_pct for p in per_period.slots]
    )
    assert joint.plan.values is not None
    assert per_period.values is not None
    assert joint.plan.values.after_slot.shape[0] == 96
    assert np.array_equal(joint.plan.values.after_slot[5], per_period.values.after_slot[1])
