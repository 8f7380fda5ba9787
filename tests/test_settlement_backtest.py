"""The backtest settles through the settlement engine, and plans against a scheme's per-slot parts
and export rules."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from controller.config.models import HemsdConfig
from controller.control.executor import Intent
from controller.control.intents import holding_peak
from controller.physics import Action, BatteryParams
from controller.planner.inputs import PricedSlot, make_plan
from controller.planner.peak import held_request_w
from controller.reports.html import backtest_report
from controller.settlement.config import SettlementConfig
from controller.settlement.engine import Metered, settle
from controller.settlement.schemes import PER_SLOT, ExportRules, scheme_preset
from controller.sim import backtest, whatif
from controller.sim.scenario import Scenario
from controller.sim.settings import PERFECT, PeakSettings
from controller.sim.tariffs import parse_tariff
from controller.sim.totals import Trace
from controller.sim.variants import Variant
from drivers.inverter.types import Snapshot

BERLIN = ZoneInfo("Europe/Berlin")
PARAMS = BatteryParams(capacity_kwh=10.0, min_soc_pct=10.0, max_soc_pct=100.0)


def house(
    import_price: np.ndarray, export_price: np.ndarray, pv_w: np.ndarray, load_w: np.ndarray
) -> Scenario:
    return Scenario(
        name="house",
        currency="EUR",
        start=datetime(2025, 1, 6, tzinfo=BERLIN).astimezone(UTC),
        step=timedelta(hours=1),
        filled_intervals=0,
        import_price=import_price,
        export_price=export_price,
        pv_w=pv_w,
        load_w=load_w,
    )


def evening_house(days: int = 3) -> Scenario:
    """Flat prices, no PV, 2 kW from 17:00 to 19:00 local (winter: UTC+1)."""
    n = days * 24
    local_hour = (np.arange(n) + 1) % 24
    load = 300.0 + 2000.0 * ((local_hour >= 17) & (local_hour < 19))
    return house(np.full(n, 0.30), np.full(n, 0.05), np.zeros(n), load)


def test_per_slot_settles_as_today() -> None:
    s = evening_house()
    plain = backtest.run_backtest(s, PARAMS, 50.0)
    explicit = backtest.run_backtest(s, PARAMS, 50.0, scheme=PER_SLOT)
    for name, totals in plain.strategies.items():
        assert explicit.strategies[name].cost == totals.cost
        assert totals.bill is None
        trace = totals.trace
        assert trace is not None
        assert totals.cost == pytest.approx(float(trace.cost.sum()), abs=1e-9)
    assert "bill" not in plain.to_dict()["strategies"]["hemsd"]  # type: ignore[index]


def test_the_plan_follows_time_variable_grid_fees_and_the_bill_shows_them() -> None:
    s = evening_house()
    scheme = scheme_preset("de_14a_module3")
    tz = BERLIN
    aware = backtest.run_backtest(s, PARAMS, 10.0, settings=replace(PERFECT, timezone=tz), scheme=scheme)
    blind = backtest.run_backtest(s, PARAMS, 10.0, settings=replace(PERFECT, timezone=tz))
    own = aware.strategies["hemsd"]
    assert own.bill is not None
    # the reported cost is the bill of what was metered (no wear configured)
    trace = own.trace
    assert trace is not None
    assert trace.import_kwh is not None
    assert trace.export_kwh is not None
    metered = Metered(s.epoch_s(), 3600, trace.import_kwh, trace.export_kwh, s.import_price, s.export_price)
    assert own.cost == pytest.approx(settle(metered, scheme, tz).total)
    # flat prices give the blind plan nothing to move; the fees make charging at 01:00-04:30
    # (0.2452 EUR/kWh) and discharging at 17:00-19:00 (0.3481) pay despite the losses
    local_hour = (np.arange(len(s)) + 1) % 24
    low = (local_hour >= 1) & (local_hour < 4)
    assert float(trace.import_kwh[low].sum()) > 10.0
    blind_trace = blind.strategies["hemsd"].trace
    assert blind_trace is not None
    assert blind_trace.import_kwh is not None
    blind_metered = replace(metered, import_kwh=blind_trace.import_kwh, export_kwh=blind_trace.export_kwh)
    assert own.cost < settle(blind_metered, scheme, tz).total - 0.5
    month = own.bill.months[0]
    assert month.fees < 0  # more bought at the low level than at the high one
    assert aware.to_dict()["strategies"]["hemsd"]["bill"]["scheme"] == "de_14a_module3"  # type: ignore[index]


def test_export_rules_keep_the_battery_from_exporting() -> None:
    n = 72
    hour = np.arange(n) % 24
    pv = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * 4000.0
    load = np.full(n, 300.0)
    export = np.where((hour >= 18) & (hour < 21), 0.60, 0.02)
    s = house(np.full(n, 0.30), export, pv, load)
    free = backtest.run_backtest(s, PARAMS, 50.0).strategies["hemsd"]
    never = SettlementConfig.model_validate({"rules": {"battery_to_grid": "never"}}).build()
    kept = backtest.run_backtest(s, PARAMS, 50.0, scheme=never).strategies["hemsd"]

    def battery_exported_kwh(trace: Trace) -> float:
        out = np.minimum(np.maximum(trace.battery_w, 0.0), np.maximum(-trace.grid_w, 0.0))
        return float(out.sum()) / 1000.0

    assert free.trace is not None
    assert kept.trace is not None
    assert battery_exported_kwh(free.trace) > 5.0  # the evening export price pays
    assert battery_exported_kwh(kept.trace) < 1e-6
    zero = SettlementConfig.model_validate({"rules": {"preset": "zero_export"}}).build()
    capped = backtest.run_backtest(s, PARAMS, 50.0, scheme=zero).strategies["hemsd"]
    assert capped.export_kwh < 1e-6


def test_what_if_prices_a_tariff_under_its_scheme() -> None:
    s = evening_house()
    plain, fees = parse_tariff("recorded"), parse_tariff("recorded@de_14a_module3")
    variants = [Variant(0.0, tariff=plain), Variant(0.0, tariff=fees)]
    result = whatif.sweep(s, PARAMS, Variant(0.0), variants, tz=BERLIN)
    flat, module3 = (row.outcome for row in result.rows)
    grid_kwh = s.load_w / 1000.0
    metered = Metered(s.epoch_s(), 3600, grid_kwh, np.zeros(len(s)), s.import_price, s.export_price)
    assert flat.cost == pytest.approx(float((grid_kwh * 0.30).sum()))
    assert module3.cost == pytest.approx(settle(metered, scheme_preset("de_14a_module3"), BERLIN).total)
    assert module3.cost > flat.cost  # the evening load falls in the high level
    planned = whatif.sweep(
        s,
        PARAMS,
        Variant(0.0),
        [Variant(10.0, tariff=fees)],
        tz=BERLIN,
        strategy="planner",
        workers=1,
    )
    assert planned.rows[0].outcome.cost < module3.cost - 0.5  # the battery shifts the evening to the night
    with pytest.raises(ValueError, match="unknown settlement scheme 'nl'"):
        parse_tariff("0.3@nl")


def test_the_daemons_plan_follows_the_settlement_rules_and_fees() -> None:
    now = datetime(2025, 1, 6, 12, tzinfo=UTC)
    hours = range(36)
    starts = [now + timedelta(hours=h) for h in hours]
    local = [t.astimezone(BERLIN).hour for t in starts]
    slots = [
        PricedSlot(t, t + timedelta(hours=1), 0.30, 0.60 if 17 <= h < 19 else 0.02)
        for t, h in zip(starts, local, strict=True)
    ]
    pv, load = [0.0] * len(slots), [300.0] * len(slots)
    free = HemsdConfig.model_validate({"inverter": {"type": "emulator"}})
    plan = make_plan(free, 90.0, slots, pv, load, now)
    assert any(s.battery_w > 1000 and s.grid_w < -500 for s in plan.slots)  # sells the battery at 0.60
    ruled = free.model_copy(
        update={"settlement": SettlementConfig.model_validate({"rules": {"preset": "DE"}})}
    )
    kept = make_plan(ruled, 90.0, slots, pv, load, now)
    assert all(s.grid_w >= -1.0 for s in kept.slots)  # pv_only with grid charging: nothing exported
    fees = free.model_copy(
        update={"settlement": SettlementConfig.model_validate({"scheme": "de_14a_module3"})}
    )
    night = make_plan(fees, 20.0, slots, pv, [300.0 + 2000.0 * (17 <= h < 19) for h in local], now)
    low = [s for s, h in zip(night.slots, local, strict=True) if 1 <= h < 4]
    assert low[0].import_price == pytest.approx(0.30 - 0.0548)
    assert sum(s.grid_charge_w for s in low) > 1000.0  # charges in the low fee window


@pytest.mark.parametrize("planner", ["deterministic", "recourse"])
def test_a_capacity_charge_is_planned_against_and_the_blind_plan_shown(planner: str) -> None:
    # 3 days, a 4 kW evening peak the 10 kWh / 5 kW battery can shave; evening energy dearer so a
    # plan that ignores the charge would still discharge, but not necessarily at the peak.
    n = 72
    local_hour = (np.arange(n) + 1) % 24
    load = (
        300.0
        + 3700.0 * ((local_hour >= 18) & (local_hour < 20))
        + 1500.0 * ((local_hour >= 7) & (local_hour < 8))
    )
    price = np.where((local_hour >= 7) & (local_hour < 9), 0.45, 0.30)
    s = house(price, np.full(n, 0.05), np.zeros(n), load)
    scheme = SettlementConfig.model_validate({"capacity": {"price_per_kw_month": 10.0}}).build()
    settings = replace(PERFECT, timezone=BERLIN, planner=planner)
    result = backtest.run_backtest(s, PARAMS, 10.0, settings=settings, scheme=scheme)
    own, blind = result.strategies["hemsd"], result.strategies[backtest.PEAK_BLIND]
    assert own.bill is not None
    assert blind.bill is not None
    held, ignored = own.bill.months[0].peak_kw, blind.bill.months[0].peak_kw
    assert ignored > 3.5  # the blind plan discharges into the dear morning, not the evening peak
    assert held < ignored - 1.0
    assert own.cost < blind.cost
    assert backtest.PEAK_BLIND not in backtest.run_backtest(s, PARAMS, 10.0, settings=settings).strategies
    page = backtest_report(s, PARAMS, 10.0, settings, result, BERLIN)
    data = json.loads(
        page.split('<script type="application/json" id="report-data">')[1].split("</script>")[0]
    )
    (month,) = data["months"]
    assert month["costs"]["hemsd"] == pytest.approx(own.cost, abs=0.01)  # the bill, the capacity included
    assert month["costs"][backtest.PEAK_BLIND] == pytest.approx(blind.cost, abs=0.01)


def test_the_backtest_holds_the_months_peak_where_the_plan_needs_no_cap() -> None:
    # import is cheap at 03:00 and the battery fills then, at 5 kW on a forecast 0.5 kW house:
    # 5.5 kW, under the 6 kW already paid for, so the plan needs no cap; on the third night the
    # house draws 3 kW the forecast (its own history) did not see, and the charge is cut to hold 6 kW
    n = 72
    local_hour = (np.arange(n) + 1) % 24
    load = np.full(n, 500.0)
    load[48 + 2] = 3000.0  # the third day's 03:00 local
    s = house(np.where(local_hour == 3, 0.10, 0.30), np.full(n, 0.0), np.zeros(n), load)
    settings = replace(PERFECT, timezone=BERLIN, forecast="realistic", peak=PeakSettings(10.0, 6.0))
    own = backtest.hemsd(s, PARAMS, 10.0, settings=settings)
    assert own.trace is not None
    assert own.trace.actions[26] == "charge"  # the second night, as forecast: 5.5 kW
    assert own.trace.grid_w[26] == pytest.approx(5500.0, abs=1.0)
    assert own.trace.actions[50] == "charge"
    assert own.trace.grid_w[50] == pytest.approx(6000.0, abs=1.0)  # not 8 kW


def test_the_daemons_plan_holds_the_months_peak() -> None:
    now = datetime(2025, 1, 6, 12, tzinfo=UTC)
    starts = [now + timedelta(minutes=15 * q) for q in range(96)]
    local = [t.astimezone(BERLIN).hour for t in starts]
    slots = [PricedSlot(t, t + timedelta(minutes=15), 0.30, 0.05) for t in starts]
    pv = [0.0] * len(slots)
    load = [300.0 + 5000.0 * (18 <= h < 19) for h in local]  # an hour at 5.3 kW this evening
    free = HemsdConfig.model_validate({"inverter": {"type": "emulator"}})
    blind = make_plan(free, 12.0, slots, pv, load, now)  # nearly empty: flat prices give no reason to charge
    assert max(s.grid_w for s in blind.slots) > 5000.0
    capacity = SettlementConfig.model_validate({"capacity": {"price_per_kw_month": 5.0, "minimum_kw": 2.5}})
    ruled = free.model_copy(update={"settlement": capacity})
    held = make_plan(ruled, 12.0, slots, pv, load, now, month_peak_kw=3.0)
    assert any(s.grid_charge_w > 0 for s in held.slots)  # it charges ahead to shave the evening
    assert max(s.grid_w for s in held.slots) <= 3000.0 + 1.0  # and the month's 3 kW is not raised


def test_the_executor_holds_the_plans_peak_on_the_house_as_measured() -> None:
    now = datetime(2025, 1, 6, 17, tzinfo=UTC)
    slots = [
        PricedSlot(now + timedelta(minutes=15 * q), now + timedelta(minutes=15 * (q + 1)), 0.3, 0.05)
        for q in range(8)
    ]
    capacity = SettlementConfig.model_validate({"capacity": {"price_per_kw_month": 5.0, "minimum_kw": 2.5}})
    config = HemsdConfig.model_validate({"inverter": {"type": "emulator"}}).model_copy(
        update={"settlement": capacity}
    )
    plan = make_plan(config, 60.0, slots, [0.0] * 8, [500.0] * 8, now, month_peak_kw=3.0)
    assert plan.import_cap_w == pytest.approx(3000.0)

    def reading(load_w: float) -> Snapshot:
        return Snapshot(time=now, pv_w=0.0, load_w=load_w, grid_w=load_w, battery_w=0.0, soc_pct=60.0)

    hold, charge = Intent(Action.HOLD), Intent(Action.CHARGE, 2000.0, 90.0)
    slot = plan.slots[0]
    assert slot.grid_w < 3000.0
    assert (
        holding_peak(hold, plan, slot, reading(5000.0), 100.0, PARAMS).action == Action.SELF_USE
    )  # covers the house
    assert holding_peak(hold, plan, slot, reading(2000.0), 100.0, PARAMS) == hold  # under the cap: as planned
    idle = Intent(Action.IDLE)  # the battery standby a rule asks for beside a PV surplus: the same
    assert holding_peak(idle, plan, slot, reading(5000.0), 100.0, PARAMS).action == Action.SELF_USE
    assert holding_peak(idle, plan, slot, reading(2000.0), 100.0, PARAMS) == idle
    cut = holding_peak(charge, plan, slot, reading(2000.0), 100.0, PARAMS)
    assert (cut.action, cut.power_w) == (Action.CHARGE, pytest.approx(1000.0))  # what the cap leaves
    discharge = Intent(Action.DISCHARGE, 1000.0, 20.0)
    assert holding_peak(discharge, plan, slot, reading(5000.0), 100.0, PARAMS).action == Action.SELF_USE
    above = replace(slot, grid_w=4500.0)  # where the plan itself imports above the cap, it holds that
    assert holding_peak(hold, plan, above, reading(4000.0), 100.0, PARAMS) == hold
    assert holding_peak(hold, replace(plan, import_cap_w=None), slot, reading(5000.0), 100.0, PARAMS) == hold
    assert held_request_w(0.0, 5000.0, math.inf) == 0.0


def test_a_planner_sweep_keeps_the_schemes_rules_in_one_process_as_in_several() -> None:
    n = 3 * 24
    local_hour = (np.arange(n) + 1) % 24
    dear_export = np.where((local_hour >= 17) & (local_hour < 19), 0.60, 0.02)
    s = house(np.full(n, 0.30), dear_export, np.zeros(n), np.full(n, 300.0))
    never = replace(PER_SLOT, rules=ExportRules(battery_to_grid="never"))
    variants = [Variant(10.0)]
    free = whatif.sweep(s, PARAMS, Variant(0.0), variants, tz=BERLIN, strategy="planner", workers=1)
    runs = [
        whatif.sweep(
            s, PARAMS, Variant(0.0), variants, tz=BERLIN, strategy="planner", scheme=never, workers=w
        )
        for w in (1, 2)
    ]
    assert runs[0].to_dict() == runs[1].to_dict()
    # the battery may not sell at 0.60 in the evenings, so it saves less than it would
    assert runs[0].rows[0].outcome.cost > free.rows[0].outcome.cost + 1.0


def test_the_recourse_backtest_covers_only_the_draw_above_the_held_peak() -> None:
    # on the third evening the house draws 3.5 kW from 18:00 to 20:00 where its history said
    # 0.5 kW; the battery can deliver about 2 kWh then, less than an hour of the house: covering
    # the whole house it runs empty within the first hour and the second imports 3.5 kW;
    # covering only the 1 kW above the 2.5 kW minimum it lasts both hours and the peak stays at
    # 2.5 kW, for the same energy
    n = 72
    local_hour = (np.arange(n) + 1) % 24
    load = np.full(n, 500.0)
    load[48 + 17 : 48 + 19] = 3500.0
    price = np.where((local_hour >= 17) & (local_hour < 22), 0.40, 0.30)
    s = house(price, np.full(n, 0.0), np.zeros(n), load)
    settings = replace(
        PERFECT, timezone=BERLIN, forecast="realistic", planner="recourse", peak=PeakSettings(10.0, 2.5)
    )
    own = backtest.hemsd(s, PARAMS, 60.0, settings=settings)
    assert own.trace is not None
    assert own.trace.battery_w[65:67].tolist() == pytest.approx([1000.0, 1000.0], abs=1.0)
    assert max(own.trace.grid_w) == pytest.approx(2500.0)
    assert own.cost == pytest.approx(12.18, abs=0.005)  # as when the whole house was covered


def test_a_recourse_plans_self_use_discharges_only_the_draw_above_the_held_peak_when_low() -> None:
    now = datetime(2025, 1, 6, 17, tzinfo=UTC)
    slots = [
        PricedSlot(now + timedelta(minutes=15 * q), now + timedelta(minutes=15 * (q + 1)), 0.3, 0.05)
        for q in range(8)
    ]
    capacity = SettlementConfig.model_validate({"capacity": {"price_per_kw_month": 5.0, "minimum_kw": 2.5}})
    config = HemsdConfig.model_validate({"inverter": {"type": "emulator"}}).model_copy(
        update={"settlement": capacity}
    )
    plan = make_plan(config, 60.0, slots, [0.0] * 8, [500.0] * 8, now, month_peak_kw=3.0)
    assert plan.values is not None  # the daemon's recourse planner
    slot = plan.slots[0]

    params = config.battery.params()  # 10 kWh, 10 % to 100 %

    def held(intent: Intent, load_w: float, soc_pct: float = 30.0) -> Intent:
        reading = Snapshot(time=now, pv_w=0.0, load_w=load_w, grid_w=load_w, battery_w=0.0, soc_pct=soc_pct)
        return holding_peak(intent, plan, slot, reading, 100.0, params)

    self_use = Intent(Action.SELF_USE)
    # 1.9 kWh left to deliver would not last an hour of the 4.2 kW house: only the 1.2 kW above the cap
    shaved = held(self_use, 4200.0)
    assert (shaved.action, shaved.power_w) == (Action.DISCHARGE, pytest.approx(1200.0))
    assert held(self_use, 4200.0, soc_pct=60.0) == self_use  # 4.75 kWh last the hour: the whole house
    assert held(self_use, 2800.0) == self_use  # under the cap
    # a plan without values (the deterministic planner's) is followed as planned, and so is a fallback
    unvalued = replace(plan, values=None)
    reading = Snapshot(time=now, pv_w=0.0, load_w=4200.0, grid_w=4200.0, battery_w=0.0, soc_pct=30.0)
    assert holding_peak(self_use, unvalued, slot, reading, 100.0, params) == self_use
    assert held(Intent.fallback("x"), 4200.0).action == Action.SELF_USE
