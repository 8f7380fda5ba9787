"""Settings changed while the daemon runs (Home Assistant numbers): an overlay on the file configuration.

Three settings can be changed at run time: the battery's minimum SoC, its maximum charge power
(the "max grid-charge power" number) and the safety guard's grid-charge price cap. The overlay
lives in the data manager's state table (key ``runtime_settings``), so it survives restarts, and
is applied on top of the file configuration at start and after every reload.

The newest change wins: each entry remembers the file's value at the time it was set; when the
file's value has been edited since, the edit is newer, so the entry is dropped (and an event
says so). An entry that no longer fits the file (e.g. a minimum SoC above a lowered maximum)
is dropped the same way.

Config history. Every accepted change is recorded as a configuration version (source ``mqtt``)
holding the whole effective configuration as TOML: the config file's TOML with the overlay
applied, written back by :func:`toml_text` (comments are not kept). A whole document rather
than a fragment holding only the overlay, so that every version in the history is a loadable
configuration that compares line by line with the file versions around it. Without a config
file the text is the effective configuration with its secrets redacted.
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from controller.config.models import HemsdConfig
from controller.control.commands import CommandRejectedError, NumberSetting
from storage.datamanager import DataManager
from storage.records import EventRecord, JsonValue, Severity

log = logging.getLogger(__name__)

STATE_KEY = "runtime_settings"


@dataclass(frozen=True, slots=True)
class RuntimeSetting:
    number: NumberSetting
    section: str  # a section of HemsdConfig
    key: str

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"


SETTINGS: tuple[RuntimeSetting, ...] = (
    RuntimeSetting(NumberSetting.MIN_SOC, "battery", "min_soc_pct"),
    RuntimeSetting(NumberSetting.MAX_GRID_CHARGE_W, "battery", "max_charge_w"),
    RuntimeSetting(NumberSetting.PRICE_CAP, "executor", "grid_charge_price_cap"),
)
SETTING_OF_NUMBER = {s.number: s for s in SETTINGS}
SETTING_OF_PATH = {s.path: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class OverlayEntry:
    value: float | None  # None: no value (only the price cap may be removed)
    file_value: float | None  # the file's value when this entry was set
    set_at: datetime

    def to_json(self) -> dict[str, JsonValue]:
        return {"value": self.value, "file_value": self.file_value, "set_at": self.set_at.isoformat()}

    @classmethod
    def from_json(cls, raw: JsonValue) -> OverlayEntry:
        if not isinstance(raw, dict):
            raise TypeError(f"an overlay entry must be an object, got {raw!r}")
        numbers: dict[str, float | None] = {}
        for name in ("value", "file_value"):
            number = raw.get(name)
            if number is not None and (isinstance(number, bool) or not isinstance(number, int | float)):
                raise TypeError(f"overlay {name} must be a number or null, got {number!r}")
            numbers[name] = None if number is None else float(number)
        set_at = raw.get("set_at")
        if not isinstance(set_at, str):
            raise TypeError(f"overlay set_at must be an ISO 8601 string, got {set_at!r}")
        when = datetime.fromisoformat(set_at)
        if when.tzinfo is None:
            raise ValueError(f"overlay set_at must carry a UTC offset, got {set_at!r}")
        return cls(numbers["value"], numbers["file_value"], when)


def _file_value(config: HemsdConfig, setting: RuntimeSetting) -> float | None:
    value = getattr(getattr(config, setting.section), setting.key)
    return None if value is None else float(value)


def overlay(config: HemsdConfig, entries: Mapping[str, OverlayEntry]) -> HemsdConfig:
    """``config`` with the entries applied, validated as a whole again (raises ValidationError).

    Validating the whole document runs the cross-section rules too (e.g. the inverter's SoC floor);
    the environment overrides are applied again, so they keep their priority over the overlay.
    """
    if not entries:
        return config
    document = config.model_dump()
    for path, entry in entries.items():
        setting = SETTING_OF_PATH[path]
        document[setting.section][setting.key] = entry.value
    return type(config).model_validate(document)


def _first_problem(exc: ValidationError) -> str:
    """The first problem in plain words, without pydantic's "Value error, " prefix."""
    errors = exc.errors(include_url=False)
    if not errors:
        return str(exc)
    message = str(errors[0]["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


class RuntimeSettings:
    """The overlay of one daemon; ``file_config`` is the configuration as the file says."""

    def __init__(self) -> None:
        self.entries: dict[str, OverlayEntry] = {}
        self.file_config: HemsdConfig | None = None

    async def load(self, data: DataManager) -> None:
        raw = await data.get_state(STATE_KEY)
        self.entries = {}
        if raw is None:
            return
        if not isinstance(raw, dict):
            log.warning("ignoring the stored runtime settings: not an object (%r)", raw)
            return
        for path, value in raw.items():
            if path not in SETTING_OF_PATH:
                log.warning("ignoring the stored runtime setting %s: not a runtime setting", path)
                continue
            try:
                self.entries[path] = OverlayEntry.from_json(value)
            except (TypeError, ValueError) as exc:
                log.warning("ignoring the stored runtime setting %s: %s", path, exc)

    async def apply(self, data: DataManager, file_config: HemsdConfig, now: datetime) -> HemsdConfig:
        """The effective configuration for this file configuration; entries the file overrules are dropped."""
        self.file_config = file_config
        dropped: list[tuple[str, str]] = []
        for path, entry in list(self.entries.items()):
            now_in_file = _file_value(file_config, SETTING_OF_PATH[path])
            if now_in_file != entry.file_value:
                del self.entries[path]
                dropped.append((path, f"the file changed it to {now_in_file} since it was set"))
        for path in list(self.entries):
            try:
                overlay(file_config, {path: self.entries[path]})
            except ValidationError as exc:
                del self.entries[path]
                dropped.append((path, f"no longer valid with the file's settings: {_first_problem(exc)}"))
        for path, why in dropped:
            message = f"runtime setting {path} dropped: {why}"
            log.warning("%s", message)
            await data.log_event(
                EventRecord(now, "settings.dropped", message, Severity.WARNING, {"key": path})
            )
        if dropped:
            await self.commit(data, self.entries)
        return overlay(file_config, self.entries)

    def change(
        self, number: NumberSetting, value: float | None, now: datetime
    ) -> tuple[HemsdConfig, dict[str, OverlayEntry]]:
        """The effective configuration and the overlay with ``number`` set; CommandRejectedError when it
        does not fit. Nothing changes until :meth:`commit` is called with the overlay."""
        if self.file_config is None:
            raise RuntimeError("runtime settings used before apply()")
        setting = SETTING_OF_NUMBER[number]
        if value is None and setting.number is not NumberSetting.PRICE_CAP:
            raise CommandRejectedError(number.value, value, "cannot be removed")
        if value is not None and not math.isfinite(value):
            raise CommandRejectedError(number.value, value, "must be finite")
        entries = {
            **self.entries,
            setting.path: OverlayEntry(value, _file_value(self.file_config, setting), now),
        }
        try:
            return overlay(self.file_config, entries), entries
        except ValidationError as exc:
            raise CommandRejectedError(number.value, value, _first_problem(exc)) from None

    async def commit(self, data: DataManager, entries: dict[str, OverlayEntry]) -> None:
        """Store the overlay, then keep it (a storage failure leaves the previous overlay in force)."""
        await data.put_state(STATE_KEY, {path: entry.to_json() for path, entry in entries.items()})
        self.entries = entries

    def config_text(self, config_path: Path | None, effective: HemsdConfig) -> str:
        """The TOML recorded in the config history: the file with the overlay applied (module docstring)."""
        document: dict[str, Any] | None = None
        if config_path is not None:
            try:
                document = tomllib.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                log.warning("cannot read %s for the config history: %s", config_path, exc)
        if document is None:
            document = _without_none(effective.redacted())
        for path, entry in self.entries.items():
            setting = SETTING_OF_PATH[path]
            table = document.setdefault(setting.section, {})
            if entry.value is None:
                table.pop(setting.key, None)
            else:
                table[setting.key] = entry.value
        return toml_text(document)


def _without_none(value: Any) -> Any:
    """TOML has no null: a None value is an absent key (which is what None means in the config)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def toml_text(document: Mapping[str, Any]) -> str:
    """TOML text of the configuration's shape: nested tables, arrays of tables and scalar values."""
    return tomli_w.dumps(document)
