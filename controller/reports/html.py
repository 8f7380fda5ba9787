"""Self-contained HTML reports of a backtest and of a what-if sweep, for a person to look at.

One file each, with no network access: the data as JSON inside the page, the dashboard's own
slot chart (``static/chart.js`` and ``chart.css``, served to the dashboard too) and a few lines of
script that draw it. The backtest report draws any week of the replay (hemsd's SoC and actions
against the prices, the PV and the load that happened) and the money per month of every
strategy (under a settlement scheme each month's bill, plus battery wear); the sweep report draws the yearly saving against the battery size and, where an
investment is given, the payback.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta, tzinfo
from importlib import resources

import numpy as np

from controller.physics import BatteryParams
from controller.sim.scenario import Scenario
from controller.sim.settings import PlannerSettings
from controller.sim.totals import BacktestResult
from controller.sim.whatif import SweepResult

STRATEGY_NAMES = {
    "no_battery": "no battery",
    "self_consumption": "self-consumption",
    "yesterday_dp": "DP on yesterday",
    "hemsd": "hemsd",
}


def _asset(name: str) -> str:
    return (resources.files("controller.reports") / "static" / name).read_text(encoding="utf-8")


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element (no closing tag, no comment opener)."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


def _page(title: str, body: str, data: object, script: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
{_asset("chart.css")}
{_asset("report.css")}
</style>
</head>
<body>
<header><h1>{html.escape(title)}</h1></header>
<main>
{body}
</main>
<script type="application/json" id="report-data">{_script_json(data)}</script>
<script>
{_asset("chart.js")}
{_asset(script)}
</script>
</body>
</html>
"""


def _local_weeks(starts: list[datetime]) -> list[tuple[str, int, int]]:
    """(label, first index, stop index) of each local week (Monday to Sunday) of the intervals."""
    weeks: list[tuple[str, int, int]] = []
    current = None
    for i, start in enumerate(starts):
        day = start.date()
        monday = day - timedelta(days=day.weekday())
        if monday != current:
            if weeks:
                weeks[-1] = (weeks[-1][0], weeks[-1][1], i)
            weeks.append((f"week of {monday.isoformat()}", i, len(starts)))
            current = monday
    return weeks


