"""Receding-horizon replay of a scenario, against two baselines.

Strategies, each through the one model (:func:`controller.physics.step`):

- ``no_battery``: the house as is; every surplus exported, every deficit imported.
- ``self_consumption``: the battery stores PV surplus and covers deficits; no grid charging,
  no export from the battery.
- ``hemsd``: every interval the planner is solved over the horizon it can see and the first
  slot is applied. After the deterministic planner, self-use slots follow the real house and the
  others hold the planned power (see :func:`controller.physics.followed_request_w`). After the recourse planner the
  executor picks the slot's mode from what the house really does, weighed against the
  planner's value of the energy the slot leaves stored (:func:`controller.planner.recourse.decide_known`),
  as the daemon's control loop does on every reading.

``perfect`` forecasts give the planner the true future. ``realistic`` ones give it only the
prices a day-ahead market has published (the next local day's from 13:00) and PV/load from
:mod:`controller.forecast.history`, fed with the past alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from controller.config.models import ExecutorConfig
from controller.forecast.errors import DayErrors, ErrorTable, hindcast_day, settled_days
from controller.forecast.history import forecast_load, forecast_pv
from controller.physics import (
    Action,
    BatteryParams,
    GridLimits,
    IntervalResult,
    followed_request_w,
    mode_request_w,
    step,
)
from controller.planner import recourse
from controller.planner.deterministic import solve
from controller.planner.plan import EndValue, Horizon, PlanConstraints, classify
from controller.sim.scenario import Scenario, ScenarioError, load_scenario

FloatArray = npt.NDArray[np.float64]
FORECASTS = ("perfect", "realistic")
# deterministic: controller.planner.deterministic on the forecast; recourse: controller.planner.recourse on the
# forecast and the spread of past forecast errors (realistic forecasts; none with perfect ones)
PLANNERS = ("deterministic", "recourse")
PUBLICATION_HOUR = 13  # local hour from which the next day's day-ahead prices are known
DEFAULT_END_VALUE = EndValue(import_percentile=30.0)
# Realistic forecasts: decision margin, times the horizon's median gap between import and
# export price (what a kWh of PV is worth more stored than exported: what a wrong guess costs).
MARGIN_FRACTION = 0.06
NO_LIMITS = GridLimits()


@dataclass(frozen=True)
class StrategyTotals:
    cost: float
    import_kwh: float
    export_kwh: float
    cycles: float  # stored energy discharged over the usable capacity
    solve_ms: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, float]:
        out = {
            "cost": round(self.cost, 4),
            "import_kwh": round(self.import_kwh, 3),
            "export_kwh": round(self.export_kwh, 3),
            "cycles": round(self.cycles, 3),
        }
        if self.solve_ms:
            out["solve_ms_median"] = round(float(np.median(self.solve_ms)), 3)
            out["solve_ms_p95"] = round(float(np.percentile(self.solve_ms, 95)), 3)
        return out


@dataclass(frozen=True)
class BacktestResult:
    currency: str
    intervals: int
    strategies: dict[str, StrategyTotals]

    def to_dict(self) -> dict[str, object]:
        return {
            "currency": self.currency,
            "intervals": self.intervals,
            "strategies": {name: totals.to_dict() for name, totals in self.strategies.items()},
        }


def default_timezone(scenario: Scenario) -> ZoneInfo:
    """The market's zone: Warsaw for PLN scenarios, Berlin (CET, also Brussels' offset) otherwise."""
    return ZoneInfo("Europe/Warsaw" if scenario.currency == "PLN" else "Europe/Berlin")


def no_battery(scenario: Scenario) -> StrategyTotals:
    grid_kwh = (scenario.load_w - scenario.pv_w) * scenario.step_h / 1000.0
    imported, exported = np.maximum(grid_kwh, 0.0), np.maximum(-grid_kwh, 0.0)
    cost = float(imported @ scenario.import_price - exported @ scenario.export_price)
    return StrategyTotals(cost, float(imported.sum()), float(exported.sum()), 0.0)


class _Meter:
    """Sums an interval's flows and costs as a strategy runs."""

    def __init__(self, params: BatteryParams) -> None:
        self.params = params
        self.cost = self.imported = self.exported = self.discharged_stored = 0.0

    def add(self, r: IntervalResult, import_price: float, export_price: float) -> None:
        self.cost += r.cost(import_price, export_price, self.params.wear_cost_per_kwh)
        self.imported += r.import_kwh
        self.exported += r.export_kwh
        self.discharged_stored += r.discharge_kwh / self.params.discharge_efficiency

    def totals(self, solve_ms: tuple[float, ...] = ()) -> StrategyTotals:
        usable = self.params.e_max_kwh - self.params.e_min_kwh
        return StrategyTotals(
            self.cost, self.imported, self.exported, self.discharged_stored / usable, solve_ms
        )


