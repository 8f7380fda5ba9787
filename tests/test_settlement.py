"""The settlement engine: worked examples from published rules, to the cent, and today's per-slot sum.

Each worked example is a month built quarter-hour by quarter-hour; the expected amounts are worked
out by hand in the comments from the published numbers (sources in controller.settlement.schemes).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError

from controller.physics import BatteryParams
from controller.reports.energy import BillSource, PricedHistory, energy_report
from controller.settlement.config import SettlementConfig
from controller.settlement.engine import Metered, per_slot_cost, settle
from controller.settlement.schemes import (
    PER_SLOT,
    CapacityCharge,
    DepositLot,
    ExportValue,
    Netting,
    Scheme,
    scheme_preset,
)
from drivers.prices.tariff import TariffConfig
from storage.records import DataStatus

WARSAW, BRUSSELS, BERLIN = ZoneInfo("Europe/Warsaw"), ZoneInfo("Europe/Brussels"), ZoneInfo("Europe/Berlin")


def month_slots(year: int, month: int, tz: ZoneInfo) -> tuple[np.ndarray, np.ndarray]:
    """Quarter-hour starts (epoch s) of a local month and each one's local minute of the day."""
    start = int(datetime(year, month, 1, tzinfo=tz).timestamp())
    nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    starts = np.arange(start, int(nxt.timestamp()), 900, dtype=np.int64)
    local = [datetime.fromtimestamp(s, UTC).astimezone(tz) for s in starts.tolist()]
    minutes = np.array([t.hour * 60 + t.minute for t in local])
    return starts, minutes


def metered(
    starts: np.ndarray, imp: np.ndarray, exp: np.ndarray, ip: float, ep: float, **kw: object
) -> Metered:
    n = starts.size
    return Metered(starts, 900, imp, exp, np.full(n, ip), np.full(n, ep), **kw)  # type: ignore[arg-type]


def test_per_slot_is_todays_sum() -> None:
    rng = np.random.default_rng(7)
    n = 96 * 40
    starts = 1_700_000_100 - 1_700_000_100 % 900 + 900 * np.arange(n, dtype=np.int64)
    m = Metered(
        starts,
        900,
        rng.uniform(0, 2, n),
        rng.uniform(0, 2, n),
        rng.uniform(-0.2, 1.5, n),
        rng.uniform(-0.2, 0.8, n),
        fees_per_kwh=np.full(n, 0.3),
        vat=0.23,
    )
    bill = settle(m, PER_SLOT, WARSAW)
    assert bill.total == pytest.approx(float(per_slot_cost(m).sum()), abs=1e-9)
    assert [b.month for b in bill.months] == ["2023-11", "2023-12"]
    gross = float((m.import_kwh * m.import_price).sum())
    assert bill.component("fees") == pytest.approx(float(m.import_kwh.sum()) * 0.3)
    assert bill.component("vat") == pytest.approx(gross * 0.23 / 1.23)
    assert bill.component("energy") + bill.component("fees") + bill.component("vat") == pytest.approx(gross)
    assert bill.periods.import_cost.size == n
    # the month's peak is reported without a capacity charge too: the highest quarter-hour's import
    november = bill.months[0]
    in_november = np.array(
        [datetime.fromtimestamp(int(t), UTC).astimezone(WARSAW).month == 11 for t in starts]
    )
    assert november.peak_kw == pytest.approx(float(m.import_kwh[in_november].max()) / 0.25)
    assert november.capacity == 0.0


