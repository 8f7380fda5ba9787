"""The closed loop against the emulator and the real goodwe library, on an accelerated clock:
the inverter follows the plan slot by slot, writes stay under the cap, sessions match the
emulator's energy counters, and a jump of the load re-plans within one tick."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.cli.demo import write_price_csv
from controller.clock import Clock, VirtualClock
from controller.config.loading import load_config_text
from controller.config.models import HemsdConfig
from controller.control.overrides import OverrideRequest
from controller.daemon.app import HemsdApp
from drivers.inverter.types import CommandKind
from storage.records import SessionRecord

TZ = ZoneInfo("Europe/Warsaw")
START = datetime(2026, 6, 15, tzinfo=TZ)
CONFIG = """
[site]
timezone = "Europe/Warsaw"
[logging]
level = "WARNING"
[daemon]
poll_interval_s = 30
plan_interval_min = 15
[inverter]
type = "emulator"
protocol = "udp"
initial_soc_pct = 40
daily_load_kwh = 12
[battery]
min_soc_pct = 12
[executor]
min_dwell_s = 0
[storage]
state_dir = "{state}"
commit_interval_s = 0.5
[[prices.sources]]
type = "csv"
path = "{csv}"
currency = "PLN"
timezone = "Europe/Warsaw"
[prices.tariff]
vat = 0.23
[prices.tariff.fees.all]
distribution = 0.35
"""
MODE_OF_ACTION = {
    "charge": "charge",
    "discharge": "discharge",
    "hold": "hold",
    "self_use": "self_use",
    "export_limit": "self_use",
}
KIND_TO_MODE = {
    CommandKind.CHARGE: "charge",
    CommandKind.DISCHARGE: "discharge",
    CommandKind.HOLD: "hold",
    CommandKind.SELF_USE: "self_use",
}


@dataclass
class Tick:
    time: datetime
    plan_action: str | None
    command: CommandKind | None
    held_back: str
    source: str
    emulator_mode: str
    power: float
    charge_kwh: float
    discharge_kwh: float


class RecordingApp(HemsdApp):
    def __init__(self, config: HemsdConfig, clock: Clock) -> None:
        super().__init__(config, clock)
        self.ticks: list[Tick] = []
        self.replans: list[tuple[datetime, str]] = []
        self.final_sessions: list[SessionRecord] = []

    async def replan(self, trigger: str) -> None:
        self.replans.append((self.clock.now(), trigger))
        await super().replan(trigger)

    async def poll(self) -> None:
        await super().poll()
        assert self.emulator is not None
        now = self.clock.now()
        decision = self.parts.control.last_decision
        assert decision is not None
        intent = decision.guarded.intent  # the plan slot (or override) this tick followed
        counters = self.emulator.counters
        self.ticks.append(
            Tick(
                now,
                intent.action if intent.source == "plan" else None,
                self.parts.control.state.command.kind if self.parts.control.state.command else None,
                decision.held_back,
                decision.guarded.intent.source,
                self.emulator.behaviour.mode,
                intent.power_w,
                counters.charge_kwh,
                counters.discharge_kwh,
            )
        )


async def run_site(tmp_path: Path, hours: float, begin_h: float = 0.0, during=None) -> RecordingApp:  # type: ignore[no-untyped-def]
    """Drive the application's jobs at their configured cadence on a virtual clock (I/O takes no
    simulated time, so the comparison with the emulator's counters is exact to the physics)."""
    csv = tmp_path / "prices.csv"
    write_price_csv(csv, START - timedelta(days=1), days=4)
    config = load_config_text(CONFIG.format(state=tmp_path / "state", csv=csv))
    clock = VirtualClock(START + timedelta(hours=begin_h))
    app = RecordingApp(config, clock)
    await app.start()
    d = config.daemon
    period = {
        "poll": d.poll_interval_s,
        "plan": d.plan_interval_min * 60.0,
        "prices": d.prices_interval_min * 60.0,
        "forecast": d.forecast_interval_min * 60.0,
    }
    due = {name: clock.now() + timedelta(seconds=p) for name, p in period.items()}
    jobs = {
        "poll": app.poll,
        "plan": app.scheduled_replan,
        "prices": app.refresh_prices,
        "forecast": app.refresh_forecast,
    }
    end = clock.now() + timedelta(hours=hours)
    try:
        while clock.now() < end:
            name = min(due, key=lambda n: due[n])
            await clock.sleep((due[name] - clock.now()).total_seconds())
            await jobs[name]()
            due[name] += timedelta(seconds=period[name])
            if during is not None:
                await during(app, clock)
        await app.parts.data.flush()
        app.final_sessions = await app.parts.data.sessions(limit=1000)
    finally:
        await app.stop()
    return app


