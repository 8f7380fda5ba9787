"""Inverter drivers: one protocol and its values (``types``), and the GoodWe driver (``goodwe``)."""

from drivers.inverter.types import (
    Applied,
    Command,
    CommandKind,
    Inverter,
    InverterError,
    InverterInfo,
    Snapshot,
)

__all__ = [
    "Applied",
    "Command",
    "CommandKind",
    "Inverter",
    "InverterError",
    "InverterInfo",
    "Snapshot",
]
