"""A load's power and a thermal store's temperature, as measured and as modelled between readings.

A power reading stands for ``POWER_FRESH``; without a fresh one a load draws as it was told
(:func:`modelled_w`). A store's temperature goes on from its last reading (or its setpoint at the
start) with the heat its element or pump puts in and the hot water or house's heat and loss it
gives off (:func:`advance_store`); a reading (:func:`take_temperature`) sets it, and what the
model was off by counts as heat drawn beyond (or short of) the profile since local midnight.
No I/O.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, tzinfo

import numpy as np

from controller.config.loads import PROFILE_STEP_MIN, ApplianceConfig, HeatPumpConfig, WaterHeaterConfig
from controller.control.load_state import LoadRuntime, running
from controller.loads.thermal import DRAW_SHAPE

EXPECT_RUNNING_BELOW_K = 2.0  # a tank switched on must draw unless within this of its top
POWER_FRESH = timedelta(minutes=5)  # an older power reading is no reading: the load's model stands in
MEASURED_RANGE_C = (-40.0, 130.0)  # a store's temperature reading outside this is a sensor's fault
# a reading this far from where a measured store is (a sensor's glitch, or a store that did change
# so fast) is taken once the next reading, within CONFIRM_K of it, confirms it
JUMP_K = 20.0
CONFIRM_K = 5.0
# a load's power reading outside this is a meter's fault (loads are configured up to 50 kW; a
# plug's meter may read a few watts below zero)
MEASURED_RANGE_W = (-100.0, 100_000.0)


def check_power(power_w: float) -> float:
    """A load's measured power, refused (ValueError naming it) where no meter of a load gives it."""
    low, high = MEASURED_RANGE_W
    if not (math.isfinite(power_w) and low <= power_w <= high):
        raise ValueError(f"power: {power_w!r} W is outside {low:g}..{high:g}")
    return power_w


def measured_w(load: LoadRuntime, now: datetime) -> float | None:
    """The load's last power reading if it is fresh."""
    if load.power_w is None or load.power_at is None or now - load.power_at >= POWER_FRESH:
        return None
    return load.power_w


def modelled_w(load: LoadRuntime, now: datetime, tz: tzinfo, outdoor_c: float | None) -> float:
    """A load's power as commanded: a running appliance its profile's power at this point of
    its run; a store switched on its rated power, or what holds it once at its top; a heat pump
    left to its own thermostat (``normal``) its rated power below its thermostat's band
    (``setpoint_c - hysteresis_k``), within it what holds the house there."""
    c = load.config
    if isinstance(c, ApplianceConfig):
        if not running(load.output):
            return 0.0
        profile = c.profile()
        started = load.appliance.started_at
        if started is None:
            return max(profile)
        quarter = int((now - started) / timedelta(minutes=PROFILE_STEP_MIN))
        return profile[quarter] if 0 <= quarter < len(profile) else 0.0
    rated, cop = rated_w(c), cop_of(c)
    temp = load.temperature_c if load.temperature_c is not None else setpoint(c)
    if load.output == "normal" and isinstance(c, HeatPumpConfig):
        # within its thermostat's band it runs part of the time: on average what holds it there
        top = c.setpoint_c - c.hysteresis_k
    elif running(load.output):
        top = c.max_c
    else:
        return 0.0
    if temp < top:
        return rated
    return min(rated, max(heat_out_w(load, now, tz, outdoor_c), 0.0) / cop)


def advance_store(load: LoadRuntime, now: datetime, dt_h: float, tz: tzinfo, outdoor_c: float | None) -> None:
    """Move a store's temperature on by ``dt_h`` hours, and what its profile expected it to give."""
    c = load.config
    if isinstance(c, ApplianceConfig) or load.temperature_c is None or dt_h <= 0:
        return
    day = now.astimezone(tz).date()
    if day != load.day:  # a new local day: what it draws is counted from nothing
        load.day, load.drawn_today_kwh, load.expected_today_kwh = day, 0.0, 0.0
    measured = measured_w(load, now)
    power = modelled_w(load, now, tz, outdoor_c) if measured is None else measured
    cop = cop_of(c)
    load.expected_since_kwh += demand_w(load, now, tz, outdoor_c) / 1000.0 * dt_h
    temp = load.temperature_c + (
        power * cop / 1000.0 * dt_h - heat_out_w(load, now, tz, outdoor_c) / 1000.0 * dt_h
    ) / capacity(c)
    load.temperature_c = min(temp, c.max_c)


