"""Health and the action in force: what both front ends report, computed once here.

:class:`HealthMonitor` turns the sources' own reports (inverter driver, prices, forecaster,
storage) into a :class:`HealthState`; :func:`action_state` says what the inverter is told now,
why, and on whose behalf.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from controller.control.executor import Decision
from drivers.inverter.types import Snapshot
from storage.datamanager import DataManager

STORAGE_HEALTH_S = 30.0


@dataclass(frozen=True, slots=True)
class ActionState:
    """What the inverter is being told in the current slot, and why."""

    action: str
    reason: str
    source: str  # plan | override | guard | fallback
    power_w: float
    target_soc: float | None
    slot_start: datetime | None
    slot_end: datetime | None


@dataclass(frozen=True, slots=True)
class HealthState:
    stale_sources: tuple[str, ...]
    spool_depth: int
    inverter_writes_today: int
    inverter_write_cap: int | None
    last_error: str | None
    inverter_unresponsive: str | None = None  # why the inverter is marked unreliable (None: it is not)


def action_state(decision: Decision, slot_start: datetime | None, slot_end: datetime | None) -> ActionState:
    """What the inverter is told now, why, and on whose behalf (plan, override, guard, fallback)."""
    command, guarded = decision.command, decision.guarded
    if command == guarded.command:  # what is wanted now is in force: its reason is the current one
        kinds = {event.kind for event in guarded.events}
        source, reason = guarded.intent.source, guarded.intent.reason
        if "fallback" in kinds:
            source = "fallback"
        elif "refused" in kinds:
            source = "guard"
    else:  # a change is held back (dwell, hysteresis): the command in force keeps its own reason
        source, reason = decision.state.source, decision.state.reason
        reason = f"{reason or 'command in force'} (change to {guarded.command.kind.value} held back: {decision.held_back})"
    if source not in ("plan", "override", "guard"):
        source = "fallback"
    return ActionState(
        command.kind.value, reason or "-", source, command.power_w, command.target_soc, slot_start, slot_end
    )


class HealthMonitor:
    """The site's health from its sources' reports; storage's (a summary of every timing it keeps)
    is read at most every STORAGE_HEALTH_S."""

    def __init__(self) -> None:
        self._storage: tuple[float, dict[str, object]] | None = None  # (monotonic time, storage health)
        self._problems: dict[str, str] = {}  # reported by the daemon itself (a restarted task)

    def problem(self, what: str, detail: str) -> None:
        """Something of the daemon's own to report until the process restarts."""
        self._problems[what] = detail

    async def report(
        self,
        now: datetime,
        *,
        snapshot: Snapshot | None,
        stale_after_s: float,
        inverter: Mapping[str, object],
        price_status: str,
        forecast: Mapping[str, object],
        data: DataManager,
        unresponsive: str | None = None,
    ) -> HealthState:
        """Stale sources, spool depth, inverter writes, the first error, and why the inverter is
        marked unreliable (``unresponsive``, controller.control.response)."""
        stale: list[str] = []
        errors: list[str] = []
        if unresponsive is not None:
            errors.append(f"inverter does not follow commands: {unresponsive}")
        too_old = snapshot is None or (now - snapshot.time).total_seconds() > stale_after_s
        if too_old or (snapshot is not None and snapshot.stale) or inverter.get("stale"):
            stale.append("inverter")
            if inverter.get("last_error"):
                errors.append(f"inverter: {inverter['last_error']}")
        if price_status != "real":
            stale.append("prices")
            errors.append(f"prices: {price_status}")
        if forecast.get("stale"):
            stale.append("forecast")
            errors.append(
                f"forecast: weather {forecast.get('weather')}: {forecast.get('weather_error') or 'stale'}"
            )
        storage = await self._storage_health(data)
        spool_depth = 0
        for backend in ("sqlite", "influx"):
            report = storage.get(backend)
            if not isinstance(report, dict) or report.get("configured") is False:
                continue
            circuit = report.get("circuit", report)
            open_circuit = isinstance(circuit, dict) and circuit.get("state") not in (None, "closed")
            write_error = report.get("write_error")  # SQLite reads may work while writes fail (full disk)
            if open_circuit or write_error:
                stale.append(backend)
                last = write_error or (circuit.get("last_error") if isinstance(circuit, dict) else None)
                errors.append(f"{backend}: {last}")
            spool = report.get("spool_depth")
            spool_depth += spool if isinstance(spool, int) else 0
        errors.extend(f"{what}: {detail}" for what, detail in self._problems.items())
        writes = inverter.get("writes_today")
        cap = inverter.get("write_cap")
        return HealthState(
            stale_sources=tuple(stale),
            spool_depth=spool_depth,
            inverter_writes_today=writes if isinstance(writes, int) else 0,
            inverter_write_cap=cap if isinstance(cap, int) else None,
            last_error=errors[0] if errors else None,
            inverter_unresponsive=unresponsive,
        )

    async def _storage_health(self, data: DataManager) -> dict[str, object]:
        at = time.monotonic()
        if self._storage is None or at - self._storage[0] >= STORAGE_HEALTH_S:
            self._storage = (at, await data.health())
        return self._storage[1]
