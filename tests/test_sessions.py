"""Session bookkeeping: opening, energy and money, closing, continuing after a restart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from controller.control.sessions import SessionTracker, reading_from_json, reading_to_json
from drivers.inverter.types import CommandKind, Snapshot
from storage.records import SessionKind, SessionRecord, SessionStatus, SessionTrigger

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def reading(minutes: float, battery_w: float, grid_w: float, soc: float, pv_w: float = 0.0) -> Snapshot:
    load = grid_w + pv_w + battery_w
    return Snapshot(at(minutes), pv_w, load, grid_w, battery_w, soc)


class Feed:
    """Readings in time order; a command change takes effect ``delay_s`` after the reading before it."""

    def __init__(self, tracker: SessionTracker, delay_s: float = 0.0) -> None:
        self.tracker = tracker
        self.delay = timedelta(seconds=delay_s)
        self.kind: CommandKind | None = None
        self.since: datetime | None = None
        self.last: datetime | None = None

    def __call__(
        self,
        snapshot: Snapshot,
        kind: CommandKind,
        import_price: float = 0.5,
        export_price: float = 0.2,
        trigger: SessionTrigger = SessionTrigger.PLAN,
    ) -> list[SessionRecord]:
        if kind is not self.kind:
            self.kind = kind
            self.since = (self.last or snapshot.time) + self.delay
        self.last = snapshot.time
        return self.tracker.update(snapshot, kind, self.since, trigger, import_price, export_price)


def test_grid_charge_session_accumulates_energy_and_cost() -> None:
    feed = Feed(SessionTracker())
    assert feed(reading(0, 0, 300, 20), CommandKind.SELF_USE) == []
    # charge applied right after the reading at minute 0
    opened = feed(reading(1, -3000, 3300, 20), CommandKind.CHARGE)
    assert opened[0].status is SessionStatus.OPEN
    assert opened[0].kind is SessionKind.CHARGE
    assert opened[0].start == at(0)
    for minute in range(2, 62):  # an hour at 3 kW from the grid, price 0.5 then 0.7
        feed(reading(minute, -3000, 3300, 20 + minute / 3), CommandKind.CHARGE, 0.5 if minute < 32 else 0.7)
    (record,) = feed(reading(62, 0, 300, 41), CommandKind.SELF_USE, 0.7)
    assert record.status is SessionStatus.CLOSED
    assert record.end == at(61)
    assert record.grid_kwh == pytest.approx(3.05)  # minutes 0..61 under the charge command
    assert record.pv_kwh == pytest.approx(0.0)
    assert record.avg_price == pytest.approx((31 * 0.5 + 30 * 0.7) / 61)
    assert record.cost == pytest.approx(record.grid_kwh * record.avg_price)
    assert record.soc_start == 20
    assert record.soc_end == pytest.approx(20 + 61 / 3)
    assert feed.tracker.open_session is None


def test_interval_is_split_where_the_command_took_effect() -> None:
    # readings 10 minutes apart, the write takes 2 minutes to land: 8 of the first 10 minutes charge
    feed = Feed(SessionTracker(max_gap_s=3600), delay_s=120)
    feed(reading(0, 0, 300, 20), CommandKind.SELF_USE)
    feed(reading(10, -6000, 6300, 25), CommandKind.CHARGE)
    feed(reading(20, -6000, 6300, 30), CommandKind.CHARGE)
    # back to self-use 2 minutes after minute 20: those 2 minutes still charged at 6 kW
    (closed,) = feed(reading(30, 0, 300, 31), CommandKind.SELF_USE)
    assert closed.start == at(2)
    assert closed.end == at(22)
    assert closed.grid_kwh == pytest.approx(6.0 * 20 / 60)


def test_pv_share_of_a_charge_session() -> None:
    feed = Feed(SessionTracker())
    for minute in range(61):
        (record,) = feed(
            reading(minute, -4000, 1000, 50, pv_w=3500), CommandKind.CHARGE, 0.4, 0.1, SessionTrigger.OVERRIDE
        )
    assert record.grid_kwh == pytest.approx(1.0)
    assert record.pv_kwh == pytest.approx(3.0)
    assert record.trigger is SessionTrigger.OVERRIDE


def test_discharge_session_earns_money() -> None:
    feed = Feed(SessionTracker())
    for minute in range(31):
        (record,) = feed(reading(minute, 4000, -3500, 90), CommandKind.DISCHARGE, 0.5, 1.2)
    assert record.out_kwh == pytest.approx(2.0)
    assert record.grid_kwh == pytest.approx(1.75)
    assert record.cost == pytest.approx(-1.75 * 1.2)
    assert record.avg_price == pytest.approx(1.2)


def test_gaps_and_stale_readings_are_not_integrated() -> None:
    feed = Feed(SessionTracker())
    feed(reading(0, -3000, 3300, 20), CommandKind.CHARGE)
    assert feed(reading(1, -3000, 3300, 20).as_stale(), CommandKind.CHARGE) == []
    (record,) = feed(reading(30, -3000, 3300, 30), CommandKind.CHARGE)
    assert record.grid_kwh == 0.0  # 30 min since the last good reading: a gap, not energy


def test_restart_continues_the_open_session_without_duplicating_it() -> None:
    first = Feed(SessionTracker())
    for minute in range(11):
        (before,) = first(reading(minute, -3000, 3300, 25), CommandKind.CHARGE)
    resumed = Feed(SessionTracker(open_session=before, last_reading=reading(10, -3000, 3300, 25)))
    resumed.kind, resumed.since, resumed.last = CommandKind.CHARGE, first.since, at(10)
    for minute in range(11, 21):
        (after,) = resumed(reading(minute, -3000, 3300, 30), CommandKind.CHARGE)
    assert after.id == before.id
    assert after.grid_kwh == pytest.approx(1.0)
    assert after.avg_price == pytest.approx(0.5)
    closed = resumed.tracker.close(at(21), 30.5)
    assert closed is not None
    assert closed.status is SessionStatus.CLOSED


def counted(minutes: float, soc: float, charged: float, imported: float, discharged: float = 0.0) -> Snapshot:
    """A reading with the inverter's lifetime counters (kWh) and, for the gap, no power."""
    counters = {"battery_charge": charged, "import": imported, "battery_discharge": discharged, "export": 0.0}
    return Snapshot(at(minutes), 0.0, 0.0, 0.0, 0.0, soc, counters_kwh=counters)