def self_consumption(scenario: Scenario, params: BatteryParams, initial_soc_pct: float) -> StrategyTotals:
    meter = _Meter(params)
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


def published_stop(scenario: Scenario, tz: ZoneInfo) -> npt.NDArray[np.intp]:
    """For each interval, the end (exclusive index) of the prices known at its start."""
    stops = np.empty(len(scenario), dtype=np.intp)
    step_s = scenario.step.total_seconds()
    cache: dict[tuple[object, int], int] = {}
    for i, epoch in enumerate(scenario.epoch_s().tolist()):
        local = datetime.fromtimestamp(epoch, tz)
        days = 2 if local.hour >= PUBLICATION_HOUR else 1
        key = (local.date(), days)
        if key not in cache:
            midnight = datetime.combine(local.date() + timedelta(days=days), datetime.min.time(), tz)
            cache[key] = round((midnight - scenario.start).total_seconds() / step_s)
        stops[i] = min(cache[key], len(scenario))
    return stops


@dataclass(frozen=True)
class PlannerSettings:
    """How the backtest runs the planner (the rest comes from the battery and the scenario)."""

    forecast: str = "perfect"
    horizon_hours: float = 48.0
    end_value: EndValue = DEFAULT_END_VALUE
    timezone: ZoneInfo | None = None  # the market's zone; from the scenario when None
    # The deterministic planner's decision margin as a fraction of the horizon's median
    # import-export gap; None: MARGIN_FRACTION with realistic forecasts, else none (the recourse
    # planner prices the forecast's uncertainty itself and takes no margin).
    margin_fraction: float | None = None
    soc_step_kwh: float | None = None
    planner: str = "deterministic"

    def __post_init__(self) -> None:
        if self.forecast not in FORECASTS:
            raise ValueError(f"forecast must be one of {', '.join(FORECASTS)}, got {self.forecast!r}")
        if self.planner not in PLANNERS:
            raise ValueError(f"planner must be one of {', '.join(PLANNERS)}, got {self.planner!r}")
        if not self.horizon_hours > 0:
            raise ValueError(f"horizon_hours must be > 0, got {self.horizon_hours!r}")


PERFECT = PlannerSettings()


