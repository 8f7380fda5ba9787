"""Inverter drivers by configuration ``type``: one table, one constructor function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drivers.inverter.goodwe import GoodWeDriver
from drivers.inverter.types import Inverter

InverterFactory = Callable[[Mapping[str, Any], Callable[[], datetime]], Inverter]


@dataclass(frozen=True, slots=True)
class InverterType:
    name: str
    description: str
    factory: InverterFactory


def _goodwe(options: Mapping[str, Any], now: Callable[[], datetime]) -> Inverter:
    return GoodWeDriver.from_options(options, now=now)


INVERTER_TYPES: tuple[InverterType, ...] = (
    InverterType(
        "goodwe", "GoodWe ET/EH/BT/BH hybrid inverter (goodwe library, UDP 8899 or Modbus TCP)", _goodwe
    ),
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_inverter(
    type_: str, options: Mapping[str, Any], *, now: Callable[[], datetime] = _utc_now
) -> Inverter:
    """The driver for ``inverter.type``; options are its configuration keys (errors name the key)."""
    for entry in INVERTER_TYPES:
        if entry.name == type_:
            return entry.factory(options, now)
    known = ", ".join(e.name for e in INVERTER_TYPES)
    raise ValueError(f"inverter.type: unknown driver {type_!r}; known: {known}")
