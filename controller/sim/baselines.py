"""The two baselines every backtest shows, through the one model (:func:`controller.physics.step`).

- ``no_battery``: the house as is; every surplus exported, every deficit imported.
- ``self_consumption``: the battery stores PV surplus and covers deficits; no grid charging,
  no export from the battery.
"""

from __future__ import annotations

import numpy as np

from controller.physics import Action, BatteryParams, mode_request_w, step
from controller.sim.scenario import Scenario
from controller.sim.totals import Meter, StrategyTotals, Trace


def no_battery(scenario: Scenario) -> StrategyTotals:
    grid_w = scenario.load_w - scenario.pv_w
    grid_kwh = grid_w * scenario.step_h / 1000.0
    imported, exported = np.maximum(grid_kwh, 0.0), np.maximum(-grid_kwh, 0.0)
    costs = imported * scenario.import_price - exported * scenario.export_price
    n = len(scenario)
    trace = Trace(
        np.full(n, np.nan), np.zeros(n), grid_w, costs, ("self_use",) * n, imported, exported, np.zeros(n)
    )
    return StrategyTotals(float(costs.sum()), float(imported.sum()), float(exported.sum()), 0.0, trace=trace)


def self_consumption(scenario: Scenario, params: BatteryParams, initial_soc_pct: float) -> StrategyTotals:
    meter = Meter(params)
    e = params.energy_kwh(initial_soc_pct)
    dt = scenario.step_h
    for pv, load, pi, pe in zip(
        scenario.pv_w.tolist(),
        scenario.load_w.tolist(),
        scenario.import_price.tolist(),
        scenario.export_price.tolist(),
        strict=True,
    ):
        r = step(params, e, mode_request_w(Action.SELF_USE, params, e, pv, load), pv, load, dt)
        meter.add(r, pi, pe)
        e = r.e_kwh
    return meter.totals()
