"""What the switcher holds of each load, and what it tells of it.

:class:`LoadRuntime` is one load's state as the switcher keeps it (its output and since when, its
run or its store's temperature, its readings, whether it follows its commands, its slice of the
plan and its requirement); :class:`LoadOutput` is an output it decides, :class:`LoadEvent` one of
the events it gives rise to, and :class:`LoadStatePayload` what ``<base>/load/<name>/state``
holds, under the topics :func:`load_state_topic` and :func:`load_command_key` name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from controller.config.loads import ApplianceConfig, HeatPumpConfig, LoadConfig
from controller.loads.appliance import ApplianceState
from controller.loads.joint import LoadSchedule
from controller.loads.requirement import Requirement

LOADS_TOPIC = "load"  # the loads' sub-topic of the base (hemsd publishes and listens there)


def load_state_topic(name: str) -> str:
    """A load's state (JSON: :class:`LoadStatePayload`) under the base topic."""
    return f"{LOADS_TOPIC}/{name}/state"


def load_command_key(name: str, control: str) -> str:
    """A load's control under the base topic (``<base>/load/<name>_<control>/set``)."""
    return f"{LOADS_TOPIC}/{name}_{control}"


@dataclass(frozen=True, slots=True)
class LoadStatePayload:
    """What ``<base>/load/<name>/state`` holds."""

    name: str
    type: str
    output: str  # on / off, or boost / normal / block
    enabled: bool
    reliable: bool
    unreliable_until: str | None  # ISO time a load marked unreliable is tried again
    power_w: float | None  # measured (None: not measured)
    temperature_c: float | None  # a thermal store's: measured when fresh, else from its model
    temperature_source: str  # "measured" (a fresh reading), "model", or "" (not a store)
    temperature_age_s: float | None  # the age of the store's last reading (None: never read)
    next_run: str | None  # ISO time of its next planned run
    reason: str
    planned: list[str]  # the planned state of each of the next slots
    goal: str  # the requirement set at run time, in words ("" without one)
    goal_command: str  # the same as the load's goal topic takes it (JSON; "" without one)
    goal_unreachable: str  # why the plan does not meet its requirement ("" when it does, or none)
    draw: str  # a water heater's draw: learned from its measured power, or as configured ("" for others)


@dataclass(frozen=True, slots=True)
class LoadEvent:
    name: str
    # "load.unresponsive" (commanded again), "load.unreliable" (left to its default),
    # "load.retried" (its mark ended: planned and switched again)
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class LoadOutput:
    """What a load is told, and why."""

    name: str
    output: str
    reason: str


@dataclass
class LoadRuntime:
    config: LoadConfig
    enabled: bool
    output: str
    since: datetime | None  # when the output was last switched (None: not since the start)
    temperature_c: float | None = None
    appliance: ApplianceState = field(default_factory=ApplianceState)
    power_w: float | None = None
    power_at: datetime | None = None
    measured_at: datetime | None = None  # a store's last temperature reading
    held_c: float | None = None  # a reading far from the store's, until the next one confirms it
    # a measured store's hot water or heat drawn since local midnight (from its readings, the
    # heat put in and its loss), what its profile expected over the same time, and that since
    # the last reading
    drawn_today_kwh: float = 0.0
    expected_today_kwh: float = 0.0
    expected_since_kwh: float = 0.0
    day: date | None = None
    readings_idle: int = 0
    commanded_again: bool = False
    unreliable: bool = False
    unreliable_until: datetime | None = None  # tried again then (None: when told it is reliable)
    reason: str = "starting"
    schedule: LoadSchedule | None = None
    requirement: Requirement | None = None


def default_output(config: LoadConfig) -> str:
    """A load's output left to itself: a store's own thermostat, an appliance off."""
    if isinstance(config, ApplianceConfig):
        return "off"
    return "normal" if isinstance(config, HeatPumpConfig) else "on"


def running(output: str) -> bool:
    return output in ("on", "boost")


def may_heat(load: LoadRuntime) -> bool:
    """Whether a store may be heating now, as far as hemsd can tell: switched on or boosted, or a
    heat pump left to its thermostat under its setpoint (whether it runs on there is the device's
    memory, which hemsd does not see; taken as heating, the plan blocks a slot it plans no heat
    in, which the device, if it was not heating, would not have heated either)."""
    c = load.config
    if running(load.output):
        return True
    return (
        isinstance(c, HeatPumpConfig)
        and load.output == "normal"
        and load.temperature_c is not None
        and load.temperature_c < c.setpoint_c
    )
