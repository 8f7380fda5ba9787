"""With perfect forecasts the backtest reaches 99 % of the LP optimum of the same settlement:
time-variable grid fees on a German winter fortnight, the Flemish capacity tariff on a Belgian
January (``bench/bench_settlement.py`` prints these and the realistic runs)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from support.lp_reference import capacity_optimum, settled_optimum
from support.shared import SHARED, needs_shared

from controller.physics import BatteryParams
from controller.settlement.engine import Metered, settle
from controller.settlement.schemes import scheme_preset
from controller.sim import backtest
from controller.sim.forecasts import default_timezone
from controller.sim.scenario import load_scenario
from controller.sim.settings import PERFECT

SCENARIOS = SHARED / "scenarios"


@pytest.mark.slow
@needs_shared(SCENARIOS)
@pytest.mark.parametrize(
    ("name", "days", "scheme", "peak_price", "peak_min"),
    [
        ("kn4_de_2019_hourly_eur.csv", 14, "de_14a_module3", 0.0, 0.0),
        ("kn4_be_2022_hourly_eur.csv", 31, "be_flanders_capacity", 40.4 / 12.0, 2.5),
    ],
)
def test_perfect_forecasts_reach_99_percent_of_the_settled_optimum(
    name: str, days: int, scheme: str, peak_price: float, peak_min: float
) -> None:
    full = load_scenario(SCENARIOS / name)
    s = full.slice(0, days * full.steps_per_day)
    tz = default_timezone(s)
    settled = scheme_preset(scheme)
    params = BatteryParams()
    settings = replace(PERFECT, timezone=tz)
    result = backtest.run_backtest(s, params, 50.0, settings=settings, scheme=settled, workers=1)
    optimum, _ = settled_optimum(params, s, settled, tz, peak_price, peak_min)
    none, planned = result.strategies["no_battery"].cost, result.strategies["hemsd"].cost
    assert none - planned >= 0.99 * (none - optimum), (
        f"{(none - planned) / (none - optimum):.2%} of the optimum"
    )
    if peak_price:
        own, blind = result.strategies["hemsd"].bill, result.strategies[backtest.PEAK_BLIND].bill
        assert own is not None
        assert blind is not None
        assert own.months[0].peak_kw < blind.months[0].peak_kw


@needs_shared(SCENARIOS)
def test_the_monthly_capacity_optimum_is_the_bill_of_its_own_flows() -> None:
    # mid-January to the end of February: two months' peaks, each billed on the mean of the
    # monthly peaks so far (12-month averaging) and pro rata for the part of the month covered
    full = load_scenario(SCENARIOS / "kn4_be_2022_hourly_eur.csv")
    s = full.slice(14 * 24, 59 * 24 - 1)  # the file's hours are UTC: its last of February is March's
    tz = default_timezone(s)
    scheme = scheme_preset("be_flanders_capacity")
    cost, lp = capacity_optimum(BatteryParams(), s, scheme, tz)
    assert lp.peaks_kw is not None
    assert lp.peaks_kw.size == 2
    grid = lp.grid_kwh
    metered = Metered(
        s.epoch_s(), 3600, np.maximum(grid, 0.0), np.maximum(-grid, 0.0), s.import_price, s.export_price
    )
    assert settle(metered, scheme, tz).total == pytest.approx(cost, abs=1e-6)
