"""Session bookkeeping: opening, energy and money, closing, continuing after a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.sessions import SessionTracker
from drivers.inverter.types import CommandKind, Snapshot
from storage.records import SessionKind, SessionStatus, SessionTrigger

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def reading(minutes: float, battery_w: float, grid_w: float, soc: float, pv_w: float = 0.0) -> Snapshot:
    load = grid_w + pv_w + battery_w
    return Snapshot(T0 + timedelta(minutes=minutes), pv_w, load, grid_w, battery_w, soc)


def test_grid_charge_session_accumulates_energy_and_cost() -> None:
    tracker = SessionTracker()
    assert tracker.update(reading(0, 0, 300, 20), CommandKind.SELF_USE, SessionTrigger.PLAN, 0.5, 0.2) == []
    opened = tracker.update(reading(1, -3000, 3300, 20), CommandKind.CHARGE, SessionTrigger.PLAN, 0.5, 0.2)
    assert opened[0].status is SessionStatus.OPEN
    assert opened[0].kind is SessionKind.CHARGE
    for minute in range(2, 62):  # one hour at 3 kW from the grid, price 0.5 then 0.7
        price = 0.5 if minute < 32 else 0.7
        tracker.update(
            reading(minute, -3000, 3300, 20 + minute / 3), CommandKind.CHARGE, SessionTrigger.PLAN, price, 0.2
        )
    closed = tracker.update(reading(62, 0, 300, 41), CommandKind.SELF_USE, SessionTrigger.PLAN, 0.7, 0.2)
    record = closed[0]
    assert record.status is SessionStatus.CLOSED
    assert record.end == T0 + timedelta(minutes=62)
    assert record.grid_kwh == pytest.approx(3.0)
    assert record.pv_kwh == pytest.approx(0.0)
    assert record.avg_price == pytest.approx((0.5 + 0.7) / 2)
    assert record.cost == pytest.approx(record.grid_kwh * record.avg_price)
    assert record.soc_start == 20
    assert record.soc_end == 41
    assert tracker.open_session is None


def test_pv_share_of_a_charge_session() -> None:
    tracker = SessionTracker()
    for minute in range(61):
        (record,) = tracker.update(
            reading(minute, -4000, 1000, 50, pv_w=3500), CommandKind.CHARGE, SessionTrigger.OVERRIDE, 0.4, 0.1
        )
    assert record.grid_kwh == pytest.approx(1.0)
    assert record.pv_kwh == pytest.approx(3.0)
    assert record.trigger is SessionTrigger.OVERRIDE


def test_discharge_session_earns_money() -> None:
    tracker = SessionTracker()
    for minute in range(31):
        (record,) = tracker.update(
            reading(minute, 4000, -3500, 90), CommandKind.DISCHARGE, SessionTrigger.PLAN, 0.5, 1.2
        )
    assert record.out_kwh == pytest.approx(2.0)
    assert record.grid_kwh == pytest.approx(1.75)
    assert record.cost == pytest.approx(-1.75 * 1.2)
    assert record.avg_price == pytest.approx(1.2)


def test_gaps_and_stale_readings_are_not_integrated() -> None:
    tracker = SessionTracker()
    tracker.update(reading(0, -3000, 3300, 20), CommandKind.CHARGE, SessionTrigger.PLAN, 0.5, 0.2)
    stale = reading(1, -3000, 3300, 20).as_stale()
    assert tracker.update(stale, CommandKind.CHARGE, SessionTrigger.PLAN, 0.5, 0.2) == []
    record = tracker.update(reading(30, -3000, 3300, 30), CommandKind.CHARGE, SessionTrigger.PLAN, 0.5, 0.2)[
        0
    ]
    assert record.grid_kwh == 0.0  # 30 min since the last good reading: a gap, not energy


def test_restart_continues_the_open_session_without_duplicating_it() -> None:
    first = SessionTracker()
    for minute in range(11):
        (before,) = first.update(
            reading(minute, -3000, 3300, 25), CommandKind.CHARGE, SessionTrigger.PLAN, 0.5, 0.2
        )
    resumed = SessionTracker(open_session=before, last_reading=reading(10, -3000, 3300, 25))
    for minute in range(11, 21):
        (after,) = resumed.update(
            reading(minute, -3000, 3300, 30), CommandKind.CHARGE, SessionTrigger.PLAN, 0.5, 0.2
        )
    assert after.id == before.id
    assert after.grid_kwh == pytest.approx(1.0)
    assert after.avg_price == pytest.approx(0.5)
    closed = resumed.close(T0 + timedelta(minutes=21), 30.5)
    assert closed is not None
    assert closed.status is SessionStatus.CLOSED
