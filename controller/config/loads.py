"""The ``[[loads]]`` tables: flexible loads hemsd plans with the battery and switches.

Each table has a ``type`` (an appliance, a water heater, a heat pump; ``LOAD_TYPES`` is the
registry of their models) and a ``[loads.switch]`` saying how hemsd switches it: through a Home
Assistant entity (hemsd publishes a command and state topic per load, with discovery, for an
automation or a switch to follow) or a plain MQTT topic and payloads (Tasmota, Shelly,
Zigbee2MQTT), with the load's measured power read back from a topic where there is one.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from controller.config.base import Section

LoadName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]{0,31}$")]
Topic = Annotated[str, Field(pattern=r"^([^#+\x00\s]+)?$", max_length=200)]
Payload = Annotated[str, Field(min_length=1, max_length=200)]
JsonPath = Annotated[str, Field(pattern=r"^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)?$")]
WATER_KWH_PER_L_K = 4.186 / 3600.0  # heat capacity of water: kWh per litre and kelvin
PROFILE_STEP_MIN = 15  # an appliance's power profile: one value per quarter-hour


class SwitchConfig(Section):
    """How hemsd switches a load and reads its power."""

    # "home_assistant": hemsd publishes <base>/load/<name>/command (ON/OFF, or BOOST/NORMAL/BLOCK
    # for a heat pump) and offers a switch in Home Assistant; "mqtt": the payloads below go to
    # command_topic (a Tasmota, Shelly or Zigbee2MQTT device's own topic)
    via: Literal["home_assistant", "mqtt"] = "home_assistant"
    command_topic: Topic = ""
    payload_on: Payload = "ON"
    payload_off: Payload = "OFF"
    # SG-Ready states of a heat pump (payload_on / payload_off are not used for one)
    payload_boost: Payload = "BOOST"
    payload_normal: Payload = "NORMAL"
    payload_block: Payload = "BLOCK"
    # the load's measured power (W): a number, or JSON with the number at power_json_path
    # (dotted, e.g. "ENERGY.Power" for Tasmota); empty: not measured
    power_topic: Topic = ""
    power_json_path: JsonPath = ""
    # switched on, the load counts as running above this power
    running_above_w: Annotated[float, Field(ge=0, le=100_000)] = 20.0
    # switched on and still not running after this many power readings: commanded once more,
    # then the load falls back to its default, is marked unreliable and an event is raised
    unresponsive_readings: Annotated[int, Field(ge=2, le=100)] = 6
    # marked unreliable, the load is tried again (planned and switched) after this many minutes;
    # 0: only when Home Assistant's "reliable again" button is pressed. The mark survives a restart.
    unreliable_retry_min: Annotated[int, Field(ge=0, le=7 * 24 * 60)] = 120

    @model_validator(mode="after")
    def _topic_for_mqtt(self) -> Self:
        if self.via == "mqtt" and not self.command_topic:
            raise ValueError('command_topic: needed with via = "mqtt" (the device\'s own command topic)')
        return self


class LoadBase(Section):
    name: LoadName
    # false: hemsd leaves the load to its default (thermostat, the user's time); Home Assistant
    # can enable and disable it at run time
    enabled: bool = True
    switch: SwitchConfig = SwitchConfig()


class ApplianceConfig(LoadBase):
    """A deferrable run: a dishwasher, a washing machine, a pool pump."""

    type: Literal["appliance"] = "appliance"
    # the run: a power profile (W per quarter-hour), or power_w for duration_min
    power_w: Annotated[float | None, Field(gt=0, le=50_000)] = None
    duration_min: Annotated[int | None, Field(ge=PROFILE_STEP_MIN, le=24 * 60)] = None
    profile_w: Annotated[tuple[float, ...], Field(max_length=96)] = ()
    # local times: the run starts at or after earliest_start and ends by latest_end (the next
    # day's when not after earliest_start); default_start is when it runs without hemsd (at the
    # window's start where the run would not end in the window from then)
    earliest_start: time = time(0, 0)
    latest_end: time = time(0, 0)
    default_start: time | None = None
    # "daily": one run in every window; "request": one run after each request (Home Assistant)
    repeat: Literal["daily", "request"] = "daily"
    interruptible: bool = False
    min_on_min: Annotated[int, Field(ge=0, le=24 * 60)] = 0
    min_off_min: Annotated[int, Field(ge=0, le=24 * 60)] = 0
    # optional: runs only when worth it, at a mean cost per kWh at most price_cap, or only from
    # surplus PV (surplus_only); otherwise it runs in every window
    optional: bool = False
    price_cap: Annotated[float | None, Field(ge=-10, le=100)] = None
    surplus_only: bool = False

    @model_validator(mode="after")
    def _one_run(self) -> Self:
        if self.profile_w:
            if self.power_w is not None or self.duration_min is not None:
                raise ValueError("profile_w: give either profile_w or power_w with duration_min, not both")
            if any(not 0 <= w <= 50_000 for w in self.profile_w):
                raise ValueError(f"profile_w: every value must be 0-50000 W, got {list(self.profile_w)}")
        elif self.power_w is None or self.duration_min is None:
            raise ValueError("power_w, duration_min: both are needed without a profile_w")
        if self.optional and self.price_cap is None and not self.surplus_only:
            raise ValueError("optional: needs a price_cap or surplus_only = true (when is it worth it?)")
        if self.duration_w_min() > self.window_min():
            raise ValueError(
                f"latest_end: the run ({self.duration_w_min()} min) does not fit between "
                f"{self.earliest_start:%H:%M} and {self.latest_end:%H:%M}"
            )
        return self

    def profile(self) -> tuple[float, ...]:
        """The run's power, W per quarter-hour."""
        if self.profile_w:
            return self.profile_w
        power, minutes = self.power_w or 0.0, self.duration_min or 0  # both given (checked above)
        whole, part = divmod(minutes, PROFILE_STEP_MIN)
        return (power,) * whole + ((power * part / PROFILE_STEP_MIN,) if part else ())

    def duration_w_min(self) -> int:
        return len(self.profile()) * PROFILE_STEP_MIN

    def window_min(self) -> int:
        start = self.earliest_start.hour * 60 + self.earliest_start.minute
        end = self.latest_end.hour * 60 + self.latest_end.minute
        return (end - start) % (24 * 60) or 24 * 60