def take_temperature(load: LoadRuntime, temperature_c: float, now: datetime) -> None:
    """A store's measured temperature: where it is now, the model going on from it until the next
    reading. A value no sensor of a store gives is refused, naming it; nothing changes. A jump of
    more than ``JUMP_K`` from where the store was measured to be is refused alike until the next
    reading confirms it."""
    c = load.config
    if isinstance(c, ApplianceConfig):
        raise TypeError(f"temperature_topic: {c.name} is an appliance, not a store")
    low, high = MEASURED_RANGE_C
    if not (math.isfinite(temperature_c) and low <= temperature_c <= high):
        raise ValueError(f"temperature: {temperature_c!r} degC is outside {low:g}..{high:g}")
    held, load.held_c = load.held_c, None
    if (
        load.measured_at is not None
        and load.temperature_c is not None
        and abs(temperature_c - load.temperature_c) > JUMP_K
        and (held is None or abs(temperature_c - held) > CONFIRM_K)
    ):
        load.held_c = temperature_c
        raise ValueError(
            f"temperature: {temperature_c:g} degC is more than {JUMP_K:g} K from the store's "
            f"{load.temperature_c:.1f}; held until the next reading confirms it"
        )
    if load.measured_at is not None and load.temperature_c is not None:
        # the model went on from the last reading with the profile's draw: what it is off by
        # is heat drawn beyond (or short of) the profile. Counted with its sign: a reading that
        # arrives late, or a tick that stepped past it, is off one way and the next the other,
        # which cancels in the sum but not if each were held at zero or above
        beyond = (load.temperature_c - temperature_c) * capacity(c)
        load.drawn_today_kwh += load.expected_since_kwh + beyond
        load.expected_today_kwh += load.expected_since_kwh
    load.expected_since_kwh = 0.0
    load.temperature_c, load.measured_at = temperature_c, now


def temperature_fresh(load: LoadRuntime, now: datetime) -> bool:
    """Is the store's last temperature reading recent enough to stand for it."""
    c = load.config
    if isinstance(c, ApplianceConfig) or load.measured_at is None:
        return False
    return now - load.measured_at <= timedelta(minutes=c.temperature_max_age_min)


def should_draw(load: LoadRuntime) -> bool:
    """Must the load draw when switched on: an appliance always, a store unless near its top."""
    c = load.config
    if isinstance(c, ApplianceConfig) or load.temperature_c is None:
        return True
    return load.temperature_c < c.max_c - EXPECT_RUNNING_BELOW_K


def demand_w(load: LoadRuntime, now: datetime, tz: tzinfo, outdoor_c: float | None = None) -> float:
    """The hot water or the house's heat a store's profile draws now (W)."""
    c = load.config
    if isinstance(c, ApplianceConfig):
        return 0.0
    hour = now.astimezone(tz).hour
    if isinstance(c, HeatPumpConfig):
        air = None if outdoor_c is None else np.array([outdoor_c])
        return float(c.demand_w(np.array([hour], dtype=np.intp), air)[0])
    profile = c.draw_profile_kwh or tuple(c.draw_kwh_per_day * x / sum(DRAW_SHAPE) for x in DRAW_SHAPE)
    return profile[hour] * 1000.0


def heat_out_w(load: LoadRuntime, now: datetime, tz: tzinfo, outdoor_c: float | None = None) -> float:
    """The heat a store gives off now (W): the hot water or the house's heat drawn, and its loss."""
    c = load.config
    temp = load.temperature_c
    if isinstance(c, ApplianceConfig) or temp is None:
        return 0.0
    ref = c.setpoint_c if isinstance(c, HeatPumpConfig) else c.ambient_c
    return demand_w(load, now, tz, outdoor_c) + c.loss_w_per_k * (temp - ref)


def capacity(config: WaterHeaterConfig | HeatPumpConfig) -> float:
    """A store's heat per kelvin (kWh/K)."""
    return config.capacity_kwh_per_k if isinstance(config, HeatPumpConfig) else config.capacity_kwh_per_k()


def rated_w(config: WaterHeaterConfig | HeatPumpConfig) -> float:
    """A store's electric power when switched on (W)."""
    return config.electric_w if isinstance(config, HeatPumpConfig) else config.element_w


def cop_of(config: WaterHeaterConfig | HeatPumpConfig) -> float:
    """The heat a store gets per unit of electricity: a heat pump's COP, an element's 1."""
    return config.cop if isinstance(config, HeatPumpConfig) else 1.0


def setpoint(config: WaterHeaterConfig | HeatPumpConfig) -> float:
    """A store's temperature until the model has run: its default's setpoint."""
    return config.setpoint_c if isinstance(config, HeatPumpConfig) else config.thermostat_c