@pytest.mark.slow
async def test_the_daylight_hours_follow_the_plan_with_few_writes_and_exact_sessions(tmp_path: Path) -> None:
    app = await run_site(tmp_path, hours=16, begin_h=4)
    ticks, sessions = app.ticks, app.final_sessions
    assert app.emulator is not None
    writes = app.emulator.writes_total
    assert len(ticks) == 1 + 16 * 120  # the start-up tick, then one per 30 simulated seconds
    # the inverter's mode follows the plan (where the plan, not a guard, decides): the recourse
    # planner's executor re-decides from every reading, and small power changes are held back
    # within the hysteresis, the command in force then of the same kind
    followed = [
        t
        for t in ticks
        if t.source == "plan" and t.held_back in ("", "within hysteresis") and t.plan_action is not None
    ]
    assert len(followed) > 0.8 * len(ticks)
    mismatched = [t for t in followed if MODE_OF_ACTION[t.plan_action] != t.emulator_mode]  # type: ignore[index]
    assert not mismatched, [
        (t.time.isoformat(), t.plan_action, t.command, t.emulator_mode, t.power) for t in mismatched[:10]
    ]
    assert {t.emulator_mode for t in ticks} >= {"self_use", "charge"} or {t.emulator_mode for t in ticks} >= {
        "self_use",
        "discharge",
    }
    # writes stay under the daily cap
    assert writes < app.config.inverter.max_writes_per_day
    # sessions match the emulator's energy counters within 1 %
    emulated_charge = emulated_discharge = 0.0
    for before, after in itertools.pairwise(ticks):
        if before.command is CommandKind.CHARGE:
            emulated_charge += after.charge_kwh - before.charge_kwh
        if before.command is CommandKind.DISCHARGE:
            emulated_discharge += after.discharge_kwh - before.discharge_kwh
    session_charge = sum(s.grid_kwh + s.pv_kwh for s in sessions if s.kind.value == "charge")
    session_discharge = sum(s.out_kwh for s in sessions if s.kind.value == "discharge")
    assert emulated_charge + emulated_discharge > 1.0  # the day had real sessions
    assert session_charge == pytest.approx(emulated_charge, rel=0.01, abs=0.02)
    assert session_discharge == pytest.approx(emulated_discharge, rel=0.01, abs=0.02)
    assert all(s.status.value in ("closed", "open") for s in sessions)
    assert sum(s.status.value == "open" for s in sessions) <= 1


async def test_a_load_jump_replans_within_one_tick(tmp_path: Path) -> None:
    jumped: list[datetime] = []

    async def jump(app: RecordingApp, clock: Clock) -> None:
        if not jumped and clock.now() >= START + timedelta(hours=3, minutes=5):
            assert app.emulator is not None
            app.emulator.set_profiles(load=lambda t: 7500.0)
            jumped.append(clock.now())

    app = await run_site(tmp_path, hours=3.5, during=jump)
    after = [t for t in app.ticks if t.time > jumped[0]]
    replans = [(t, why) for t, why in app.replans if t > jumped[0]]
    # the first tick after the jump re-plans, with the deviation as its trigger
    assert replans[0][0] == after[0].time
    assert replans[0][1].startswith("deviation: load-PV 7500 W"), replans[:3]


async def test_an_override_applies_on_the_next_tick_and_replans_when_it_starts_and_ends(
    tmp_path: Path,
) -> None:
    marks: dict[str, datetime] = {}

    async def override(app: RecordingApp, clock: Clock) -> None:
        if "set" not in marks and clock.now() >= START + timedelta(hours=1):
            request = OverrideRequest("force_charge", "test", timedelta(minutes=20), power_w=3000, soc_pct=90)
            await app.parts.data.save_override(request.record(clock.now()))
            marks["set"] = clock.now()

    app = await run_site(tmp_path, hours=2, during=override)
    after = [t for t in app.ticks if t.time > marks["set"]]
    assert after[0].command is CommandKind.CHARGE
    assert after[0].source == "override"
    assert after[0].emulator_mode == "charge"
    started = [t for t, why in app.replans if why == "override started"]
    ended = [t for t, why in app.replans if why == "override ended"]
    assert started == [after[0].time]
    assert len(ended) == 1
    assert marks["set"] + timedelta(minutes=20) <= ended[0] <= marks["set"] + timedelta(minutes=21)
    back = [t for t in app.ticks if t.time >= ended[0]]
    assert back[0].command is not CommandKind.CHARGE or back[0].source == "plan"  # the plan decides again
