"""The optimizer against a linear-programming reference (HiGHS) on convex instances.

Convex: no charge taper, wear >= 0, import price >= export price, import price >= 0. The
DP's cost (energy cost minus the value of the stored energy gained) must come within 0.2 %
of the LP's optimum.
"""

from __future__ import annotations

import numpy as np
import pytest
from support.lp_reference import solve_lp
from support.shared import SHARED, needs_shared

from controller.physics import BatteryParams, GridLimits
from controller.planner.deterministic import solve
from controller.planner.plan import Horizon
from controller.sim.scenario import load_scenario

SCENARIOS = SHARED / "scenarios"
TOLERANCE = 0.002
N_RANDOM = 200


def random_instance(seed: int) -> tuple[BatteryParams, GridLimits, float, Horizon, float]:
    """A household day or two: mixed 15- and 60-minute slots, PV, load, dynamic prices."""
    rng = np.random.default_rng(seed)
    n_steps = int(rng.integers(24, 49))
    dt = rng.choice([0.25, 1.0], size=n_steps, p=[0.7, 0.3])
    hours = np.concatenate([[0.0], np.cumsum(dt)[:-1]]) + rng.uniform(0, 24)
    sun = np.clip(np.sin((hours % 24 - 6) / 12 * np.pi), 0, None)
    pv = rng.uniform(0, 7000) * sun * rng.uniform(0.3, 1.0, n_steps)
    load = rng.uniform(300, 900) + rng.uniform(0, 2500) * rng.random(n_steps) ** 3
    base = rng.uniform(0.15, 1.2)
    import_price = base * (
        1 + 0.5 * np.sin(hours / 24 * 2 * np.pi * rng.uniform(0.5, 2.5) + rng.uniform(0, 6))
    )
    import_price = np.maximum(import_price + rng.normal(0, 0.05 * base, n_steps), 0.0)
    export_price = import_price * rng.uniform(0.1, 0.9) - rng.uniform(0, 0.3 * base)
    params = BatteryParams(
        capacity_kwh=float(rng.uniform(3, 20)),
        min_soc_pct=float(rng.uniform(0, 30)),
        max_soc_pct=float(rng.uniform(80, 100)),
        max_charge_w=float(rng.uniform(1000, 8000)),
        max_discharge_w=float(rng.uniform(1000, 8000)),
        charge_efficiency=float(rng.uniform(0.85, 1.0)),
        discharge_efficiency=float(rng.uniform(0.85, 1.0)),
        wear_cost_per_kwh=float(rng.choice([0.0, rng.uniform(0, 0.05 * base)])),
    )
    limits = GridLimits(
        max_import_w=float(rng.choice([np.inf, rng.uniform(6000, 15000)])),
        max_export_w=float(rng.choice([np.inf, rng.uniform(2000, 8000)])),
    )
    e0 = params.energy_kwh(float(rng.uniform(params.min_soc_pct, params.max_soc_pct)))
    end_value = float(np.percentile(import_price, rng.uniform(0, 60))) * params.discharge_efficiency
    return params, limits, e0, Horizon(dt, pv, load, import_price, export_price), end_value


def relative_gap(params: BatteryParams, limits: GridLimits, e0: float, h: Horizon, end_value: float) -> float:
    dp = solve(params, limits, e0, h, end_value)
    lp = solve_lp(params, limits, e0, h.dt_h, h.pv_w, h.load_w, h.import_price, h.export_price, end_value)
    assert dp.objective >= lp.objective - 1e-6 * max(1.0, abs(lp.objective)), "DP below the LP optimum"
    return abs(dp.objective - lp.objective) / abs(lp.objective)


def test_random_convex_instances_match_the_lp() -> None:
    gaps = [relative_gap(*random_instance(seed)) for seed in range(N_RANDOM)]
    worst = int(np.argmax(gaps))
    assert max(gaps) <= TOLERANCE, f"instance {worst}: DP {gaps[worst]:.4%} above the LP"


def scenario_windows() -> list[tuple[str, int]]:
    if not SCENARIOS.is_dir():
        return []
    return [(path.name, day) for path in sorted(SCENARIOS.glob("*.csv")) for day in (20, 110, 200, 290)]


@needs_shared(SCENARIOS)
@pytest.mark.parametrize(("name", "day"), scenario_windows())
def test_real_scenario_windows_match_the_lp(name: str, day: int) -> None:
    scenario = load_scenario(SCENARIOS / name)
    first = day * scenario.steps_per_day
    window = scenario.slice(first, first + round(48 / scenario.step_h))
    params = BatteryParams()
    h = Horizon(
        np.full(len(window), window.step_h),
        window.pv_w,
        window.load_w,
        window.import_price,
        window.export_price,
    )
    end_value = float(np.percentile(h.import_price, 30)) * params.discharge_efficiency
    assert relative_gap(params, GridLimits(), params.energy_kwh(50), h, end_value) <= TOLERANCE


def test_default_grid_path_stays_close_to_the_exact_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The grid DP (taper, export above import) on convex instances, against the exact path."""
    import controller.planner.deterministic as optimizer  # noqa: PLC0415 - patched below

    exact = [solve(*random_instance(seed)).objective for seed in range(20)]
    monkeypatch.setattr(optimizer, "is_convex", lambda *_: False)
    for seed, best in enumerate(exact):
        params, limits, e0, h, end_value = random_instance(seed)
        approx = solve(params, limits, e0, h, end_value).objective
        bill = float(np.sum(np.abs(h.load_w - h.pv_w) * h.dt_h / 1000.0 * h.import_price))
        assert best - 1e-9 <= approx <= best + 0.005 * bill, f"instance {seed}"
