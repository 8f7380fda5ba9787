"""PV/battery/grid physics shared by the optimizer, the emulator, the backtest and the what-if tools.

Per interval of length ``dt_h`` hours, on the AC side in W:

    grid = load - pv_used + charge - discharge          (+ import / - export)
    e'   = e + charge*dt*eta_charge - discharge*dt/eta_discharge

Battery power ``battery_w`` follows the project's sign convention: + discharge, - charge.
Energies are kWh, powers W, prices currency/kWh.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class BatteryParams:
    capacity_kwh: float = 10.0
    min_soc_pct: float = 10.0
    max_soc_pct: float = 100.0
    max_charge_w: float = 5000.0
    max_discharge_w: float = 5000.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    wear_cost_per_kwh: float = 0.0
    # Charge power tapers linearly from full power at taper_start_soc_pct to
    # taper_end_fraction * max_charge_w at 100 % SoC. None disables the taper.
    taper_start_soc_pct: float | None = None
    taper_end_fraction: float = 0.2

    def __post_init__(self) -> None:
        checks = (
            ("capacity_kwh", self.capacity_kwh > 0),
            ("min_soc_pct", 0 <= self.min_soc_pct < 100),
            ("max_soc_pct", self.min_soc_pct < self.max_soc_pct <= 100),
            ("max_charge_w", self.max_charge_w >= 0),
            ("max_discharge_w", self.max_discharge_w >= 0),
            ("charge_efficiency", 0 < self.charge_efficiency <= 1),
            ("discharge_efficiency", 0 < self.discharge_efficiency <= 1),
            ("wear_cost_per_kwh", self.wear_cost_per_kwh >= 0),
            ("taper_end_fraction", 0 < self.taper_end_fraction <= 1),
        )
        for name, ok in checks:
            if not ok:
                raise ValueError(f"battery.{name} out of range: {getattr(self, name)!r}")
        if self.taper_start_soc_pct is not None and not 0 <= self.taper_start_soc_pct < 100:
            raise ValueError(f"battery.taper_start_soc_pct out of range: {self.taper_start_soc_pct!r}")

    @property
    def e_min_kwh(self) -> float:
        return self.capacity_kwh * self.min_soc_pct / 100.0

    @property
    def e_max_kwh(self) -> float:
        return self.capacity_kwh * self.max_soc_pct / 100.0

    def soc_pct(self, e_kwh: float) -> float:
        return 100.0 * e_kwh / self.capacity_kwh

    def energy_kwh(self, soc_pct: float) -> float:
        return self.capacity_kwh * soc_pct / 100.0

    def charge_limit_w(self, soc_pct: float) -> float:
        """Charge power limit at this SoC (the taper, when configured)."""
        start = self.taper_start_soc_pct
        if start is None or soc_pct <= start:
            return self.max_charge_w
        frac = min(1.0, (soc_pct - start) / (100.0 - start))
        return self.max_charge_w * (1.0 - frac * (1.0 - self.taper_end_fraction))


@dataclass(frozen=True, slots=True)
class GridLimits:
    """Connection limits: import (main fuse) and export (grid operator's cap), W."""

    max_import_w: float = math.inf
    max_export_w: float = math.inf
    # A capacity charge's peak as the planners see it: import above peak_w (mean over a slot)
    # costs peak_price_per_kwh more (controller.settlement.peak chooses both).
    peak_w: float = math.inf
    peak_price_per_kwh: float = 0.0

    def over_peak_cost(
        self, grid_kwh: npt.NDArray[np.float64], dt_h: npt.ArrayLike
    ) -> npt.NDArray[np.float64]:
        """The surcharge on import above the peak, per slot (0 without a peak)."""
        over: npt.NDArray[np.float64] = self.peak_price_per_kwh * np.maximum(
            grid_kwh - self.peak_w * np.asarray(dt_h, dtype=np.float64) / 1000.0, 0.0
        )
        return over


@dataclass(frozen=True, slots=True)
class IntervalResult:
    e_kwh: float
    battery_w: float
    grid_w: float
    pv_used_w: float
    charge_kwh: float
    discharge_kwh: float
    import_kwh: float
    export_kwh: float

    def cost(self, import_price: float, export_price: float, wear_cost_per_kwh: float = 0.0) -> float:
        return (
            self.import_kwh * import_price
            - self.export_kwh * export_price
            + wear_cost_per_kwh * (self.charge_kwh + self.discharge_kwh)
        )


def feasible_battery_w(params: BatteryParams, e_kwh: float, battery_w: float, dt_h: float) -> float:
    """Clamp a requested battery power to the power limits and to the energy left in the SoC window."""
    if battery_w >= 0:
        room = max(0.0, e_kwh - params.e_min_kwh) * params.discharge_efficiency / dt_h * 1000.0
        return min(battery_w, params.max_discharge_w, room)
    room = max(0.0, params.e_max_kwh - e_kwh) / (params.charge_efficiency * dt_h) * 1000.0
    limit = min(params.charge_limit_w(params.soc_pct(e_kwh)), room)
    return -min(-battery_w, limit)


def step(
    params: BatteryParams,
    e_kwh: float,
    battery_w: float,
    pv_w: float,
    load_w: float,
    dt_h: float,
    limits: GridLimits = GridLimits(),
    curtail_export: bool = False,
) -> IntervalResult:
    """Advance one interval with the battery asked for ``battery_w`` (+ discharge / - charge).

    The request is clamped to what the battery can do. PV is curtailed when export would
    exceed the export limit, or entirely down to the house's needs when ``curtail_export``
    (export at a negative price costs money). Import above the fuse limit is not clamped here:
    the load is physical; the executor's guard keeps planned charging under the fuse.
    """
    if dt_h <= 0:
        raise ValueError(f"dt_h must be > 0, got {dt_h!r}")
    b = feasible_battery_w(params, e_kwh, battery_w, dt_h)
    pv_used = max(0.0, pv_w)
    grid = load_w - pv_used - b
    if grid < 0:
        allowed_export = 0.0 if curtail_export else limits.max_export_w
        if -grid > allowed_export:
            pv_used = max(0.0, pv_used - (-grid - allowed_export))
            grid = load_w - pv_used - b
    charge_kwh = max(0.0, -b) * dt_h / 1000.0
    discharge_kwh = max(0.0, b) * dt_h / 1000.0
    e_next = e_kwh + charge_kwh * params.charge_efficiency - discharge_kwh / params.discharge_efficiency
    e_next = min(max(e_next, min(e_kwh, params.e_min_kwh)), max(e_kwh, params.e_max_kwh))
    return IntervalResult(
        e_kwh=e_next,
        battery_w=b,
        grid_w=grid,
        pv_used_w=pv_used,
        charge_kwh=charge_kwh,
        discharge_kwh=discharge_kwh,
        import_kwh=max(0.0, grid) * dt_h / 1000.0,
        export_kwh=max(0.0, -grid) * dt_h / 1000.0,
    )


def self_use_request_w(pv_w: float, load_w: float) -> float:
    """The battery power self-use asks for: cover the deficit, store the surplus."""
    return load_w - pv_w


class Action(enum.StrEnum):
    """What a slot asks of the battery; how each responds to the real house is written below
    (:func:`followed_request_w`, :func:`mode_request_w`)."""

    SELF_USE = "self_use"  # cover the deficit from the battery, store the surplus
    CHARGE = "charge"  # at a planned power, from the grid where PV falls short
    HOLD = "hold"  # never discharge; store a PV surplus
    DISCHARGE = "discharge"  # at a planned power
    EXPORT_LIMIT = "export_limit"  # self-use with PV curtailed to an export limit
    IDLE = "idle"  # neither charge nor discharge: a PV surplus exported, a deficit imported


def unexpected_surplus(forecast_net: npt.ArrayLike, real_net: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """PV beyond the forecast: how far the real net load (load - PV) falls below the forecast's
    (0 where it does not), in the units given; element-wise on arrays."""
    return np.maximum(np.subtract(forecast_net, real_net, dtype=np.float64), 0.0)


def followed_request_w(action: str, planned_w: float, forecast_net_w: float, net_w: float) -> float:
    """The battery power requested when a planned slot meets the real house (+ discharge).

    Self-use (and export limit) follows the house. Discharge holds the planned power (the grid
    takes the house's departure from the forecast). Hold and charge hold the planned power too,
    but store PV beyond the forecast rather than export it (:func:`unexpected_surplus`; the
    recourse planner scores charge and hold by the same rule). With a perfect forecast every
    action gives exactly the planned flows. What the inverter itself does in each of its modes is
    :func:`mode_request_w`.
    """
    if action in (Action.SELF_USE, Action.EXPORT_LIMIT):
        return net_w
    if action == Action.DISCHARGE:
        return planned_w
    if action == Action.IDLE:
        return 0.0
    return planned_w - float(unexpected_surplus(forecast_net_w, net_w))


def mode_request_w(
    mode: str,
    params: BatteryParams,
    e_kwh: float,
    pv_w: float,
    load_w: float,
    power_w: float = 0.0,
    target_soc_pct: float | None = None,
) -> float:
    """The battery power an inverter in ``mode`` asks for (before the physical clamp).

    - self_use: cover deficit from the battery, store surplus.
    - charge: charge at ``power_w`` from the grid (or the PV surplus if larger) up to the target.
    - hold: store PV surplus, never discharge.
    - discharge: discharge at ``power_w`` down to the target floor.
    - idle: neither charge nor discharge (the PV surplus is exported, a deficit imported).
    """
    soc = params.soc_pct(e_kwh)
    surplus = pv_w - load_w
    if mode == Action.SELF_USE:
        return self_use_request_w(pv_w, load_w)
    if mode == Action.CHARGE:
        if target_soc_pct is not None and soc >= target_soc_pct:
            return -max(0.0, surplus)
        return -max(power_w, surplus, 0.0)
    if mode == Action.HOLD:
        return -max(0.0, surplus)
    if mode == Action.IDLE:
        return 0.0
    if mode == Action.DISCHARGE:
        if target_soc_pct is not None and soc <= target_soc_pct:
            return -max(0.0, surplus)
        return max(power_w, 0.0)
    raise ValueError(f"unknown battery mode {mode!r}; known: self_use, charge, hold, discharge, idle")


FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class IntervalArrays:
    """Outcome of battery energy changes over intervals, element-wise (numpy broadcasting).

    ``cost`` is ``inf`` where the change is infeasible (power, grid or policy limits).
    """

    cost: FloatArray
    grid_w: FloatArray
    battery_w: FloatArray
    pv_used_w: FloatArray


def charge_limit_w_array(params: BatteryParams, soc_pct: FloatArray) -> FloatArray:
    """:meth:`BatteryParams.charge_limit_w` for an array of SoC values."""
    soc = np.asarray(soc_pct, dtype=np.float64)
    if params.taper_start_soc_pct is None:
        return np.full_like(soc, params.max_charge_w)
    start = params.taper_start_soc_pct
    frac = np.clip((soc - start) / (100.0 - start), 0.0, 1.0)
    return params.max_charge_w * (1.0 - frac * (1.0 - params.taper_end_fraction))


def interval_outcome(
    params: BatteryParams,
    limits: GridLimits,
    delta_e_kwh: npt.ArrayLike,
    dt_h: npt.ArrayLike,
    pv_w: npt.ArrayLike,
    load_w: npt.ArrayLike,
    import_price: npt.ArrayLike,
    export_price: npt.ArrayLike,
    allow_grid_charge: bool = True,
    allow_battery_export: bool = True,
) -> IntervalArrays:
    """Closed form of one interval for a given change of stored energy, vectorised.

    The change fixes the battery's AC power (charge before the charge loss, discharge after
    the discharge loss), so only one direction flows per interval: the model cannot profit
    from charging and discharging at once. PV is curtailed exactly as :func:`step` does with
    ``curtail_export`` set where the export price is negative, and down to the export limit.
    The battery may not raise the import above ``max(max_import_w, load - pv)``.
    """
    de = np.asarray(delta_e_kwh, dtype=np.float64)
    dt = np.asarray(dt_h, dtype=np.float64)
    pe = np.asarray(export_price, dtype=np.float64)
    pi = np.asarray(import_price, dtype=np.float64)
    charge = np.maximum(de, 0.0) / params.charge_efficiency
    discharge = np.maximum(-de, 0.0) * params.discharge_efficiency
    pv = np.maximum(np.asarray(pv_w, dtype=np.float64), 0.0) * dt / 1000.0
    load = np.asarray(load_w, dtype=np.float64) * dt / 1000.0
    g_raw = load - pv + charge - discharge
    export_target = np.where(pe < 0, 0.0, limits.max_export_w * dt / 1000.0)
    grid = np.minimum(np.maximum(g_raw, -export_target), g_raw + pv)
    eps = 1e-9
    feasible = (
        (charge <= params.max_charge_w * dt / 1000.0 + eps)
        & (discharge <= params.max_discharge_w * dt / 1000.0 + eps)
        & (grid >= -limits.max_export_w * dt / 1000.0 - eps)
        & (grid <= np.maximum(limits.max_import_w * dt / 1000.0, load - pv) + eps)
    )
    if not allow_grid_charge:
        feasible &= charge <= np.maximum(pv - load, 0.0) + eps
    if not allow_battery_export:
        feasible &= discharge <= np.maximum(load - pv, 0.0) + eps
    cost = (
        pi * np.maximum(grid, 0.0)
        + pe * np.minimum(grid, 0.0)
        + params.wear_cost_per_kwh * (charge + discharge)
    )
    if limits.peak_price_per_kwh and math.isfinite(limits.peak_w):
        cost = cost + limits.over_peak_cost(grid, dt)
    to_w = 1000.0 / dt
    return IntervalArrays(
        cost=np.where(feasible, cost, np.inf),
        grid_w=grid * to_w,
        battery_w=(discharge - charge) * to_w,
        pv_used_w=(pv - (grid - g_raw)) * to_w,
    )


def interval_cost(
    params: BatteryParams,
    limits: GridLimits,
    delta_e_kwh: float,
    dt_h: float,
    pv_w: float,
    load_w: float,
    import_price: float,
    export_price: float,
    allow_grid_charge: bool = True,
    allow_battery_export: bool = True,
) -> float:
    """Scalar twin of :func:`interval_outcome` (its cost only), for hot loops over few values."""
    charge = max(delta_e_kwh, 0.0) / params.charge_efficiency
    discharge = max(-delta_e_kwh, 0.0) * params.discharge_efficiency
    pv = max(pv_w, 0.0) * dt_h / 1000.0
    load = load_w * dt_h / 1000.0
    g_raw = load - pv + charge - discharge
    export_target = 0.0 if export_price < 0 else limits.max_export_w * dt_h / 1000.0
    grid = min(max(g_raw, -export_target), g_raw + pv)
    eps = 1e-9
    if (
        charge > params.max_charge_w * dt_h / 1000.0 + eps
        or discharge > params.max_discharge_w * dt_h / 1000.0 + eps
        or grid < -limits.max_export_w * dt_h / 1000.0 - eps
        or grid > max(limits.max_import_w * dt_h / 1000.0, load - pv) + eps
        or (not allow_grid_charge and charge > max(pv - load, 0.0) + eps)
        or (not allow_battery_export and discharge > max(load - pv, 0.0) + eps)
    ):
        return math.inf
    over = 0.0
    if limits.peak_price_per_kwh and math.isfinite(limits.peak_w):
        over = limits.peak_price_per_kwh * max(grid - limits.peak_w * dt_h / 1000.0, 0.0)
    return (
        import_price * max(grid, 0.0)
        + export_price * min(grid, 0.0)
        + params.wear_cost_per_kwh * (charge + discharge)
        + over
    )