def backtest_report(
    scenario: Scenario,
    params: BatteryParams,
    initial_soc: float,
    settings: PlannerSettings,
    result: BacktestResult,
    tz: tzinfo,
) -> str:
    """The HTML report of one backtest (see the module docstring)."""
    epoch = scenario.epoch_s()
    starts = [datetime.fromtimestamp(float(t), UTC).astimezone(tz) for t in epoch]
    traces = {name: totals.trace for name, totals in result.strategies.items()}
    hemsd = traces["hemsd"]
    if hemsd is None or any(trace is None for trace in traces.values()):
        raise ValueError("backtest_report needs the strategies' traces")
    months: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(traces, 0.0))
    month_of = [start.strftime("%Y-%m") for start in starts]
    for name, trace in traces.items():
        assert trace is not None
        bill = result.strategies[name].bill
        if bill is not None and trace.wear is not None:  # settled under a scheme: the bill, plus wear
            for month, wear in zip(month_of, trace.wear.tolist(), strict=True):
                months[month][name] += wear
            for settled in bill.months:
                months[settled.month][name] += settled.total
            continue
        for month, cost in zip(month_of, trace.cost.tolist(), strict=True):
            months[month][name] += cost
    weeks = []
    for label, first, stop in _local_weeks(starts):
        costs = {name: float(t.cost[first:stop].sum()) for name, t in traces.items() if t is not None}
        weeks.append({"label": label, "first": first, "stop": stop, "costs": costs})
    actions = sorted(set(hemsd.actions))
    data = {
        "name": scenario.name,
        "currency": scenario.currency,
        "timezone": getattr(tz, "key", "UTC"),
        "first_s": int(epoch[0]),
        "step_s": round(scenario.step_h * 3600),
        "initial_soc": initial_soc,
        "pv_w": np.round(scenario.pv_w).tolist(),
        "load_w": np.round(scenario.load_w).tolist(),
        "import_price": np.round(scenario.import_price, 4).tolist(),
        "export_price": np.round(scenario.export_price, 4).tolist(),
        "soc_pct": np.round(hemsd.soc_pct, 1).tolist(),
        "battery_w": np.round(hemsd.battery_w).tolist(),
        "actions": actions,
        "action": [actions.index(a) for a in hemsd.actions],
        "weeks": weeks,
        "months": [
            {"month": m, "costs": {k: round(v, 2) for k, v in costs.items()}} for m, costs in months.items()
        ],
        "strategies": {name: STRATEGY_NAMES.get(name, name) for name in traces},
        "totals": result.to_dict()["strategies"],
    }
    minutes = round(scenario.step_h * 60)
    summary = (
        f"{len(scenario)} intervals of {minutes} min from {scenario.start:%Y-%m-%d}; "
        f"{settings.forecast} forecasts, the {settings.planner} planner, {settings.horizon_hours:g} h horizon; "
        f"battery {params.capacity_kwh:g} kWh, {params.max_charge_w / 1000:g}/{params.max_discharge_w / 1000:g} kW, "
        f"SoC {params.min_soc_pct:g}-{params.max_soc_pct:g} %, starting at {initial_soc:g} %"
    )
    body = f"""<section class="card">
  <p class="muted">{html.escape(summary)}</p>
  <table id="totals"><thead><tr><th>strategy</th><th>cost, {html.escape(scenario.currency)}</th>
    <th>saved</th><th>import kWh</th><th>export kWh</th><th>cycles</th></tr></thead><tbody></tbody></table>
</section>
<section class="card">
  <h2>A week: what hemsd did against what happened</h2>
  <label for="week">Week</label> <select id="week"></select> <span id="week-costs" class="muted"></span>
  <svg id="week-chart" class="slot-chart" role="img" aria-label="the week's chart"></svg>
  <div id="week-legend" class="legend"></div>
  <p id="week-tip" class="muted">&nbsp;</p>
</section>
<section class="card">
  <h2>Money per month</h2>
  <svg id="month-chart" class="bar-chart" role="img" aria-label="savings per month"></svg>
  <table id="months"><thead></thead><tbody></tbody></table>
</section>"""
    return _page(f"hemsd backtest: {scenario.name}", body, data, "backtest.js")


def sweep_report(result: SweepResult, source: str) -> str:
    """The HTML report of a what-if sweep: saving (and payback) against battery size."""
    rows = [result.reference, *result.rows]
    data = {
        "currency": result.currency,
        "strategy": result.strategy,
        "source": source,
        "reference": result.reference.to_dict(),
        "variants": [row.to_dict() for row in rows[1:]],
    }
    summary = (
        f"What-if over {source}: {result.intervals} intervals, {result.covered_days:.1f} days with data, "
        f"strategy {result.strategy}; money in {result.currency} per year against "
        f"{result.reference.outcome.label}"
    )
    body = f"""<section class="card">
  <p class="muted">{html.escape(summary)}</p>
  <h2>Yearly saving against battery size</h2>
  <svg id="saving-chart" class="bar-chart" role="img" aria-label="saving against battery size"></svg>
  <div id="saving-legend" class="legend"></div>
  <h2 id="payback-title">Payback, years</h2>
  <svg id="payback-chart" class="bar-chart" role="img" aria-label="payback against battery size"></svg>
</section>
<section class="card">
  <table id="variants"><thead><tr><th>variant</th><th>cost/yr</th><th>saving/yr</th><th>invest</th>
    <th>payback y</th><th>import</th><th>export</th><th>cycles</th></tr></thead><tbody></tbody></table>
</section>"""
    return _page("hemsd simulate", body, data, "sweep.js")
