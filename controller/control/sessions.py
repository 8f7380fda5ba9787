"""Charging and discharging sessions: open when the inverter is told to charge from the grid (or
discharge to it), accumulate energy and money from each reading, close when that stops.

A session is a SessionRecord (storage's row type). The tracker is pure bookkeeping: the caller
persists every record it returns, and after a restart hands back the session that was open so
that it is continued (same kind still commanded) or closed, never duplicated.

``update`` is told the command in force and ``since`` when it took effect (after the write to
the inverter). The interval between two readings is split there: before ``since`` the previous
command ran at the previous reading's power, after it the current command at this reading's
power. A session starts and ends at those instants, so its energy matches the inverter's own
counters however far apart the readings are.

Across a data gap (the daemon killed, the inverter unreachable) powers cannot be integrated: the
inverter's lifetime energy counters can. A session that runs through a gap is given the change
of the battery and grid counters between the readings on either side (after a restart, the last
reading before it, which the caller keeps: :func:`reading_to_json`).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from drivers.inverter.types import CommandKind, Snapshot
from storage.records import JsonValue, SessionKind, SessionRecord, SessionStatus, SessionTrigger

MAX_GAP_S = 300.0  # readings further apart than this are not integrated across (data gap)

KIND_OF_COMMAND = {CommandKind.CHARGE: SessionKind.CHARGE, CommandKind.DISCHARGE: SessionKind.DISCHARGE}


@dataclass(frozen=True, slots=True)
class _Money:
    """Running sums of a session beside its record: priced energy for the average price."""

    priced_kwh: float = 0.0
    amount: float = 0.0


class SessionTracker:
    def __init__(
        self,
        open_session: SessionRecord | None = None,
        last_reading: Snapshot | None = None,
        max_gap_s: float = MAX_GAP_S,
    ) -> None:
        self._max_gap_s = max_gap_s
        self._session = open_session
        self._money = _Money()
        if open_session is not None and open_session.avg_price is not None:
            # grid_kwh is the priced energy: bought for a charge session, sold for a discharge one
            priced = open_session.grid_kwh
            self._money = _Money(priced, open_session.avg_price * priced)
        self._last = last_reading

    @property
    def open_session(self) -> SessionRecord | None:
        return self._session

    def update(
        self,
        snapshot: Snapshot,
        command: CommandKind | None,
        since: datetime | None,
        trigger: SessionTrigger,
        import_price: float | None,
        export_price: float | None,
    ) -> list[SessionRecord]:
        """Account this reading; returns the records to persist (closed, opened or updated)."""
        out: list[SessionRecord] = []
        if snapshot.stale:
            return out
        wanted = KIND_OF_COMMAND.get(command) if command is not None else None
        last = self._last
        start = last.time if last is not None else snapshot.time
        switch = min(max(since, start), snapshot.time) if since is not None else start
        session = self._session
        if (
            session is not None
            and last is not None
            and (snapshot.time - last.time).total_seconds() > self._max_gap_s
        ):
            # the inverter kept running the session's mode through the gap: its counters say how much
            session = self._counted(session, last, snapshot, import_price, export_price)
        if session is not None and last is not None and switch > last.time:
            # the previous command ran until ``switch`` at the previous reading's power
            session = self._accumulate(session, last, last.time, switch, import_price, export_price)
        if session is not None and wanted is not session.kind:
            out.append(self._close(session, switch, (last or snapshot).soc_pct))
            session = None
        if session is None and wanted is not None:
            session = SessionRecord(
                id=uuid.uuid4().hex,
                kind=wanted,
                start=switch,
                soc_start=_soc(
                    last.soc_pct if last is not None and switch < snapshot.time else snapshot.soc_pct
                ),
                trigger=trigger,
            )
            self._money = _Money()
        if session is not None:
            # trapezoid over an interval the same command ran through, else this reading's power
            same_command = last is not None and since is not None and since < last.time
            reading = _mean(last, snapshot) if same_command and last is not None else snapshot
            session = self._accumulate(session, reading, switch, snapshot.time, import_price, export_price)
            self._session = session
            out.append(session)
        self._last = snapshot
        return out

    def close(
        self, at: datetime, soc_pct: float | None, status: SessionStatus = SessionStatus.CLOSED
    ) -> SessionRecord | None:
        """Close the open session (daemon stop, or a restart that does not continue it)."""
        if self._session is None:
            return None
        return self._close(self._session, at, soc_pct, status)

    def _close(
        self,
        session: SessionRecord,
        at: datetime,
        soc_pct: float | None,
        status: SessionStatus = SessionStatus.CLOSED,
    ) -> SessionRecord:
        end = max(at, session.start)
        closed = replace(session, status=status, end=end, soc_end=None if soc_pct is None else _soc(soc_pct))
        self._session = None
        self._money = _Money()
        return closed

    def _counted(
        self,
        session: SessionRecord,
        before: Snapshot,
        after: Snapshot,
        import_price: float | None,
        export_price: float | None,
    ) -> SessionRecord:
        """The session's energy over a gap, from the counters (unchanged when they are missing or
        went back, as after a counter reset)."""
        battery, grid = (
            ("battery_charge", "import")
            if session.kind is SessionKind.CHARGE
            else ("battery_discharge", "export")
        )
        deltas = [
            after.counters_kwh.get(k, math.nan) - before.counters_kwh.get(k, math.nan)
            for k in (battery, grid)
        ]
        if not all(math.isfinite(d) and d >= 0 for d in deltas):
            return session
        moved, through_grid = deltas[0], min(deltas[0], deltas[1])
        return self._add(session, moved, through_grid, after.soc_pct, import_price, export_price)

    def _accumulate(
        self,
        session: SessionRecord,
        reading: Snapshot,
        start: datetime,
        end: datetime,
        import_price: float | None,
        export_price: float | None,
    ) -> SessionRecord:
        """Add ``reading``'s power over [start, end] to the session (not across a data gap)."""
        dt_s = (end - start).total_seconds()
        gap_s = (reading.time - self._last.time).total_seconds() if self._last is not None else 0.0
        if dt_s <= 0 or gap_s > self._max_gap_s:
            return session
        hours = dt_s / 3600.0
        if session.kind is SessionKind.CHARGE:
            moved = max(0.0, -reading.battery_w) * hours / 1000.0
            through_grid = min(moved, max(0.0, reading.grid_w) * hours / 1000.0)
        else:
            moved = max(0.0, reading.battery_w) * hours / 1000.0
            through_grid = min(moved, max(0.0, -reading.grid_w) * hours / 1000.0)
        return self._add(session, moved, through_grid, reading.soc_pct, import_price, export_price)

    def _add(
        self,
        session: SessionRecord,
        moved_kwh: float,
        grid_kwh: float,
        soc_pct: float,
        import_price: float | None,
        export_price: float | None,
    ) -> SessionRecord:
        """Energy into (charge) or out of (discharge) the battery, ``grid_kwh`` of it bought or sold."""
        money = self._money
        if session.kind is SessionKind.CHARGE:
            if import_price is not None:
                money = _Money(money.priced_kwh + grid_kwh, money.amount + grid_kwh * import_price)
            session = replace(
                session,
                grid_kwh=session.grid_kwh + grid_kwh,
                pv_kwh=session.pv_kwh + moved_kwh - grid_kwh,
                cost=session.cost + (grid_kwh * import_price if import_price is not None else 0.0),
            )
        else:
            if export_price is not None:
                money = _Money(money.priced_kwh + grid_kwh, money.amount + grid_kwh * export_price)
            session = replace(
                session,
                out_kwh=session.out_kwh + moved_kwh,
                grid_kwh=session.grid_kwh + grid_kwh,
                cost=session.cost - (grid_kwh * export_price if export_price is not None else 0.0),
            )
        self._money = money
        avg = money.amount / money.priced_kwh if money.priced_kwh > 1e-9 else session.avg_price
        return replace(session, avg_price=avg, soc_end=_soc(soc_pct))


