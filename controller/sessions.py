"""Charging and discharging sessions: open when the inverter is told to charge from the grid (or
discharge to it), accumulate energy and money from each reading, close when that stops.

A session is a SessionRecord (storage's row type). The tracker is pure bookkeeping: the caller
persists every record it returns, and after a restart hands back the session that was open so
that it is continued (same kind still commanded) or closed, never duplicated.

Energy between two readings is the later reading's power times the time between them: the
inverter is commanded right after a reading, so a reading describes the interval that ends at it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from drivers.inverter.types import CommandKind, Snapshot
from storage.records import SessionKind, SessionRecord, SessionStatus, SessionTrigger

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
        trigger: SessionTrigger,
        import_price: float | None,
        export_price: float | None,
    ) -> list[SessionRecord]:
        """Account this reading; returns the records to persist (closed, opened or updated)."""
        out: list[SessionRecord] = []
        if snapshot.stale:
            return out
        wanted = KIND_OF_COMMAND.get(command) if command is not None else None
        session = self._session
        if session is not None:
            session = self._accumulate(session, snapshot, import_price, export_price)
            if wanted is not session.kind:
                out.append(self._close(session, snapshot.time, snapshot.soc_pct))
                session = None
            else:
                self._session = session
                out.append(session)
        if session is None and wanted is not None:
            session = SessionRecord(
                id=uuid.uuid4().hex,
                kind=wanted,
                start=snapshot.time,
                soc_start=_soc(snapshot.soc_pct),
                trigger=trigger,
            )
            self._session = session
            self._money = _Money()
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

    def _accumulate(
        self,
        session: SessionRecord,
        snapshot: Snapshot,
        import_price: float | None,
        export_price: float | None,
    ) -> SessionRecord:
        last = self._last
        if last is None:
            return session
        dt_s = (snapshot.time - last.time).total_seconds()
        if dt_s <= 0 or dt_s > self._max_gap_s:
            return session
        hours = dt_s / 3600.0
        money = self._money
        if session.kind is SessionKind.CHARGE:
            charge_kwh = max(0.0, -snapshot.battery_w) * hours / 1000.0
            grid_kwh = min(charge_kwh, max(0.0, snapshot.grid_w) * hours / 1000.0)
            if import_price is not None:
                money = _Money(money.priced_kwh + grid_kwh, money.amount + grid_kwh * import_price)
            session = replace(
                session,
                grid_kwh=session.grid_kwh + grid_kwh,
                pv_kwh=session.pv_kwh + charge_kwh - grid_kwh,
                cost=session.cost + (grid_kwh * import_price if import_price is not None else 0.0),
            )
        else:
            out_kwh = max(0.0, snapshot.battery_w) * hours / 1000.0
            exported = min(out_kwh, max(0.0, -snapshot.grid_w) * hours / 1000.0)
            if export_price is not None:
                money = _Money(money.priced_kwh + exported, money.amount + exported * export_price)
            session = replace(
                session,
                out_kwh=session.out_kwh + out_kwh,
                grid_kwh=session.grid_kwh + exported,
                cost=session.cost - (exported * export_price if export_price is not None else 0.0),
            )
        self._money = money
        avg = money.amount / money.priced_kwh if money.priced_kwh > 1e-9 else session.avg_price
        return replace(session, avg_price=avg, soc_end=_soc(snapshot.soc_pct))


def _soc(value: float) -> float:
    return min(100.0, max(0.0, value))