def test_polish_net_billing_month_with_an_expiring_deposit() -> None:
    # December 2025, Warsaw. Each day 40 quarter-hours import 0.25 kWh (10 kWh) and 8 export 0.5 kWh
    # (4 kWh): the month imports 310 kWh and exports 124 kWh.
    starts, minutes = month_slots(2025, 12, WARSAW)
    imp = np.where((minutes >= 17 * 60) | (minutes < 3 * 60), 0.25, 0.0)  # 17:00-03:00: 40 quarters
    exp = np.where((minutes >= 11 * 60) & (minutes < 13 * 60), 0.5, 0.0)  # 11:00-13:00: 8 quarters
    assert imp.sum() == pytest.approx(310.0)
    assert exp.sum() == pytest.approx(124.0)
    # G11-like tariff: 1.10 PLN/kWh gross with 23 % VAT, of which 0.35 PLN/kWh net are fees.
    m = metered(starts, imp, exp, 1.10, 0.0, fees_per_kwh=np.full(starts.size, 0.35), vat=0.23)
    config = SettlementConfig.model_validate(
        {
            "scheme": "pl_net_billing_rcem",
            # RCEm December 2025: 466.08 PLN/MWh (PSE, as reported by gramwzielone.pl)
            "export": {"monthly_prices": {"2025-12": 0.46608}},
            "deposit": {
                "opening": [
                    {"month": "2025-01", "value": 500.0, "left": 400.0},  # expires with December
                    {"month": "2025-11", "value": 60.0, "left": 60.0},
                    {"month": "2025-12", "value": 45.5, "left": 45.5},
                ]
            },
        }
    )
    bill = settle(m, config.build(), WARSAW)
    (dec,) = bill.months
    # export: 124 kWh x 0.46608 = 57.79392 PLN, credited to January 2026
    assert round(dec.export_value, 2) == 57.79
    assert dec.export_paid == 0.0
    assert round(dec.deposit_credited, 2) == 57.79
    # the deposit pays the energy with its VAT: 310 x (1.10 - 0.35 x 1.23) = 207.545 PLN,
    # from the oldest lot first (January 2025: 400 -> 192.455 left)
    assert round(dec.deposit_used, 3) == 207.545
    # January 2025's lot expires: refund at most 20 % of its 500 PLN = 100 PLN (92.455 lost)
    assert round(dec.deposit_refund, 2) == 100.00
    # fees: 310 x 0.35 = 108.50 net; VAT of the month: 341.00 x 23/123 = 63.76
    assert round(dec.fees, 2) == 108.50
    assert round(dec.vat, 2) == 63.76
    # paid: 341.00 - 207.545 - 100.00 = 33.455 PLN
    assert round(dec.total, 3) == 33.455
    # left for later: November's 60 and December's 45.50; December's own credit counts from January
    assert round(dec.deposit_balance, 2) == 105.50
    assert {lot.month for lot in bill.deposit} == {"2025-11", "2025-12", "2026-01"}


def test_rce_is_averaged_per_hour_then_clamped_and_the_deposit_raised_by_1_23() -> None:
    start = int(datetime(2025, 7, 6, 12, tzinfo=WARSAW).timestamp())
    starts = start + 900 * np.arange(8, dtype=np.int64)
    market = np.array([-0.10, -0.05, 0.05, 0.02, 0.40, 0.44, 0.48, 0.52])
    m = Metered(starts, 900, np.zeros(8), np.ones(8), np.full(8, 1.0), market, market_price=market)
    bill = settle(m, scheme_preset("pl_net_billing_rce"), WARSAW)
    # hour 1: mean -0.02 -> 0 (clamping each quarter first would give 0.0175 x 4 kWh = 0.07)
    # hour 2: mean 0.46 x 4 kWh = 1.84; the deposit gets 1.84 x 1.23 = 2.2632
    assert bill.periods.export_value.tolist() == pytest.approx([0.0] * 4 + [0.46] * 4)
    assert round(bill.months[0].export_value, 2) == 1.84
    assert round(bill.months[0].deposit_credited, 4) == 2.2632


def test_flemish_capacity_month() -> None:
    # January 2023, Brussels. 0.1 kWh every quarter-hour (0.4 kW) and one evening an EV for an
    # hour at 7.2 kW (1.8 kWh a quarter): 2972 x 0.1 + 4 x 1.8 = 304.4 kWh at 0.30 EUR/kWh all in.
    starts, minutes = month_slots(2023, 1, BRUSSELS)
    imp = np.full(starts.size, 0.1)
    ev = np.flatnonzero(minutes == 19 * 60)[9]
    imp[ev : ev + 4] = 1.8
    m = metered(starts, imp, np.zeros(starts.size), 0.30, 0.04)
    # the 11 monthly peaks before (kW); below 2.5 kW each counts as 2.5
    previous = [3.1, 2.0, 4.2, 3.6, 2.8, 2.2, 1.9, 2.4, 3.3, 4.0, 5.1]
    config = SettlementConfig.model_validate(
        {"scheme": "be_flanders_capacity", "capacity": {"previous_peaks_kw": previous}}
    )
    bill = settle(m, config.build(), BRUSSELS)
    (jan,) = bill.months
    assert jan.peak_kw == pytest.approx(7.2)
    # (3.1 + 2.5 + 4.2 + 3.6 + 2.8 + 2.5 + 2.5 + 2.5 + 3.3 + 4.0 + 5.1 + 7.2) / 12 = 43.3 / 12 kW
    assert jan.billed_kw == pytest.approx(43.3 / 12)
    # EUR 40.4 per kW a year (Fluvius, 2023 average, excl. VAT): 43.3 / 12 x 40.4 / 12 = 12.148
    assert round(jan.capacity, 2) == 12.15
    # 304.4 kWh x 0.30 = 91.32; total 103.47
    assert round(jan.energy, 2) == 91.32
    assert round(jan.total, 2) == 103.47
    # a generic monthly-peak charge (this month's peak alone, no minimum): 7.2 kW x 3.3667
    generic = replace(config.build(), capacity=CapacityCharge(price_per_kw_month=40.4 / 12))
    assert round(settle(m, generic, BRUSSELS).months[0].capacity, 2) == 24.24


