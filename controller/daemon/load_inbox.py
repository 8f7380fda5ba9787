"""What the loads' MQTT connection takes in: measured readings and the controls from Home Assistant.

- a device's ``power_topic`` (a number, or JSON with the number at ``power_json_path``) and a
  store's ``temperature_topic`` (alike, at ``temperature_json_path``) go to the switcher
  (:func:`listeners`; one topic may carry both); a reading that does not read, or that no
  meter or sensor gives, changes nothing and is logged (once a minute per topic, with a count);
- ``<base>/load/<name>_enabled/set`` (``ON``/``OFF``), ``<name>_request/set`` and
  ``<name>_reset/set`` (``PRESS``) switch the load's controls and plan again;
  ``<name>_goal/set`` (the ``load_goal`` payload without ``load``) and ``<name>_goal_cancel/set``
  (``PRESS``) go through the shared command applier (:class:`LoadControls`). A bad one is refused
  naming its field and value, and changes nothing.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from controller.config.loads import ApplianceConfig, LoadConfig
from controller.config.models import HemsdConfig
from controller.control.applier import control_limits
from controller.control.commands import (
    BUTTON_PAYLOAD,
    CommandRejectedError,
    ControlCommand,
    load_goal_payload,
    parse_command,
)
from controller.control.load_state import LoadEvent
from controller.control.loads import LoadSwitcher
from controller.daemon.replan_soon import ReplanSoon
from drivers.mqtt import MessageRejectedError

log = logging.getLogger(__name__)
CONTROLS = ("enabled", "request", "reset", "goal", "goal_cancel")
ApplyCommand = Callable[[ControlCommand, str], Awaitable[str]]
Handler = Callable[[str, bytes], None]
MAX_READING_BYTES = 16_384  # a device's reading: a Tasmota SENSOR message is well under 2 KiB
UNREADABLE_LOG_EVERY_S = 60.0


def reading_of(payload: bytes, path: str, unit: str = "W") -> float:
    """The number in a reading (a power in W, a temperature in degC): a number, or JSON with the
    number at the dotted ``path``. ValueError, quoting at most the reading's start, otherwise."""
    if len(payload) > MAX_READING_BYTES:
        raise ValueError(f"{len(payload)} bytes, more than a reading's {MAX_READING_BYTES}")
    text = payload.decode("utf-8", errors="replace").strip()
    try:
        value: object = json.loads(text) if path else float(text)
    except (ValueError, RecursionError):
        raise ValueError(f"not {'JSON' if path else 'a number'}: {text[:80]!r}") from None
    for key in path.split(".") if path else ():
        if not isinstance(value, dict) or key not in value:
            raise ValueError(f"no {path!r} in {text[:80]!r}")
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a number of {unit}: {str(value)[:80]!r}")
    return float(value)


class _Unreadable:
    """The log of a topic's readings that do not read: the first at once, then one line a
    ``UNREADABLE_LOG_EVERY_S`` with how many more (a sensor sending garbage, or a flood of it)."""

    def __init__(self) -> None:
        self.logged_at = -UNREADABLE_LOG_EVERY_S
        self.unlogged = 0

    def log(self, name: str, what: str, topic: str, error: ValueError) -> None:
        now = time.monotonic()
        if now - self.logged_at < UNREADABLE_LOG_EVERY_S:
            self.unlogged += 1
            return
        more = f" ({self.unlogged} more since the last report)" if self.unlogged else ""
        log.warning("load %s: unreadable %s on %s: %s%s", name, what, topic, error, more)
        self.logged_at, self.unlogged = now, 0


def listeners(
    loads: tuple[LoadConfig, ...],
    switcher: LoadSwitcher,
    now: Callable[[], datetime],
    on_power: Callable[[str, list[LoadEvent]], None],
    drifted: set[str],
) -> dict[str, Handler]:
    """The handlers of the loads' reading topics: ``on_power`` takes a load's name and the events
    its power reading gave rise to; a store measured off its planned path is added to ``drifted``."""
    handlers: dict[str, list[Handler]] = {}
    for load in loads:
        if load.switch.power_topic:
            handlers.setdefault(load.switch.power_topic, []).append(
                _power_handler(switcher, load.name, now, on_power)
            )
        if not isinstance(load, ApplianceConfig) and load.temperature_topic:
            handlers.setdefault(load.temperature_topic, []).append(
                _temperature_handler(switcher, load.name, now, drifted)
            )
    return {topic: _each(found) for topic, found in handlers.items()}


