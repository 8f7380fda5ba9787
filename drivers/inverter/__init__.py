"""Inverter drivers: one protocol, its values, and a registry of implementations by ``type``."""

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