def test_german_time_variable_grid_fees_month() -> None:
    # January 2025, Berlin zone, SWA Netze module 3 (gross): low 3.67 ct 01:00-04:30, high 13.96 ct
    # 17:00-19:00, standard 9.15 ct otherwise; the import price 0.35 EUR/kWh holds the standard fee.
    starts, minutes = month_slots(2025, 1, BERLIN)
    imp = np.full(starts.size, 0.1)  # 9.6 kWh a day
    imp[(minutes >= 120) & (minutes < 180)] += 2.0  # an EV 02:00-03:00: 8 kWh a day
    m = metered(starts, imp, np.zeros(starts.size), 0.35, 0.0)
    bill = settle(m, scheme_preset("de_14a_module3"), BERLIN)
    (jan,) = bill.months
    # per day: low 14 x 0.1 + 8 = 9.4 kWh at -5.48 ct = -0.51512; high 8 x 0.1 = 0.8 kWh at
    # +4.81 ct = +0.03848; a day -0.47664, the month -14.77584 EUR
    # imports 31 x 17.6 kWh x 0.35 = 190.96 EUR; the bill 190.96 - 14.77584 = 176.18416
    assert round(settle(m, PER_SLOT, BERLIN).total, 2) == 190.96
    assert round(jan.total, 2) == 176.18
    # the fees' share of the change is net of 19 % VAT: -14.77584 / 1.19 = -12.41667
    assert round(jan.fees, 2) == -12.42


def test_netting_within_the_hour() -> None:
    start = int(datetime(2025, 3, 3, 10, tzinfo=UTC).timestamp())
    starts = start + 900 * np.arange(4, dtype=np.int64)
    imp, exp = np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.6, 0.0])
    m = Metered(starts, 900, imp, exp, np.full(4, 1.0), np.full(4, 0.2))
    hourly = Scheme(name="hourly", netting=Netting(period="hour", net=True))
    bill = settle(m, hourly, WARSAW)
    assert bill.periods.import_kwh.tolist() == pytest.approx([0.4])
    assert bill.total == pytest.approx(0.4)
    assert settle(m, PER_SLOT, WARSAW).total == pytest.approx(1.0 - 0.12)


def test_fixed_feed_in_with_a_yearly_cap() -> None:
    start = int(datetime(2025, 6, 1, 12, tzinfo=UTC).timestamp())
    starts = start + 900 * np.arange(10, dtype=np.int64)
    m = Metered(starts, 900, np.zeros(10), np.ones(10), np.ones(10), np.zeros(10))
    scheme = Scheme(name="fit", export=ExportValue(basis="fixed", fixed_price=0.08, yearly_cap_kwh=100.0))
    # 95 kWh paid already this year: 5 of the 10 kWh are paid, at 0.08
    assert settle(m, scheme, BERLIN, year_exported_before_kwh=95.0).total == pytest.approx(-0.40)