def _power_handler(
    switcher: LoadSwitcher,
    name: str,
    now: Callable[[], datetime],
    on_power: Callable[[str, list[LoadEvent]], None],
) -> Handler:
    path = switcher.loads[name].config.switch.power_json_path
    unreadable = _Unreadable()

    def handle(topic: str, payload: bytes) -> None:
        try:
            events = switcher.power_reading(name, reading_of(payload, path), now())
        except ValueError as exc:
            unreadable.log(name, "power", topic, exc)
            return
        on_power(name, events)

    return handle


def _temperature_handler(
    switcher: LoadSwitcher, name: str, now: Callable[[], datetime], drifted: set[str]
) -> Handler:
    config = switcher.loads[name].config
    path = "" if isinstance(config, ApplianceConfig) else config.temperature_json_path
    unreadable = _Unreadable()

    def handle(topic: str, payload: bytes) -> None:
        try:
            off_path = switcher.temperature_reading(name, reading_of(payload, path, "degC"), now())
        except ValueError as exc:
            unreadable.log(name, "temperature", topic, exc)
            return
        if off_path:
            drifted.add(name)

    return handle


def _each(handlers: list[Handler]) -> Handler:
    """One topic's handlers (a device may report its power and temperature in one message)."""

    def handle(topic: str, payload: bytes) -> None:
        for handler in handlers:
            handler(topic, payload)

    return handle


class ControlTarget(Protocol):
    """What the loads' controls act on: the daemon's load link."""

    config: HemsdConfig
    switcher: LoadSwitcher
    now: Callable[[], datetime]
    replan: Callable[[str], Awaitable[None]] | None
    replan_soon: ReplanSoon  # the live controls' re-plans, coalesced
    apply: ApplyCommand | None

    async def tick(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Control:
    name: str
    control: str  # one of CONTROLS
    payload: str


@dataclass(frozen=True, slots=True)
class _Command:
    """A command of the shared language from a load's own topic (its goal)."""

    command: ControlCommand


class LoadControls:
    """The MQTT inbox of the loads' controls from Home Assistant."""

    def __init__(self, link: ControlTarget) -> None:
        self.link = link

    def parse(self, topic: str, key: str, payload: bytes) -> object:
        found = [
            (key[: -len(c) - 1], c)
            for c in CONTROLS
            if key.endswith(f"_{c}") and key[: -len(c) - 1] in self.link.switcher.loads
        ]
        if not found:
            raise self.rejected(
                topic, "topic", key, f"no such load control (loads: {sorted(self.link.switcher.loads)})"
            )
        name, control = found[0]
        if control == "goal":
            return self._command(topic, "load_goal", lambda: load_goal_payload(name, payload))
        text = payload.decode("utf-8", errors="replace").strip()
        if control == "goal_cancel" and text == BUTTON_PAYLOAD:
            return self._command(topic, "load_goal_cancel", name.encode)
        wanted = ("ON", "OFF") if control == "enabled" else (BUTTON_PAYLOAD,)
        if text not in wanted:
            raise self.rejected(topic, control, text, f"expected one of {list(wanted)}")
        return _Control(name, control, text)

    def _command(self, topic: str, key: str, payload: Callable[[], bytes]) -> _Command:
        """The shared command ``key`` of the payload ``payload()`` makes, parsed as from any topic."""
        try:
            return _Command(parse_command(key, payload(), control_limits(self.link.config), self.link.now()))
        except CommandRejectedError as exc:
            raise self.rejected(topic, exc.field, exc.value, exc.reason) from None

    async def apply(self, topic: str, message: object) -> None:
        if isinstance(message, _Command):
            if self.link.apply is None:
                raise self.rejected(topic, "topic", topic, "load goals are not taken here")
            try:
                await self.link.apply(message.command, "mqtt")
            except CommandRejectedError as exc:
                raise self.rejected(topic, exc.field, exc.value, exc.reason) from None
            await self.link.tick()
            return
        if not isinstance(message, _Control):
            raise TypeError(f"not a load control: {message!r}")
        name, control, text = message.name, message.control, message.payload
        switcher = self.link.switcher
        if control == "enabled":
            switcher.set_enabled(name, text == "ON")
        elif control == "request":
            switcher.request(name)
        else:
            switcher.reliable_again(name)
        await self.link.tick()
        if self.link.replan is not None:  # the plan places it, or leaves it at its default, from now on
            self.link.replan_soon.request(f"load {name} {control}")  # a flood of them: a few plans

    def supersedes(self, message: object) -> bool:
        return isinstance(message, _Control) and message.control == "enabled"

    def rejected(self, topic: str, field: str, value: object, reason: str) -> MessageRejectedError:
        document = {"topic": topic, "field": field, "value": str(value)[:100], "error": reason}
        return MessageRejectedError(f"{field}={value!r}: {reason}", document)
