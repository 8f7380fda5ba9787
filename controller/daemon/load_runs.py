"""The appliances' runs, kept in the data manager's state table across a restart.

Key ``RUNS_KEY``: each appliance's :class:`controller.loads.appliance.ApplianceState` (until when
its windows have had their run, when a run under way started, how long an interruptible one has
run, whether one is asked for), so that a restart neither runs a window's run a second time nor
forgets one under way or asked for. Written when they change; a failing storage is logged and the
runs kept in memory; a stored run that does not read is dropped, logged.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

from controller.config.loads import ApplianceConfig
from controller.control.loads import LoadSwitcher
from controller.loads.appliance import ApplianceState
from storage import StorageError
from storage.datamanager import DataManager
from storage.records import JsonValue

log = logging.getLogger(__name__)
RUNS_KEY = "load_runs"


def _instant(value: object) -> datetime | None:
    if value is None:
        return None
    when = datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        raise ValueError(f"{value!r} has no offset")
    return when


def _state(raw: object) -> ApplianceState:
    if not isinstance(raw, dict):
        raise TypeError(f"not an object: {raw!r}")
    ran_h = raw.get("ran_h", 0.0)
    if isinstance(ran_h, bool) or not isinstance(ran_h, int | float) or not math.isfinite(ran_h) or ran_h < 0:
        raise ValueError(f"ran_h: {ran_h!r}")
    return ApplianceState(
        _instant(raw.get("done_until")),
        _instant(raw.get("started_at")),
        float(ran_h),
        raw.get("requested") is True,
    )


def _json(state: ApplianceState) -> dict[str, JsonValue]:
    done, started = state.done_until, state.started_at
    return {
        "done_until": None if done is None else done.isoformat(),
        "started_at": None if started is None else started.isoformat(),
        "ran_h": state.ran_h,
        "requested": state.requested,
    }


class LoadRuns:
    """The switcher's appliance runs, as stored."""

    def __init__(self, data: DataManager, switcher: LoadSwitcher) -> None:
        self.data, self.switcher = data, switcher
        self._stored: dict[str, ApplianceState] = {}

    def _runs(self) -> dict[str, ApplianceState]:
        return {
            name: load.appliance
            for name, load in self.switcher.loads.items()
            if isinstance(load.config, ApplianceConfig)
        }

    async def restore(self) -> None:
        """The runs stored before a restart, given to the switcher's appliances."""
        try:
            stored = await self.data.get_state(RUNS_KEY)
        except StorageError as exc:
            log.warning("loads: the appliances' runs not readable: %s", exc)
            return
        runs = self._runs()
        for name, raw in (stored or {}).items() if isinstance(stored, dict) else ():
            if name not in runs:
                continue
            try:
                self.switcher.loads[name].appliance = _state(raw)
            except (TypeError, ValueError) as exc:
                log.warning("load %s: its stored run does not read (%s); dropped", name, exc)
        self._stored = self._runs()

    async def store(self) -> None:
        """The runs as they are now, when they changed."""
        runs = self._runs()
        if runs == self._stored:
            return
        try:
            await self.data.put_state(RUNS_KEY, {name: _json(state) for name, state in sorted(runs.items())})
        except StorageError as exc:
            log.warning("loads: the appliances' runs not stored: %s", exc)
            return
        self._stored = runs