def test_standing_charges_count_pro_rata() -> None:
    starts, _ = month_slots(2025, 4, BERLIN)
    half = starts[: starts.size // 2]
    m = metered(half, np.zeros(half.size), np.zeros(half.size), 0.3, 0.0)
    config = SettlementConfig.model_validate(
        {"standing": [{"name": "meter", "per_month": 12.0}], "vat": 0.19}
    )
    (april,) = settle(m, config.build(), BERLIN).months
    assert april.covered == pytest.approx(0.5, abs=0.01)
    assert april.standing == pytest.approx(6.0, abs=0.1)
    assert april.vat == pytest.approx(april.standing * 0.19)


def test_deposit_lots_wait_for_their_month() -> None:
    starts, _minutes = month_slots(2025, 5, WARSAW)
    m = metered(starts, np.full(starts.size, 0.1), np.zeros(starts.size), 1.0, 0.0)
    later = replace(
        scheme_preset("pl_net_billing_rce"), opening_deposit=(DepositLot("2025-06", 100.0, 100.0),)
    )
    (may,) = settle(m, later, WARSAW).months
    assert may.deposit_used == 0.0
    assert may.deposit_balance == 0.0


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"scheme": "pl_net_billing_rcem"}, "monthly_prices"),
        ({"scheme": "nl_salderen"}, "scheme"),
        ({"export": {"monthly_prices": {"2025-13": 0.4}}}, "2025-13"),
        ({"capacity": {"minimum_kw": 2.5}}, "price_per_kw_month"),
        ({"grid_fees": {"operator": "swa_netze", "year": 2031}}, "swa_netze/2031"),
        ({"grid_fees": {"levels": {"peak": 0.2}}, "scheme": "de_14a_module3"}, "peak"),
        ({"deposit": {"opening": [{"month": "2025-01", "value": 1.0, "left": 2.0}]}}, "left"),
        ({"rules": {"battery_to_grid": "sometimes"}}, "battery_to_grid"),
        ({"period": "week"}, "period"),
    ],
)
def test_bad_settlement_config_names_the_field(table: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        SettlementConfig.model_validate(table)


def test_no_table_is_per_slot_and_rules_reach_the_planner_flags() -> None:
    assert SettlementConfig().build().per_slot
    de = SettlementConfig.model_validate({"rules": {"preset": "DE"}}).build().rules
    assert de.planner_flags() == (True, False)
    assert replace(de, grid_charging=False).planner_flags() == (False, True)
    zero = SettlementConfig.model_validate({"rules": {"preset": "zero_export"}}).build().rules
    assert zero.export_limit(8000.0) == 0.0
    pct = SettlementConfig.model_validate({"rules": {"export_limit_pct_of_pv": 70}}).build().rules
    assert pct.export_limit(8000.0) == pytest.approx(5600.0)


def test_energy_report_settles_the_recorded_months_with_the_tariffs_split() -> None:
    starts, minutes = month_slots(2025, 12, WARSAW)
    n = starts.size
    imported = np.where(minutes >= 18 * 60, 0.3, 0.05)
    exported = np.where((minutes >= 11 * 60) & (minutes < 13 * 60), 0.2, 0.0)
    tariff = TariffConfig.model_validate(
        {
            "calendar": {"preset": "G12"},
            "vat": 0.23,
            "fees": {"peak": {"distribution": 0.40}, "offpeak": {"distribution": 0.10}},
        }
    )
    calendar = tariff.calendar.build(WARSAW)
    zone_fee = np.array(
        [tariff.fees[calendar.zone_at(datetime.fromtimestamp(int(s), UTC))].total for s in starts.tolist()]
    )
    market = 0.45
    import_price = (market + zone_fee) * 1.23
    history = PricedHistory(
        DataStatus.REAL, "", starts.astype(np.float64), np.zeros(n), imported - exported, imported, exported,
        np.zeros(n), np.zeros(n), import_price, np.full(n, 0.40), np.ones(n, dtype=bool), 50.0,
    )  # fmt: skip
    report = energy_report(history, BatteryParams(), WARSAW, "month", "PLN", BillSource(PER_SLOT, tariff))
    assert report.bill is not None
    (dec,) = report.bill.months
    assert report.total is not None
    assert dec.total == pytest.approx(report.total.cost_paid)  # per slot: what was paid, to the cent
    assert dec.energy == pytest.approx(float(imported.sum()) * market)  # the market part alone
    assert dec.fees == pytest.approx(float((imported * zone_fee).sum()))
    assert dec.vat == pytest.approx(float((imported * import_price).sum()) * 0.23 / 1.23)
    assert report.to_dict()["bill"]["months"][0]["month"] == "2025-12"  # type: ignore[index,call-overload]