def hemsd(
    scenario: Scenario,
    params: BatteryParams,
    initial_soc_pct: float,
    limits: GridLimits = NO_LIMITS,
    settings: PlannerSettings = PERFECT,
) -> StrategyTotals:
    """Re-plan every interval over what the planner can see; apply the first slot to the real house."""
    n, dt, spd = len(scenario), scenario.step_h, scenario.steps_per_day
    realistic = settings.forecast == "realistic"
    stops = np.minimum(np.arange(n) + max(1, round(settings.horizon_hours / dt)), n)
    if realistic:
        stops = np.minimum(stops, published_stop(scenario, settings.timezone or default_timezone(scenario)))
    use_recourse = settings.planner == "recourse"
    fraction = settings.margin_fraction
    if fraction is None:
        fraction = MARGIN_FRACTION if realistic else 0.0
    spread = _Spread(scenario, round(settings.horizon_hours / dt)) if use_recourse and realistic else None
    pv, load = scenario.pv_w, scenario.load_w
    import_price, export_price = scenario.import_price, scenario.export_price
    meter = _Meter(params)
    e = params.energy_kwh(initial_soc_pct)
    solve_ms: list[float] = []
    for i in range(n):
        pv_i, load_i, pi, pe = float(pv[i]), float(load[i]), float(import_price[i]), float(export_price[i])
        if realistic and i < spd:  # no day of history to forecast from yet: plain self-use
            request = load_i - pv_i
        else:
            stop = int(stops[i])
            if realistic:
                pv_f, load_f = forecast_pv(pv[:i], stop - i, spd), forecast_load(load[:i], stop - i, spd)
            else:
                pv_f, load_f = pv[i:stop], load[i:stop]
            started = time.perf_counter()
            h = Horizon(np.full(stop - i, dt), pv_f, load_f, import_price[i:stop], export_price[i:stop])
            # Past the scenario's end nothing is bought or sold: energy left then is worth
            # nothing, as for the optimum the results are compared with.
            value = 0.0 if stop == n else settings.end_value.per_stored_kwh(params, h.import_price)
            if use_recourse:
                errors, chances = (
                    spread.at(i, stop - i) if spread is not None else (np.zeros((stop - i, 1)), None)
                )
                values = recourse.slot_values(
                    params, limits, h, errors, value, settings.soc_step_kwh, chances
                )
                decision = recourse.followable(
                    recourse.decide_known(params, limits, values, 0, e, load_i - pv_i, load_i, dt, pi, pe),
                    load_i - pv_i,
                    pe,
                    IDLE_STEP_W,
                )
                action, planned_w = decision.action, decision.battery_w
                decided_on_w = load_i - pv_i  # the real house, as the daemon reads it
            else:
                gap = float(np.median(h.import_price - h.export_price))
                constraints = PlanConstraints(self_use_margin_per_kwh=fraction * max(gap, 0.0))
                sol = solve(params, limits, e, h, value, constraints, settings.soc_step_kwh)
                first = slice(0, 1)
                action = classify(
                    params,
                    sol.e_kwh[first],
                    h.dt_h[first],
                    pv_f[first],
                    load_f[first],
                    sol.battery_w[first],
                    sol.pv_used_w[first],
                )[0]
                planned_w = float(sol.battery_w[0])
                decided_on_w = float(load_f[0] - pv_f[0])
            solve_ms.append((time.perf_counter() - started) * 1000.0)
            request = followed_request_w(action, planned_w, decided_on_w, load_i - pv_i)
        r = step(params, e, request, pv_i, load_i, dt, limits, curtail_export=pe < 0)
        meter.add(r, pi, pe)
        e = r.e_kwh
    return meter.totals(tuple(solve_ms))


class _Spread:
    """Net-load departures for the recourse planner from hindcasts of the scenario's past
    (:func:`controller.forecast.errors.history_spread`, each day's hindcast kept once made)."""

    def __init__(self, scenario: Scenario, n_ahead: int) -> None:
        self.scenario, self.n_ahead = scenario, n_ahead
        self.spd = scenario.steps_per_day
        self.days: dict[int, DayErrors] = {}
        self.table: tuple[int, ErrorTable] | None = None

    def at(self, i: int, n: int) -> tuple[FloatArray, FloatArray]:
        """The departures (n, K) of the ``n`` slots from interval ``i`` and their transitions."""
        today = i // self.spd
        if self.table is None or self.table[0] != today:
            s, now = self.scenario, today * self.spd
            wanted = settled_days(now, self.spd, self.n_ahead)
            self.days = {
                d: self.days[d]
                if d in self.days
                else hindcast_day(s.pv_w, s.load_w, self.spd, d, self.n_ahead, now)
                for d in wanted
            }
            self.table = (today, ErrorTable.from_days(self.days.values(), self.spd))
        ahead = np.arange(n)
        table, hour = self.table[1], ((i + ahead) % self.spd) * 24 // self.spd
        return table.spread_w(ahead * self.scenario.step_h, hour), table.transitions_for(hour)


