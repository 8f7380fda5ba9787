"""Planning against a yearly feed-in cap (controller.planner.export_room): where the plan's export
would cross what is left of the cap this year, the export price the planner sees falls to what
export is worth beyond it, and the plan kept is the one of least cost as the bill counts it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from controller.config.models import HemsdConfig
from controller.planner.export_room import Made, billed_objective, made_plan, paid_share, within_room
from controller.planner.inputs import PricedSlot, make_plan
from controller.planner.plan import Plan
from controller.settlement.config import SettlementConfig
from controller.settlement.engine import Metered, settle
from controller.settlement.prices import ExportRoom, export_room, planning_prices
from controller.settlement.schemes import Scheme
from controller.sim import backtest
from controller.sim.day_ahead import planner_flows
from controller.sim.decisions import YearExport
from controller.sim.scenario import Scenario
from controller.sim.settings import PeakSettings, PlannerSettings
from controller.sim.totals import settled
from controller.sim.variants import Variant
from controller.sim.whatif import outcomes, sweep

BERLIN = ZoneInfo("Europe/Berlin")
CAP_KWH = 1000.0


def config(kind: str = "recourse", cap: float | None = CAP_KWH) -> HemsdConfig:
    export = {"basis": "fixed", "fixed_price": 0.40} | ({} if cap is None else {"yearly_cap_kwh": cap})
    return HemsdConfig.model_validate(
        {
            "inverter": {"type": "emulator"},
            "site": {"timezone": "Europe/Berlin"},
            "planner": {"kind": kind},
            "battery": {"capacity_kwh": 10.0, "min_soc_pct": 11.0},
            "settlement": SettlementConfig.model_validate({"export": export}),
        }
    )


def day(start: datetime) -> tuple[list[PricedSlot], list[float], list[float]]:
    """A day of quarter-hours from ``start``: import 0.30 (the export price is the scheme's), PV
    2 kW from 10:00 to 14:00 local over a 0.5 kW house (6 kWh of surplus)."""
    slots, pv = [], []
    for q in range(96):
        t = start + timedelta(minutes=15 * q)
        slots.append(PricedSlot(t, t + timedelta(minutes=15), 0.30, 0.0))
        pv.append(2000.0 if 10 <= t.astimezone(BERLIN).hour < 14 else 0.0)
    return slots, pv, [500.0] * 96


def exported(plan: Plan) -> float:
    return sum(max(-s.grid_w, 0.0) * (s.end - s.start).total_seconds() / 3.6e6 for s in plan.slots)


def test_the_room_is_what_is_left_of_the_cap_this_year() -> None:
    scheme = config().settlement.build()
    start = datetime(2025, 12, 31, 22, tzinfo=BERLIN).astimezone(UTC)
    start_s = int(start.timestamp()) + 900 * np.arange(12, dtype=np.int64)
    room = export_room(scheme, start_s, BERLIN, 990.0)
    assert room is not None
    assert room.kwh == 10.0
    assert room.within.tolist() == [True] * 8 + [False] * 4  # the new year begins at 00:00 local
    assert export_room(scheme, start_s, BERLIN, 1200.0).kwh == 0.0  # type: ignore[union-attr]
    assert export_room(config(cap=None).settlement.build(), start_s, BERLIN, 990.0) is None
    with pytest.raises(ValueError, match=r"year_exported_kwh must be finite and >= 0, got -1\.0"):
        export_room(scheme, start_s, BERLIN, -1.0)


def test_the_bill_pays_the_room_in_time_order() -> None:
    room = ExportRoom(2.5, np.array([True, True, True, True, False]))
    exported_kwh = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    # 1 + 1 paid, 0.5 of the third, nothing of the fourth; the last slot is next year's
    assert paid_share(exported_kwh, room).tolist() == [1.0, 1.0, 0.5, 0.0, 1.0]
    # the same as the settlement engine pays under the cap: 2.5 kWh at 0.40 this year
    start = datetime(2025, 12, 31, 20, tzinfo=BERLIN)  # the fifth hour is the new year's first
    scheme = config(cap=CAP_KWH).settlement.build()
    metered = Metered(
        int(start.timestamp()) + 3600 * np.arange(5, dtype=np.int64),
        3600,
        np.zeros(5),
        exported_kwh,
        np.full(5, 0.30),
        np.zeros(5),
    )
    bill = settle(metered, scheme, BERLIN, year_exported_before_kwh=CAP_KWH - 2.5)
    assert [m.export_value for m in bill.months] == pytest.approx([2.5 * 0.40, 1.0 * 0.40])


@pytest.mark.parametrize("kind", ["recourse", "deterministic"])
def test_with_room_to_spare_the_plan_is_as_without_a_cap(kind: str) -> None:
    start = datetime(2025, 6, 10, tzinfo=BERLIN).astimezone(UTC)
    slots, pv, load = day(start)
    free = make_plan(config(kind, cap=None), 20.0, slots, pv, load, start)
    spare = make_plan(config(kind), 20.0, slots, pv, load, start, year_exported_kwh=100.0)
    assert spare.slots == free.slots
    assert exported(free) > 5.0  # 0.40 for export beats storing for 0.30 tonight


@pytest.mark.parametrize("kind", ["recourse", "deterministic"])
def test_where_the_cap_binds_the_plan_exports_the_room_and_stores_the_rest(kind: str) -> None:
    start = datetime(2025, 6, 10, tzinfo=BERLIN).astimezone(UTC)
    slots, pv, load = day(start)
    free = make_plan(config(kind, cap=None), 20.0, slots, pv, load, start)
    assert exported(free) > 50.0  # at 0.40 against 0.30 the battery cycles grid energy out
    # 2 kWh left of the year's 1000: the plan exports about them at 0.40 and stores the PV
    capped = make_plan(config(kind), 20.0, slots, pv, load, start, year_exported_kwh=CAP_KWH - 2.0)
    assert exported(capped) == pytest.approx(2.0, abs=0.3)
    assert capped.charge_kwh == pytest.approx(6.0, abs=1.5)  # the day's 6 kWh of surplus
    seen = [s.export_price for s in capped.slots]  # 0.40 until the crossing, nothing after
    assert seen[0] == pytest.approx(0.40)
    assert seen[-1] == 0.0
    assert seen == sorted(seen, reverse=True)
    room = ExportRoom(2.0, np.ones(96, dtype=bool))
    price = np.full(96, 0.40)
    # as the bill counts it the free plan pays for 50 kWh it is not paid for
    assert (
        billed_objective(made_plan(free), room, price)
        > billed_objective(made_plan(capped), room, price) + 15.0
    )
    # nothing left: export is worth nothing this year, and nothing goes out
    full = make_plan(config(kind), 20.0, slots, pv, load, start, year_exported_kwh=CAP_KWH)
    assert {s.export_price for s in full.slots} == {0.0}
    assert exported(full) == pytest.approx(0.0, abs=1e-6)


def test_with_nothing_left_of_the_cap_one_plan_is_made_at_the_post_cap_value() -> None:
    seen: list[np.ndarray] = []

    def make(prices: np.ndarray) -> Made[int]:
        seen.append(prices)
        return Made(len(seen), prices, np.full(prices.size, 1.0), 0.0)

    room = ExportRoom(0.0, np.array([True, True, False]), after=0.05)
    assert within_room(make, np.array([0.4, 0.4, 0.4]), room) == 1
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [0.05, 0.05, 0.4])  # the next year's slot keeps its price


def test_the_what_if_plans_against_the_cap_as_the_daemon_does() -> None:
    days = 3
    start = datetime(2025, 6, 10, tzinfo=BERLIN).astimezone(UTC)
    _, pv, load = day(start)
    scenario = Scenario(
        name="capped",
        currency="EUR",
        start=start,
        step=timedelta(minutes=15),
        filled_intervals=0,
        import_price=np.full(96 * days, 0.30),
        export_price=np.full(96 * days, 0.40),
        pv_w=np.tile(pv, days),
        load_w=np.tile(load, days),
    )
    capped = config(cap=8.0).settlement.build()
    battery = config().battery.params()
    result = sweep(
        scenario, battery, Variant(0.0), [Variant(10.0)], strategy="planner", tz=BERLIN, scheme=capped
    )
    # the same replay planned as if every kWh exported were paid, billed under the cap
    blind = planner_flows(scenario, battery, 50.0, BERLIN)
    (ignoring,) = outcomes(scenario, battery, [Variant(10.0)], blind, scenario.pv_w[:, None], BERLIN, capped)
    planned = result.rows[0].outcome
    assert ignoring.export_kwh > 150.0  # about 57 kWh a day cycled out, 8 of it paid
    assert planned.export_kwh == pytest.approx(8.0, abs=0.5)  # the cap, and the PV stored
    assert planned.cost < result.reference.outcome.cost < ignoring.cost  # 2.21, 5.80 and 56.01


def hourly_days(days: int, start: datetime) -> Scenario:
    """``days`` of hours from ``start``: import 0.30, export 0.40 (the scheme's), PV 2 kW from
    10:00 to 14:00 local over a 0.5 kW house (6 kWh of surplus a day)."""
    hours = [start + timedelta(hours=k) for k in range(24 * days)]
    return Scenario(
        name="capped",
        currency="EUR",
        start=start,
        step=timedelta(hours=1),
        filled_intervals=0,
        import_price=np.full(len(hours), 0.30),
        export_price=np.full(len(hours), 0.40),
        pv_w=np.array([2000.0 if 10 <= t.astimezone(BERLIN).hour < 14 else 0.0 for t in hours]),
        load_w=np.full(len(hours), 500.0),
    )


@pytest.mark.parametrize("net", [False, True])
def test_the_backtests_year_export_is_what_the_bill_counts(net: bool) -> None:
    """Over New Year, metered as a replay meters it: before each interval, the year's export as
    the engine settles the replay so far (per slot, or netted per hour)."""
    start = datetime(2025, 12, 31, 20, tzinfo=BERLIN).astimezone(UTC)
    n = 40
    scenario = replace(
        hourly_days(1, start),
        step=timedelta(minutes=15),
        import_price=np.zeros(n),
        export_price=np.zeros(n),
        pv_w=np.zeros(n),
        load_w=np.zeros(n),
    )
    netting = {"period": "hour", "net": True} if net else {}
    scheme = SettlementConfig.model_validate(
        {"export": {"basis": "fixed", "fixed_price": 0.4, "yearly_cap_kwh": 5.0}} | netting
    ).build()
    rng = np.random.default_rng(3)
    grid = rng.uniform(-1.0, 1.0, n)  # kWh a quarter, + import
    year = YearExport(scenario, BERLIN, scheme)
    epoch = scenario.epoch_s()
    for i in range(n):
        if i:
            this_year = datetime.fromtimestamp(int(epoch[i]), BERLIN).year
            inside = np.array([datetime.fromtimestamp(int(t), BERLIN).year == this_year for t in epoch[:i]])
            kwh = grid[:i][inside]
            settled_kwh = 0.0
            if kwh.size:
                metered = Metered(
                    epoch[:i][inside],
                    900,
                    np.maximum(kwh, 0.0),
                    np.maximum(-kwh, 0.0),
                    np.zeros(kwh.size),
                    np.zeros(kwh.size),
                )
                settled_kwh = settle(metered, Scheme(netting=scheme.netting), BERLIN).component("export_kwh")
            assert year.before(i) == pytest.approx(settled_kwh, abs=1e-9), i
        year.add(i, max(grid[i], 0.0), max(-grid[i], 0.0))
    assert year.before(n - 1) > 0.0  # the new year has exported


@pytest.mark.parametrize(
    ("planner", "capped_cost", "blind_cost"),
    [("deterministic", 2.38, 54.06), ("recourse", 2.49, 54.07)],
)
def test_the_backtest_plans_against_the_cap_and_pays_less_than_planning_blind(
    planner: str, capped_cost: float, blind_cost: float
) -> None:
    """Three June days of 6 kWh PV surplus, export paid 0.40 against 0.30 import for the first
    8 kWh of the year: planned blind (as if every kWh exported were paid) the battery cycles
    grid energy out every night and the bill pays for 8 of the kWh; planned against the cap the
    replay exports about the 8 kWh and stores the rest of the PV for the house.

    Without a battery: 3 x 10 kWh imported at 0.30 (9.00) less the 8 of the 18 kWh exported
    that are paid (3.20), 5.80. Planned against the cap 2.38 (the deterministic planner) and
    2.49 (the recourse planner, perfect forecasts); planned blind about 55 kWh a day go out
    and 54.06 and 54.07 are paid."""
    scenario = hourly_days(3, datetime(2025, 6, 10, tzinfo=BERLIN).astimezone(UTC))
    capped = config(cap=8.0).settlement.build()
    battery = config().battery.params()
    settings = PlannerSettings(timezone=BERLIN, planner=planner)
    result = backtest.run_backtest(scenario, battery, 50.0, settings=settings, scheme=capped, workers=1)
    ip, ep = planning_prices(
        capped, scenario.epoch_s(), 3600, scenario.import_price, scenario.export_price, BERLIN
    )
    blind = backtest.hemsd(
        replace(scenario, import_price=ip, export_price=ep), battery, 50.0, settings=settings
    )
    ignoring = settled(blind, scenario, capped, BERLIN)
    own, none = result.strategies["hemsd"], result.strategies["no_battery"]
    assert own.export_kwh == pytest.approx(8.0, abs=0.6)
    assert ignoring.export_kwh > 100.0
    assert own.cost == pytest.approx(capped_cost, abs=0.005)
    assert ignoring.cost == pytest.approx(blind_cost, abs=0.005)
    assert own.cost < none.cost < ignoring.cost


def both_config(kind: str, cap: float | None = CAP_KWH, capacity: bool = True) -> HemsdConfig:
    """``config`` with a capacity charge of 5.00 a kW a month on the 15-minute peak, at least 2.5 kW."""
    base = config(kind, cap)
    table = base.settlement.model_dump(exclude_none=True)
    if capacity:
        table |= {"capacity": {"price_per_kw_month": 5.0, "minimum_kw": 2.5}}
    return base.model_copy(update={"settlement": SettlementConfig.model_validate(table)})


def winter_day(start: datetime) -> tuple[list[PricedSlot], list[float], list[float]]:
    """``day`` with the house drawing 4 kW from 18:00 to 20:00 local."""
    slots, pv, load = day(start)
    evening = [18 <= s.start.astimezone(BERLIN).hour < 20 for s in slots]
    return slots, pv, [w + 3500.0 * e for w, e in zip(load, evening, strict=True)]


@pytest.mark.parametrize("kind", ["recourse", "deterministic"])
def test_the_daemon_plans_against_the_peak_and_the_cap_together(kind: str) -> None:
    """2 kWh left of the cap and the month's peak at the 2.5 kW minimum: planned against the peak
    alone the battery charges under the peak and cycles its energy out at 0.40 (the bill pays 2
    of those kWh); against the cap alone it lets the 4 kW evening (or a charge at full power)
    raise the peak; against both it exports about the room, stores the PV and covers the
    evening under 2.5 kW."""
    start = datetime(2025, 1, 13, tzinfo=BERLIN).astimezone(UTC)
    slots, pv, load = winter_day(start)
    left = CAP_KWH - 2.0

    def planned(settlement: HemsdConfig) -> Plan:
        return make_plan(settlement, 20.0, slots, pv, load, start, year_exported_kwh=left)

    peak_only = planned(both_config(kind, cap=None))
    cap_only = planned(both_config(kind, capacity=False))
    both = planned(both_config(kind))
    assert exported(peak_only) > 30.0
    assert max(s.grid_w for s in peak_only.slots) <= 2500.0 + 1.0
    assert exported(cap_only) < 2.3
    assert max(s.grid_w for s in cap_only.slots) >= 4000.0
    assert exported(both) == pytest.approx(2.0, abs=0.3)
    assert both.import_cap_w == pytest.approx(2500.0)
    assert max(s.grid_w for s in both.slots) <= 2500.0 + 1.0
    assert both.charge_kwh > 5.0  # the day's PV surplus, and some of the grid's under the peak
    evening = [s for s in both.slots if 18 <= s.start.astimezone(BERLIN).hour < 20]
    assert all(s.battery_w > 1400.0 for s in evening)  # the 4 kW house held to 2.5 kW


@pytest.mark.parametrize(
    ("planner", "both_cost", "peak_only_cost", "cap_only_cost"),
    [("deterministic", 10.05, 37.32, 11.40), ("recourse", 9.71, 37.34, 11.40)],
)
def test_the_backtest_plans_against_the_peak_and_the_cap_together(
    planner: str, both_cost: float, peak_only_cost: float, cap_only_cost: float
) -> None:
    """Three January days of ``hourly_days`` with the house at 4 kW from 18:00 to 20:00, export
    paid 0.40 for the first 8 kWh of the year and a capacity charge of 5.00 a kW a month (at least
    2.5 kW): both planners plan against the two together, as the daemon does.

    Without a battery: 3 x 17 kWh imported at 0.30 (15.30), less the 8 of the 18 kWh exported that
    are paid (3.20), plus the 4 kW peak at 5.00 for 3 of January's 31 days (1.94): 14.04. Planned
    against both the replay exports the 8 kWh, holds the 2.5 kW minimum (1.21) and pays 10.05
    (deterministic) and 9.71 (recourse); against the peak alone it cycles about 92 kWh out under
    the peak (37.32, 37.34); against the cap alone it raises the peak to 5.5 kW (11.40)."""
    scenario = replace(hourly_days(3, datetime(2025, 1, 13, tzinfo=BERLIN).astimezone(UTC)))
    local = np.array([scenario.time(i).astimezone(BERLIN).hour for i in range(len(scenario))])
    scenario = replace(scenario, load_w=scenario.load_w + 3500.0 * ((local >= 18) & (local < 20)))
    scheme = both_config(planner, cap=8.0).settlement.build()
    battery = config().battery.params()
    settings = PlannerSettings(timezone=BERLIN, planner=planner)
    result = backtest.run_backtest(scenario, battery, 50.0, settings=settings, scheme=scheme, workers=1)
    own, none = result.strategies["hemsd"], result.strategies["no_battery"]
    cap_only = result.strategies[backtest.PEAK_BLIND]  # the same planner against the cap alone
    ip, ep = planning_prices(
        scheme, scenario.epoch_s(), 3600, scenario.import_price, scenario.export_price, BERLIN
    )
    assert scheme.capacity is not None
    peak = PeakSettings(scheme.capacity.price_per_kw_month, scheme.capacity.minimum_kw)
    peak_only = settled(
        backtest.hemsd(
            replace(scenario, import_price=ip, export_price=ep),
            battery,
            50.0,
            settings=replace(settings, peak=peak),
        ),
        scenario,
        scheme,
        BERLIN,
    )
    assert none.cost == pytest.approx(15.30 - 3.20 + 4.0 * 5.0 * 3 / 31, abs=0.005)
    assert own.bill is not None
    assert own.export_kwh == pytest.approx(8.0, abs=1.0)
    assert max(m.peak_kw for m in own.bill.months) == pytest.approx(2.5)
    assert own.cost == pytest.approx(both_cost, abs=0.005)
    assert peak_only.cost == pytest.approx(peak_only_cost, abs=0.005)
    assert cap_only.cost == pytest.approx(cap_only_cost, abs=0.005)
    assert own.cost < cap_only.cost < none.cost < peak_only.cost


def test_the_what_if_plans_against_a_capacity_charge_as_the_daemon_does() -> None:
    """A January of ``hourly_days`` with import at 0.10 from midnight to 06:00 and 0.35 else,
    export at 0.05, the house at 4 kW from 18:00 to 20:00, and a capacity charge of 5.00 a kW a
    month on the 15-minute peak (at least 2.5 kW): the what-if's planner charges the battery at
    night under the month's 2.5 kW and covers the evening, as the daemon plans; planned blind to
    the charge it charges at full power and pays for the peak that raises."""
    scenario = hourly_days(31, datetime(2025, 1, 1, tzinfo=BERLIN).astimezone(UTC))
    local = np.array([scenario.time(i).astimezone(BERLIN).hour for i in range(len(scenario))])
    scenario = replace(
        scenario,
        import_price=np.where(local < 6, 0.10, 0.35),
        export_price=np.full(len(scenario), 0.05),
        load_w=scenario.load_w + 3500.0 * ((local >= 18) & (local < 20)),
    )
    capacity = {"capacity": {"price_per_kw_month": 5.0, "minimum_kw": 2.5}}
    scheme = SettlementConfig.model_validate(capacity).build()
    battery = config().battery.params()
    result = sweep(
        scenario, battery, Variant(0.0), [Variant(10.0)], strategy="planner", tz=BERLIN, scheme=scheme
    )
    planned = result.rows[0].outcome
    flows = planner_flows(scenario, battery, 50.0, BERLIN, scheme=scheme)
    blind = planner_flows(scenario, battery, 50.0, BERLIN)
    (ignoring,) = outcomes(scenario, battery, [Variant(10.0)], blind, scenario.pv_w[:, None], BERLIN, scheme)
    assert flows.grid_w.max() == pytest.approx(2500.0)  # the month's minimum peak, not raised
    assert blind.grid_w.max() == pytest.approx(5500.0)  # charging at 5 kW over the 0.5 kW house
    # the same night's energy either way: planned blind, the 3 kW above the minimum at 5.00 more
    assert planned.cost == pytest.approx(ignoring.cost - 3.0 * 5.0, abs=0.01)  # 77.16 and 92.16
    assert planned.cost < result.reference.outcome.cost  # no battery: 171.90