def reading_to_json(snapshot: Snapshot) -> dict[str, JsonValue]:
    """What a restart needs of the last reading: its time, SoC and energy counters."""
    return {
        "time": snapshot.time.isoformat(),
        "soc_pct": snapshot.soc_pct,
        "counters_kwh": dict(snapshot.counters_kwh),
    }


def reading_from_json(value: JsonValue) -> Snapshot | None:
    """The reading :func:`reading_to_json` kept (powers unknown: zero), or None."""
    if not isinstance(value, dict):
        return None
    time, soc, counters = value.get("time"), value.get("soc_pct"), value.get("counters_kwh")
    if not isinstance(time, str) or not isinstance(soc, int | float) or not isinstance(counters, dict):
        return None
    try:
        kept = {str(k): float(v) for k, v in counters.items() if isinstance(v, int | float)}
        return Snapshot(datetime.fromisoformat(time), 0.0, 0.0, 0.0, 0.0, float(soc), counters_kwh=kept)
    except ValueError:
        return None


def _mean(a: Snapshot, b: Snapshot) -> Snapshot:
    """``b`` with the powers averaged over the interval from ``a``."""
    return replace(b, battery_w=(a.battery_w + b.battery_w) / 2, grid_w=(a.grid_w + b.grid_w) / 2)


def _soc(value: float) -> float:
    return min(100.0, max(0.0, value))