IDLE_STEP_W = ExecutorConfig().power_step_w  # the daemon's smallest power step, as configured by default


def run_backtest(
    scenario: Scenario,
    params: BatteryParams,
    initial_soc_pct: float,
    limits: GridLimits = NO_LIMITS,
    settings: PlannerSettings = PERFECT,
) -> BacktestResult:
    return BacktestResult(
        currency=scenario.currency,
        intervals=len(scenario),
        strategies={
            "no_battery": no_battery(scenario),
            "self_consumption": self_consumption(scenario, params, initial_soc_pct),
            "hemsd": hemsd(scenario, params, initial_soc_pct, limits, settings),
        },
    )


# ----------------------------------------------------------------------------- command line

EXIT_DATA = 65  # sysexits EX_DATAERR: the scenario file is malformed
EXIT_CONFIG = 78  # sysexits EX_CONFIG: the configuration or the battery values are invalid


@dataclass(frozen=True, slots=True)
class BatteryOption:
    flag: str
    field: str
    scale: float  # command-line unit to BatteryParams unit
    help: str


BATTERY_OPTIONS = (
    BatteryOption("--battery-kwh", "capacity_kwh", 1.0, "usable capacity, kWh (default 10)"),
    BatteryOption("--charge-kw", "max_charge_w", 1000.0, "charge power limit, kW (default 5)"),
    BatteryOption("--discharge-kw", "max_discharge_w", 1000.0, "discharge power limit, kW (default 5)"),
    BatteryOption("--charge-efficiency", "charge_efficiency", 1.0, "0..1 (default 0.95)"),
    BatteryOption("--discharge-efficiency", "discharge_efficiency", 1.0, "0..1 (default 0.95)"),
    BatteryOption("--min-soc", "min_soc_pct", 1.0, "SoC floor, %% (default 10)"),
    BatteryOption("--max-soc", "max_soc_pct", 1.0, "SoC ceiling, %% (default 100)"),
    BatteryOption("--wear-cost", "wear_cost_per_kwh", 1.0, "cost per kWh charged or discharged (default 0)"),
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Replay a scenario CSV through the planner (re-planned every interval) and compare it with "
        "no battery and plain self-consumption."
    )
    parser.add_argument(
        "scenario", type=Path, help="scenario CSV (time, import_price, export_price, pv_w, load_w)"
    )
    parser.add_argument("--config", type=Path, help="read the [battery] section of this hemsd TOML file")
    for option in BATTERY_OPTIONS:
        parser.add_argument(option.flag, type=float, dest=option.field, help=option.help)
    parser.add_argument("--initial-soc", type=float, default=50.0, help="SoC at the start, %% (default 50)")
    parser.add_argument("--forecast", choices=FORECASTS, default="perfect", help="what the planner sees")
    parser.add_argument(
        "--planner",
        choices=PLANNERS,
        default="recourse",
        help="the recourse planner (the daemon's default) or the deterministic optimizer",
    )
    parser.add_argument("--horizon-hours", type=float, default=48.0, help="planning horizon (default 48)")
    parser.add_argument(
        "--soc-step-pct",
        type=float,
        help="the planner's grid of stored energy, %% of capacity (default 1; the daemon plans at 0.5, "
        "which takes about twice as long)",
    )
    parser.add_argument(
        "--timezone", help="market time zone for --forecast realistic (default from the file)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def battery_from_args(args: argparse.Namespace) -> BatteryParams:
    """Defaults, then the config file's [battery] section, then the command-line values."""
    values: dict[str, object] = {}
    if args.config is not None:
        with args.config.open("rb") as f:
            section = tomllib.load(f).get("battery", {})
        if not isinstance(section, dict):
            raise ValueError(f"{args.config}: [battery] must be a table")
        known = {f.name for f in fields(BatteryParams)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"{args.config}: unknown key(s) in [battery]: {', '.join(unknown)}")
        values.update(section)
    for option in BATTERY_OPTIONS:
        given = getattr(args, option.field)
        if given is not None:
            values[option.field] = given * option.scale
    return BatteryParams(**values)  # type: ignore[arg-type]  # validated by BatteryParams


def _inputs(args: argparse.Namespace) -> tuple[BatteryParams, PlannerSettings]:
    params = battery_from_args(args)
    if not params.min_soc_pct <= args.initial_soc <= params.max_soc_pct:
        raise ValueError(
            f"--initial-soc {args.initial_soc!r} outside the SoC window {params.min_soc_pct}..{params.max_soc_pct} %"
        )
    tz = ZoneInfo(args.timezone) if args.timezone else None
    step_kwh = None
    if args.soc_step_pct is not None:
        if not 0 < args.soc_step_pct <= 10:
            raise ValueError(f"--soc-step-pct {args.soc_step_pct!r} must be > 0 and <= 10")
        step_kwh = args.soc_step_pct / 100.0 * params.capacity_kwh
    return params, PlannerSettings(
        forecast=args.forecast,
        horizon_hours=args.horizon_hours,
        timezone=tz,
        planner=args.planner,
        soc_step_kwh=step_kwh,
    )


def run_command(args: argparse.Namespace) -> int:
    try:
        params, settings = _inputs(args)
    except (OSError, tomllib.TOMLDecodeError, ValueError, TypeError, ZoneInfoNotFoundError) as exc:
        print(f"hemsd backtest: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"hemsd backtest: {exc}", file=sys.stderr)
        return EXIT_DATA
    if scenario.filled_intervals:
        print(
            f"hemsd backtest: {scenario.name}: {scenario.filled_intervals} missing interval(s) filled "
            "with the row before",
            file=sys.stderr,
        )
    result = run_backtest(scenario, params, args.initial_soc, NO_LIMITS, settings)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(format_table(scenario, params, args.initial_soc, settings, result))
    return 0


def format_table(
    scenario: Scenario,
    params: BatteryParams,
    initial_soc: float,
    settings: PlannerSettings,
    result: BacktestResult,
) -> str:
    minutes = round(scenario.step_h * 60)
    lines = [
        f"{scenario.name}: {len(scenario)} intervals of {minutes} min from {scenario.start:%Y-%m-%d}, "
        f"{settings.forecast} forecasts, {settings.horizon_hours:g} h horizon",
        f"battery {params.capacity_kwh:g} kWh, SoC {params.min_soc_pct:g}-{params.max_soc_pct:g} %, "
        f"{params.max_charge_w / 1000:g}/{params.max_discharge_w / 1000:g} kW, efficiency "
        f"{params.charge_efficiency:g}/{params.discharge_efficiency:g}, start {initial_soc:g} %, "
        f"wear {params.wear_cost_per_kwh:g}/kWh",
        "",
        f"{'strategy':<18}{'cost ' + result.currency:>14}{'import kWh':>13}{'export kWh':>13}"
        f"{'cycles':>9}{'saved':>12}",
    ]
    base = result.strategies["no_battery"].cost
    for name, totals in result.strategies.items():
        lines.append(
            f"{name:<18}{totals.cost:>14.2f}{totals.import_kwh:>13.1f}{totals.export_kwh:>13.1f}"
            f"{totals.cycles:>9.1f}{base - totals.cost:>12.2f}"
        )
    solve = result.strategies["hemsd"].to_dict()
    if "solve_ms_median" in solve:
        lines.append(
            f"\nplanner solve time: median {solve['solve_ms_median']:.2f} ms, "
            f"p95 {solve['solve_ms_p95']:.2f} ms"
        )
    return "\n".join(lines)