def test_a_gap_is_accounted_from_the_inverters_counters() -> None:
    feed = Feed(SessionTracker())
    (first,) = feed(counted(0, 20, charged=100.0, imported=500.0), CommandKind.CHARGE)
    # killed for 30 minutes while charging at 3 kW, 2.4 kW of it from the grid
    (after,) = feed(counted(30, 35, charged=101.5, imported=501.2), CommandKind.CHARGE)
    assert after.id == first.id
    assert after.grid_kwh == pytest.approx(1.2)
    assert after.pv_kwh == pytest.approx(0.3)
    assert after.cost == pytest.approx(0.6)
    assert after.soc_end == 35


def test_counters_that_went_back_add_nothing() -> None:
    feed = Feed(SessionTracker())
    feed(counted(0, 20, charged=100.0, imported=500.0), CommandKind.CHARGE)
    (after,) = feed(counted(30, 35, charged=0.2, imported=0.1), CommandKind.CHARGE)  # a counter reset
    assert after.grid_kwh == 0.0


def test_the_last_reading_survives_a_restart_as_json() -> None:
    last = counted(10, 42.5, charged=100.0, imported=500.0)
    kept = reading_from_json(json.loads(json.dumps(reading_to_json(last))))
    assert kept is not None
    assert (kept.time, kept.soc_pct, kept.counters_kwh) == (last.time, last.soc_pct, last.counters_kwh)
    assert reading_from_json({"time": "yesterday"}) is None
    assert reading_from_json(None) is None