class StoreBase(LoadBase):
    """A thermal store's measured temperature, where there is a sensor for it."""

    # the store's measured temperature (degC): a number, or JSON with the number at
    # temperature_json_path (dotted, e.g. "DS18B20.Temperature" for Tasmota); empty: not
    # measured. A fresh reading replaces the modelled temperature as the plan's starting point
    temperature_topic: Topic = ""
    temperature_json_path: JsonPath = ""
    # a reading older than this is stale: the model goes on from it (the state says how old)
    temperature_max_age_min: Annotated[int, Field(ge=1, le=24 * 60)] = 15

    @model_validator(mode="after")
    def _path_needs_topic(self) -> Self:
        if self.temperature_json_path and not self.temperature_topic:
            raise ValueError(
                f"temperature_json_path: {self.temperature_json_path!r} given without a temperature_topic"
            )
        return self


class WaterHeaterConfig(StoreBase):
    """An electric hot-water tank: a second store, filled with cheap or surplus energy."""

    type: Literal["water_heater"] = "water_heater"
    volume_l: Annotated[float, Field(gt=0, le=5000)] = 200.0
    element_w: Annotated[float, Field(gt=0, le=30_000)] = 3000.0
    # standing loss: W per kelvin the tank is above ambient_c (2 W/K: about 1.7 kWh a day at 55 degC)
    loss_w_per_k: Annotated[float, Field(ge=0, le=100)] = 2.0
    ambient_c: Annotated[float, Field(ge=-20, le=40)] = 20.0
    cold_water_c: Annotated[float, Field(ge=0, le=30)] = 10.0
    # comfort: never below min_c; the element's own thermostat stops at max_c
    min_c: Annotated[float, Field(ge=20, le=90)] = 45.0
    max_c: Annotated[float, Field(ge=30, le=95)] = 70.0
    # the default without hemsd: its thermostat heats below thermostat_c - hysteresis_k
    thermostat_c: Annotated[float, Field(ge=30, le=95)] = 55.0
    hysteresis_k: Annotated[float, Field(gt=0, le=30)] = 5.0
    # hot water drawn: kWh of heat per day, spread over a household's day (morning and evening
    # peaks), or 24 values (kWh per local hour) that replace the spread
    draw_kwh_per_day: Annotated[float, Field(ge=0, le=200)] = 6.0
    draw_profile_kwh: Annotated[tuple[float, ...], Field(max_length=24)] = ()
    # how far a day's hot water departs from the profile (lognormal spread; 0: exactly as planned)
    draw_spread: Annotated[float, Field(ge=0, le=1)] = 0.3
    # 0: the draw is the profile above; N: learned from the last N days of the tank's measured
    # power (its switch.power_topic), once draw_learn_min_days whole days of it are recorded
    draw_learn_days: Annotated[int, Field(ge=0, le=60)] = 0
    draw_learn_min_days: Annotated[int, Field(ge=1, le=60)] = 7

    @model_validator(mode="after")
    def _limits(self) -> Self:
        if self.draw_learn_days and not self.switch.power_topic:
            raise ValueError(
                "draw_learn_days: learning the draw needs the tank's measured power (switch.power_topic)"
            )
        if self.draw_learn_days and self.draw_learn_min_days > self.draw_learn_days:
            raise ValueError(
                f"draw_learn_min_days ({self.draw_learn_min_days}) must be at most draw_learn_days "
                f"({self.draw_learn_days})"
            )
        if not self.min_c < self.max_c:
            raise ValueError(f"min_c ({self.min_c}) must be below max_c ({self.max_c})")
        if not (self.min_c <= self.thermostat_c - self.hysteresis_k and self.thermostat_c <= self.max_c):
            raise ValueError(
                f"thermostat_c: {self.thermostat_c} - hysteresis_k {self.hysteresis_k} must stay within "
                f"min_c {self.min_c} and max_c {self.max_c}"
            )
        if self.draw_profile_kwh and (
            len(self.draw_profile_kwh) != 24 or any(not 0 <= v <= 50 for v in self.draw_profile_kwh)
        ):
            raise ValueError(f"draw_profile_kwh: 24 values of 0-50 kWh, got {list(self.draw_profile_kwh)}")
        return self

    def capacity_kwh_per_k(self) -> float:
        return self.volume_l * WATER_KWH_PER_L_K


