"""The LP with the origin of stored energy tracked (``support.lp_origin``, what bench/bench_origin.py
measures the "PV only" export rule with), on a case worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from support.lp_origin import BatteryExport, origin_optimum
from support.lp_reference import solve_lp

from controller.physics import BatteryParams, GridLimits

PARAMS = BatteryParams()  # 10 kWh, 10-100 %, 5 kW each way, 0.95 each way
# an hour of 2 kW PV surplus with import at 0.10 and export worth nothing, then an hour with no
# house at all where export pays 0.50: stored energy is worth only what it fetches exported
PV, LOAD = np.array([2000.0, 0.0]), np.array([0.0, 0.0])
IMPORT, EXPORT = np.array([0.10, 0.60]), np.array([0.0, 0.50])


def cost(rule: BatteryExport, grid_charging: bool = True) -> float:
    return origin_optimum(PARAMS, PARAMS.e_min_kwh, 1.0, PV, LOAD, IMPORT, EXPORT, rule, grid_charging)


def test_the_pv_pool_alone_may_be_exported_under_pv_only() -> None:
    # allowed: 5 kWh charged (2 of PV, 3 bought at 0.10), 4.75 stored, 4.5125 exported at 0.50
    assert cost("allowed") == pytest.approx(3.0 * 0.10 - 5.0 * 0.95 * 0.95 * 0.50)
    # pv_only: the 2 kWh of PV alone go out again (1.9 stored, 1.805 exported); buying is pointless
    assert cost("pv_only") == pytest.approx(-2.0 * 0.95 * 0.95 * 0.50)
    assert cost("pv_only", grid_charging=False) == pytest.approx(cost("pv_only"))
    # never: nothing stored is worth anything; the PV goes out at 0
    assert cost("never") == pytest.approx(0.0)


def test_without_a_rule_it_is_the_reference_lp() -> None:
    rng = np.random.default_rng(7)
    n = 48
    pv = np.clip(rng.normal(1500.0, 1500.0, n), 0.0, None)
    load = rng.uniform(200.0, 2500.0, n)
    export = rng.uniform(-0.02, 0.15, n)
    imported = export + rng.uniform(0.05, 0.30, n)
    e0 = PARAMS.energy_kwh(50.0)
    reference = solve_lp(PARAMS, GridLimits(), e0, np.ones(n), pv, load, imported, export)
    tracked = origin_optimum(PARAMS, e0, 1.0, pv, load, imported, export, "allowed")
    assert tracked == pytest.approx(reference.energy_cost, abs=1e-6)
    strict = origin_optimum(PARAMS, e0, 1.0, pv, load, imported, export, "never")
    assert strict >= origin_optimum(PARAMS, e0, 1.0, pv, load, imported, export, "pv_only") >= tracked - 1e-9
