"""Tariff composition: worked examples for Poland's G11, G12 and G12w, computed by hand.

Figures used (PLN per kWh, net of VAT unless stated):
- Energy: 0.5000, the statutory maximum price for G-tariff households from 2025-01-01 to
  2025-09-30 (infor.pl, January 2025: "0,5000 zł/kWh (bez akcyzy i VAT) oraz 0,6212 zł/kWh
  (z VAT i akcyzą)"). Check of the formula: (0.5000 + 0.005) * 1.23 = 0.62115 -> 0.6212.
- Excise 0.005 (5 PLN/MWh); VAT 23 %.
- Distribution, PGE Dystrybucja G-group rates as published on pgedystrybucja.pl (gross figures
  / 1.23, rounded to 4 places): G11 0.3469; G12 day 0.4014 / night 0.0765; G12w peak 0.4276 /
  off-peak 0.0845; system charges = quality 0.0331 + RES (OZE) 0.0073 + cogeneration 0.0030
  = 0.0434. The page states no year; its OZE rate (7.30 PLN/MWh) is the 2026 one, so these
  distribution rates are that year's; 2025 rates differ by a few percent.
- Capacity charge: 0 per kWh (households pay it as a monthly flat fee, which does not change
  the marginal price of a kWh).
- Export: RCE with negative prices settled as zero (globenergia.pl: "ceny ujemne są
  przyrównywane do zera").
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from drivers.prices.tariff import ExportConfig, Tariff, TariffConfig, ZoneFees
from drivers.prices.types import MarketSlot, PriceDataError
from drivers.prices.zones import CalendarConfig

WARSAW = ZoneInfo("Europe/Warsaw")
SYSTEM = 0.0331 + 0.0073 + 0.0030
EXCISE = 0.005


def warsaw(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=WARSAW)


def slot(local: datetime, price: float, export: float | None = None, currency: str = "PLN") -> MarketSlot:
    start = local.astimezone(UTC)
    return MarketSlot(start, start + timedelta(minutes=15), price, currency, export)


def tariff(preset: str, fees: dict[str, ZoneFees], **extra: object) -> Tariff:
    config = TariffConfig(calendar=CalendarConfig(preset=preset), fees=fees, vat=0.23, **extra)
    return Tariff(config, currency="PLN", timezone=WARSAW)


def fees(distribution: float, margin: float = 0.0) -> ZoneFees:
    return ZoneFees(distribution=distribution, system=SYSTEM, excise=EXCISE, margin=margin)


def test_g11_fixed_price_2025() -> None:
    g11 = tariff("G11", {"all": fees(0.3469)})
    (priced,) = g11.apply([slot(warsaw(2025, 3, 12, 18, 0), 0.5000)], "tou")
    # (0.5000 + 0.3469 + 0.0434 + 0.005) * 1.23 = 0.8953 * 1.23
    assert priced.import_price == pytest.approx(1.101219)
    assert priced.currency == "PLN"
    assert priced.source == "tou"


def test_energy_only_matches_the_published_gross_price() -> None:
    energy_only = tariff("G11", {"all": ZoneFees(excise=EXCISE)})
    (priced,) = energy_only.apply([slot(warsaw(2025, 3, 12, 18, 0), 0.5000)], "tou")
    # (0.5000 + 0.005) * 1.23 = 0.62115, published rounded to 0.6212
    assert priced.import_price == pytest.approx(0.62115)
    assert abs(priced.import_price - 0.6212) <= 0.00005 + 1e-9


def test_g12_dynamic_price_by_zone() -> None:
    # A market-price (dynamic) contract with an illustrative supplier margin of 0.03 PLN/kWh.
    g12 = tariff("G12", {"peak": fees(0.4014, 0.03), "offpeak": fees(0.0765, 0.03)})
    wednesday = [
        slot(warsaw(2025, 11, 19, 0, 0), 0.43635),  # 22-06: off-peak
        slot(warsaw(2025, 11, 19, 8, 0), 0.61020),  # peak
        slot(warsaw(2025, 11, 19, 13, 0), 0.39000),  # 13-15: off-peak
        slot(warsaw(2025, 11, 19, 15, 0), 0.50000),  # peak again
    ]
    priced = g12.apply(wednesday, "pse")
    # off-peak: (0.43635 + 0.0765 + 0.0434 + 0.005 + 0.03) * 1.23 = 0.59125 * 1.23
    assert priced[0].import_price == pytest.approx(0.7272375)
    # peak: (0.61020 + 0.4014 + 0.0434 + 0.005 + 0.03) * 1.23 = 1.0900 * 1.23
    assert priced[1].import_price == pytest.approx(1.3407)
    # off-peak: (0.39 + 0.0765 + 0.0434 + 0.005 + 0.03) * 1.23 = 0.5449 * 1.23
    assert priced[2].import_price == pytest.approx(0.670227)
    # peak: (0.5 + 0.4014 + 0.0434 + 0.005 + 0.03) * 1.23 = 0.9798 * 1.23
    assert priced[3].import_price == pytest.approx(1.205154)


def test_g12_weekend_follows_the_hours() -> None:
    g12 = tariff("G12", {"peak": fees(0.4014), "offpeak": fees(0.0765)})
    (saturday_morning,) = g12.apply([slot(warsaw(2025, 11, 22, 10, 0), 0.5)], "tou")
    # G12 has no weekend rule: (0.5 + 0.4014 + 0.0434 + 0.005) * 1.23 = 0.9498 * 1.23
    assert saturday_morning.import_price == pytest.approx(1.168254)


def test_g12w_peak_weekend_and_holidays() -> None:
    g12w = tariff("G12w", {"peak": fees(0.4276), "offpeak": fees(0.0845)})
    peak = (0.5 + 0.4276 + SYSTEM + EXCISE) * 1.23  # 0.9760 * 1.23 = 1.20048
    offpeak = (0.5 + 0.0845 + SYSTEM + EXCISE) * 1.23  # 0.6329 * 1.23 = 0.778467
    assert peak == pytest.approx(1.20048)
    assert offpeak == pytest.approx(0.778467)
    cases = [
        (warsaw(2025, 11, 19, 10, 0), peak),  # Wednesday
        (warsaw(2025, 11, 19, 22, 15), offpeak),  # Wednesday night
        (warsaw(2025, 11, 22, 10, 0), offpeak),  # Saturday
        (warsaw(2025, 11, 11, 10, 0), offpeak),  # Tuesday, Independence Day
        (warsaw(2025, 6, 19, 10, 0), offpeak),  # Thursday, Corpus Christi (Easter + 60)
        (warsaw(2025, 12, 24, 10, 0), offpeak),  # Christmas Eve: a public holiday from 2025
        (warsaw(2024, 12, 24, 10, 0), peak),  # ... but not in 2024
    ]
    priced = g12w.apply([slot(local, 0.5) for local, _ in cases], "tou")
    for (local, expected), result in zip(cases, priced, strict=True):
        assert result.import_price == pytest.approx(expected), local


def test_export_rce_with_negative_settled_as_zero() -> None:
    g11 = tariff("G11", {"all": fees(0.3469)}, export=ExportConfig(mode="market", floor=0.0))
    priced = g11.apply(
        [
            slot(warsaw(2026, 5, 10, 12, 30), -0.19849, -0.19676),
            slot(warsaw(2025, 10, 26, 2, 0), 0.39164, 0.40236),
        ],
        "pse",
    )
    assert priced[0].export_price == 0.0
    assert priced[1].export_price == pytest.approx(0.40236)
    # A negative market price makes a cheap (here still positive) import:
    # (-0.19849 + 0.3469 + 0.0434 + 0.005) * 1.23 = 0.19681 * 1.23
    assert priced[0].import_price == pytest.approx(0.2420763)


def test_export_negative_allowed_factor_and_fixed() -> None:
    market = tariff("G11", {"all": fees(0.0)}, export=ExportConfig(factor=0.9))
    (negative,) = market.apply([slot(warsaw(2026, 5, 10, 12, 30), -0.2)], "entsoe")
    assert negative.export_price == pytest.approx(-0.18)  # no floor: exporting costs money
    fixed = tariff("G11", {"all": fees(0.0)}, export=ExportConfig(mode="fixed", price=0.35))
    (fixed_slot,) = fixed.apply([slot(warsaw(2026, 5, 10, 12, 30), -0.2)], "entsoe")
    assert fixed_slot.export_price == 0.35
    none = tariff("G11", {"all": fees(0.0)}, export=ExportConfig(mode="none"))
    assert none.apply([slot(warsaw(2026, 5, 10, 12, 30), 0.3)], "x")[0].export_price == 0.0


def test_foreign_currency_needs_an_exchange_rate() -> None:
    eur_slot = slot(warsaw(2025, 11, 19, 8, 0), 0.1, currency="EUR")
    g11 = tariff("G11", {"all": fees(0.3469)})
    with pytest.raises(
        PriceDataError, match=r"in EUR but the site currency is PLN: set prices.tariff.exchange_rates.EUR"
    ):
        g11.apply([eur_slot], "entsoe")
    converted = tariff("G11", {"all": fees(0.3469)}, exchange_rates={"EUR": 4.25})
    # (0.1 * 4.25 + 0.3469 + 0.0434 + 0.005) * 1.23 = 0.8203 * 1.23
    assert converted.apply([eur_slot], "entsoe")[0].import_price == pytest.approx(1.008969)


def test_fees_must_cover_exactly_the_calendar_zones() -> None:
    with pytest.raises(ValidationError, match="fees missing for zone\\(s\\) offpeak"):
        TariffConfig(calendar=CalendarConfig(preset="G12"), fees={"peak": ZoneFees()})
    with pytest.raises(ValidationError, match="fees given for unknown zone\\(s\\) night"):
        TariffConfig(calendar=CalendarConfig(preset="G11"), fees={"all": ZoneFees(), "night": ZoneFees()})
    with pytest.raises(ValidationError, match=r"export\.mode 'fixed' needs export\.price"):
        ExportConfig(mode="fixed")


def test_zone_at_local_day_boundaries_across_dst() -> None:
    g12 = tariff("G12", {"peak": fees(0.4), "offpeak": fees(0.08)})
    autumn_start = datetime(2025, 10, 26, tzinfo=WARSAW).astimezone(UTC)
    zones = [g12.calendar.zone_at(autumn_start + k * timedelta(hours=1)) for k in range(25)]
    # Local hours 00..05 (with 02 twice) are off-peak: 7 UTC hours, then 06..12 peak.
    assert zones[:7] == ["offpeak"] * 7
    assert zones[7] == "peak"
    assert g12.calendar.day_type(date(2025, 10, 26)).value == "sunday"