class HeatPumpConfig(StoreBase):
    """A heat pump with SG-Ready inputs: boosted when cheap, blocked in dear hours, its house (or
    buffer tank) a thermal mass kept within comfort limits."""

    type: Literal["heat_pump"] = "heat_pump"
    electric_w: Annotated[float, Field(gt=0, le=50_000)] = 2000.0
    cop: Annotated[float, Field(ge=1, le=8)] = 3.0
    # the thermal mass: kWh per kelvin (a house about 5-15, a 500 l buffer tank 0.6)
    capacity_kwh_per_k: Annotated[float, Field(gt=0, le=500)] = 8.0
    # heat the house needs at setpoint_c, W per local hour (24 values) or one for every hour
    heat_demand_w: Annotated[tuple[float, ...], Field(min_length=1, max_length=24)] = (1500.0,)
    # more heat lost per kelvin the mass is above setpoint_c (less below)
    loss_w_per_k: Annotated[float, Field(ge=0, le=10_000)] = 150.0
    setpoint_c: Annotated[float, Field(ge=5, le=80)] = 21.0
    hysteresis_k: Annotated[float, Field(gt=0, le=10)] = 0.5
    min_c: Annotated[float, Field(ge=5, le=80)] = 20.0
    max_c: Annotated[float, Field(ge=5, le=90)] = 23.0
    # how far a day's heat demand departs from heat_demand_w (lognormal spread; 0: exactly)
    draw_spread: Annotated[float, Field(ge=0, le=1)] = 0.3
    # 0: the demand is heat_demand_w. Else it follows the weather forecast's air temperature
    # ([forecast.weather] source = "open_meteo"): demand_w_per_k W of heat for every kelvin the
    # air is below demand_base_c (degree-hours); heat_demand_w where no temperature is known
    demand_w_per_k: Annotated[float, Field(ge=0, le=10_000)] = 0.0
    demand_base_c: Annotated[float, Field(ge=-10, le=30)] = 15.0

    @model_validator(mode="after")
    def _limits(self) -> Self:
        if not (self.min_c <= self.setpoint_c - self.hysteresis_k and self.setpoint_c <= self.max_c):
            raise ValueError(
                f"setpoint_c: {self.setpoint_c} - hysteresis_k {self.hysteresis_k} must stay within "
                f"min_c {self.min_c} and max_c {self.max_c}"
            )
        if len(self.heat_demand_w) not in (1, 24) or any(not 0 <= w <= 100_000 for w in self.heat_demand_w):
            raise ValueError(f"heat_demand_w: 1 or 24 values of 0-100000 W, got {list(self.heat_demand_w)}")
        if max(self.heat_demand_w) > self.electric_w * self.cop:
            raise ValueError(
                f"heat_demand_w: {max(self.heat_demand_w)} W is more than the pump gives "
                f"(electric_w x cop = {self.electric_w * self.cop:.0f} W)"
            )
        return self

    def demand_w(
        self, local_hours: npt.NDArray[np.intp], outdoor_c: npt.NDArray[np.float64] | None
    ) -> npt.NDArray[np.float64]:
        """The heat the house needs at its setpoint in slots of these local hours (W): from the
        air temperature where it is known and ``demand_w_per_k`` is set, else ``heat_demand_w``."""
        hourly = np.array(self.heat_demand_w * (24 if len(self.heat_demand_w) == 1 else 1))[local_hours]
        out: npt.NDArray[np.float64] = hourly
        if self.demand_w_per_k and outdoor_c is not None:
            following = self.demand_w_per_k * np.maximum(self.demand_base_c - outdoor_c, 0.0)
            out = np.where(np.isfinite(outdoor_c), following, hourly)
        return out


LoadConfig = Annotated[ApplianceConfig | WaterHeaterConfig | HeatPumpConfig, Field(discriminator="type")]
LOAD_TYPES: tuple[type[LoadBase], ...] = (ApplianceConfig, WaterHeaterConfig, HeatPumpConfig)


def unique_names(loads: tuple[LoadBase, ...]) -> tuple[LoadBase, ...]:
    seen: set[str] = set()
    for load in loads:
        if load.name in seen:
            raise ValueError(f"loads: the name {load.name!r} is used twice")
        seen.add(load.name)
    return loads


def topics_apart(loads: tuple[LoadBase, ...], own: tuple[str, ...]) -> None:
    """Each load's topics are its own: none under ``own`` (hemsd's base topic and Home Assistant's
    discovery prefix, where hemsd publishes and listens), no command topic read as a reading,
    no two loads switched or measured on one topic. ValueError naming the key and the topic."""
    commands: dict[str, str] = {}
    readings: dict[tuple[str, str], str] = {}
    for load in loads:
        sw = load.switch
        mine = [("switch.command_topic", sw.command_topic), ("switch.power_topic", sw.power_topic)]
        if isinstance(load, StoreBase):
            mine.append(("temperature_topic", load.temperature_topic))
        for key, topic in mine:
            for prefix in own:
                if topic and (topic == prefix or topic.startswith(f"{prefix}/")):
                    raise ValueError(f"loads.{load.name}.{key}: {topic!r} is under hemsd's own {prefix!r}")
        if sw.command_topic:
            if sw.command_topic in commands:
                raise ValueError(
                    f"loads.{load.name}.switch.command_topic: {sw.command_topic!r} already switches "
                    f"{commands[sw.command_topic]!r}"
                )
            commands[sw.command_topic] = load.name
        if sw.power_topic:
            meter = (sw.power_topic, sw.power_json_path)
            if meter in readings:
                raise ValueError(
                    f"loads.{load.name}.switch.power_topic: {sw.power_topic!r} already measures "
                    f"{readings[meter]!r} (give each its own power_json_path)"
                )
            readings[meter] = load.name
    for load in loads:
        topics = {load.switch.power_topic} | (
            {load.temperature_topic} if isinstance(load, StoreBase) else set()
        )
        for topic in topics & set(commands):
            raise ValueError(
                f"loads.{load.name}: {topic!r} is read as a reading and is {commands[topic]!r}'s command_topic"
            )
