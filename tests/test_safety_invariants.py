"""Safety invariants across the executor, the guard, the overrides and the control loop.

Properties (hypothesis) over whole sequences of ticks, not single decisions: whatever the plan,
the overrides, the readings and the clock do, the command in force stays inside the configured
limits, stale or missing data means self-use at once, and an override applies for at most 24 h
after it was made. The control-loop tests use real SQLite and a recording inverter: the loop
keeps deciding (self-use on stale data, expiring overrides) when storage fails or the clock
jumps back.

``tests/test_executor_guard.py`` checks each limit for one decision; this module does not
repeat that.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.config.loading import load_config_text
from controller.config.models import BatteryConfig, ExecutorConfig, GridConfig, HemsdConfig
from controller.control.commands import CommandRejectedError, ControlLimits, OverrideCommand, parse_command
from controller.control.executor import POWER_TOLERANCE_W, Executor, ExecutorState, Intent, SafetyGuard
from controller.control.loop import ControlLoop
from controller.control.overrides import (
    MAX_DURATION,
    MODES,
    OverrideError,
    OverrideRequest,
    active,
    intent_of,
)
from drivers.inverter.types import Applied, Command, CommandKind, InverterInfo, Snapshot
from storage.datamanager import DataManager, StorageOptions
from storage.records import OverrideRecord

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GRID = GridConfig(max_import_w=7000, max_export_w=6000)
EXECUTOR = ExecutorConfig(
    stale_after_s=120,
    min_dwell_s=300,
    power_hysteresis_w=300,
    soc_hysteresis_pct=2,
    grid_charge_price_cap=1.0,
)


def battery(min_soc: float) -> BatteryConfig:
    return BatteryConfig(min_soc_pct=min_soc, max_soc_pct=95, max_charge_w=5000, max_discharge_w=4000)


# --- overrides ------------------------------------------------------------------------------------

instants = st.integers(-3 * 86400, 3 * 86400).map(lambda s: T0 + timedelta(seconds=s))


@st.composite
def override_records(draw: st.DrawFn) -> OverrideRecord:
    created = draw(instants)
    expires = draw(
        st.one_of(st.none(), st.integers(-86400, 30 * 86400).map(lambda s: created + timedelta(seconds=s)))
    )
    cancelled = draw(st.one_of(st.none(), instants))
    return OverrideRecord(
        created_at=created,
        mode=draw(st.sampled_from(MODES)),
        source="test",
        expires_at=expires,
        power_w=draw(st.one_of(st.none(), st.floats(0, 20_000))),
        soc_pct=draw(st.one_of(st.none(), st.floats(0, 100))),
        cancelled_at=cancelled,
        id=draw(st.integers(1, 10**6)),
    )


@settings(max_examples=400, deadline=None)
@given(records=st.lists(override_records(), max_size=6), now=instants)
def test_an_override_applies_only_between_its_creation_and_expiry_and_at_most_24_h(
    records: list[OverrideRecord], now: datetime
) -> None:
    record = active(records, now)
    if record is None:
        return
    assert record.mode != "auto"
    assert record.cancelled_at is None
    assert record.expires_at is not None
    assert record.created_at <= now < record.expires_at
    assert now < record.created_at + MAX_DURATION  # also for a row that says otherwise
    # it is the newest one in force: nothing newer that started, is not cancelled and not expired
    newer = [
        r
        for r in records
        if (r.created_at, r.id or 0) > (record.created_at, record.id or 0)
        and r.created_at <= now
        and r.cancelled_at is None
        and r.expires_at is not None
        and now < min(r.expires_at, r.created_at + MAX_DURATION)
    ]
    assert not newer


@settings(max_examples=500, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    seconds=st.one_of(st.integers(-(10**9), 10**9), st.integers(-10, 86410)),
    power=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    soc=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    now=instants,
)
def test_every_accepted_override_request_expires_within_24_h(
    mode: str, seconds: int, power: float | None, soc: float | None, now: datetime
) -> None:
    try:
        request = OverrideRequest(mode, "test", timedelta(seconds=seconds), power, soc)
    except OverrideError:
        return
    record = request.record(now)
    assert record.expires_at is not None
    assert now < record.expires_at <= now + MAX_DURATION
    intent = intent_of(record)  # every accepted request is a valid intent for the guard
    assert intent.source == "override"


@settings(max_examples=500, deadline=None)
@given(
    body=st.fixed_dictionaries(
        {"mode": st.sampled_from(["force_charge", "force_discharge", "hold", "self_use", "auto"])},
        optional={
            "power_w": st.one_of(st.integers(-10, 20_000), st.floats(allow_nan=False)),
            "target_soc": st.one_of(st.integers(-10, 110), st.floats(allow_nan=False)),
            "minutes": st.one_of(st.integers(-10, 3000), st.floats(allow_nan=False)),
            "expires": st.integers(-3 * 86400, 3 * 86400).map(
                lambda s: (T0 + timedelta(seconds=s)).isoformat()
            ),
        },
    )
)
def test_an_override_from_mqtt_always_expires_within_24_h(body: dict[str, object]) -> None:
    import json  # noqa: PLC0415

    try:
        command = parse_command("override", json.dumps(body).encode(), ControlLimits(), T0)
    except CommandRejectedError:
        return
    assert isinstance(command, OverrideCommand)
    assert T0 < command.expires <= T0 + MAX_DURATION


# --- the executor over sequences of ticks ----------------------------------------------------------


@dataclass(frozen=True)
class Step:
    dt_s: float
    action: str
    source: str
    power: float
    target: float | None
    load: float
    pv: float
    age_s: float | None  # None: no reading at all
    stale: bool
    temp: float | None
    price: float | None
    min_soc: float  # the runtime min SoC (MQTT number) may change between ticks


steps = st.builds(
    Step,
    dt_s=st.sampled_from([0.0, 10.0, 30.0, 60.0, 299.0, 301.0, 900.0]),
    action=st.sampled_from(["self_use", "charge", "hold", "discharge", "export_limit"]),
    source=st.sampled_from(["plan", "plan", "plan", "override", "fallback"]),
    power=st.floats(0, 12_000),
    target=st.one_of(st.none(), st.floats(0, 100)),
    load=st.floats(0, 9000),
    pv=st.floats(0, 8000),
    age_s=st.one_of(st.none(), st.sampled_from([0.0, 5.0, 119.0, 121.0, 3600.0])),
    stale=st.booleans(),
    temp=st.one_of(st.none(), st.floats(-20, 70)),
    price=st.one_of(st.none(), st.floats(-1, 3)),
    min_soc=st.sampled_from([12.0, 12.0, 25.0, 40.0]),
)


def limit_problems(cmd: Command, step: Step, bat: BatteryConfig) -> list[str]:
    """What is wrong with ``cmd`` being in force under the conditions of ``step``."""
    problems: list[str] = []
    fresh = step.age_s is not None and not step.stale and step.age_s <= EXECUTOR.stale_after_s
    if not fresh and cmd.kind is not CommandKind.SELF_USE:
        problems.append(f"{cmd.kind} on stale or missing data")
    if cmd.min_soc is not None and cmd.min_soc < bat.min_soc_pct:
        problems.append(f"floor {cmd.min_soc} below min SoC {bat.min_soc_pct}")
    if cmd.target_soc is not None and not bat.min_soc_pct <= cmd.target_soc <= bat.max_soc_pct:
        problems.append(f"target SoC {cmd.target_soc} outside {bat.min_soc_pct}..{bat.max_soc_pct}")
    if cmd.export_limit_w is not None and cmd.export_limit_w > GRID.max_export_w:
        problems.append(f"export limit {cmd.export_limit_w}")
    hot_or_cold = (
        step.temp is not None and not EXECUTOR.battery_temp_min_c <= step.temp <= EXECUTOR.battery_temp_max_c
    )
    if cmd.kind is CommandKind.CHARGE:
        house = max(0.0, step.load - step.pv)
        if cmd.power_w > bat.max_charge_w:
            problems.append(f"charge {cmd.power_w} W above the battery's {bat.max_charge_w} W")
        if cmd.power_w + house > GRID.max_import_w + POWER_TOLERANCE_W:
            problems.append(
                f"charge {cmd.power_w} W + house {house:.0f} W above the {GRID.max_import_w} W fuse"
            )
        if (
            step.price is not None
            and EXECUTOR.grid_charge_price_cap is not None
            and step.price > EXECUTOR.grid_charge_price_cap
        ):
            problems.append(f"grid charging at {step.price} above the cap")
        if hot_or_cold:
            problems.append(f"charging at {step.temp} C")
    if cmd.kind is CommandKind.DISCHARGE:
        if cmd.power_w > bat.max_discharge_w:
            problems.append(f"discharge {cmd.power_w} W above the battery's {bat.max_discharge_w} W")
        if hot_or_cold:
            problems.append(f"discharging at {step.temp} C")
    return problems


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=st.lists(steps, min_size=1, max_size=20))
def test_the_command_in_force_never_leaves_the_limits_whatever_the_sequence(sequence: list[Step]) -> None:
    state = ExecutorState()
    now = T0
    for step in sequence:
        now += timedelta(seconds=step.dt_s)
        bat = battery(step.min_soc)
        executor = Executor(SafetyGuard(EXECUTOR, bat, GRID))
        snapshot = None
        if step.age_s is not None:
            temps = {} if step.temp is None else {"battery": step.temp}
            snapshot = Snapshot(
                time=now - timedelta(seconds=step.age_s), pv_w=step.pv, load_w=step.load,
                grid_w=step.load - step.pv, battery_w=0.0, soc_pct=50.0, temperatures=temps, stale=step.stale,
            )  # fmt: skip
        export = step.power if step.action == "export_limit" else None
        intent = Intent(step.action, step.power, step.target, export, source=step.source)
        decision = executor.decide(state, intent, snapshot, now, step.price)
        problems = limit_problems(decision.command, step, bat)
        assert not problems, (problems, decision.held_back, decision.command, step)
        if intent.source == "override" or decision.guarded.safety_fallback:
            assert decision.command == decision.guarded.command  # never held back by dwell or hysteresis
        if decision.changed:
            state = decision.state


def test_a_charge_held_by_the_dwell_still_follows_the_fuse_and_a_raised_min_soc() -> None:
    executor = Executor(SafetyGuard(EXECUTOR, battery(12), GRID))
    at = T0
    first = executor.decide(ExecutorState(), Intent("charge", 5000, 90), reading(at, load_w=1000), at, 0.5)
    assert (first.command.kind, first.command.power_w) == (CommandKind.CHARGE, 5000)
    at += timedelta(seconds=30)  # well within the 300 s dwell, the house now draws 4 kW of the 7 kW fuse
    busy = executor.decide(first.state, Intent("charge", 5000, 90), reading(at, load_w=4000), at, 0.5)
    assert busy.changed
    assert busy.command.power_w <= 3000
    at += timedelta(seconds=30)  # and the minimum SoC is raised from 12 % to 40 % (an MQTT number)
    raised = Executor(SafetyGuard(EXECUTOR, battery(40), GRID))
    discharge = raised.decide(
        ExecutorState(Command(CommandKind.DISCHARGE, 3000, 12, min_soc=12), at - timedelta(seconds=10), "plan"),
        Intent("discharge", 3000, 12), reading(at), at, 0.5,
    )  # fmt: skip
    assert discharge.changed
    assert discharge.command.target_soc == 40
    assert discharge.command.min_soc == 40


# --- the control loop on real storage ----------------------------------------------------------


@dataclass
class RecordingInverter:
    """An inverter that takes every command; ``applied`` is what it was told, in order."""

    applied: list[Command] = field(default_factory=list)

    async def read(self) -> Snapshot:
        raise NotImplementedError

    async def apply(self, command: Command) -> Applied:
        self.applied.append(command)
        return Applied(command, {"mode": command.kind.value}, {})

    async def current_command(self) -> Command | None:
        return self.applied[-1] if self.applied else None

    async def info(self) -> InverterInfo:
        return InverterInfo("test", "0", "0")

    async def close(self) -> None:
        return None

    @property
    def health(self) -> dict[str, object]:
        return {"stale": False, "writes_today": len(self.applied)}

    @property
    def renew_due(self) -> bool:
        return False

    def writes_spent(self) -> tuple[date, int]:
        return date(2026, 1, 1), len(self.applied)

    def resume_writes(self, day: date, writes: int) -> None:
        return None


def loop_config(tmp_path: Path) -> HemsdConfig:
    return load_config_text(
        f"""
[battery]
min_soc_pct = 12
max_charge_w = 5000
[executor]
stale_after_s = 120
min_dwell_s = 600
[storage]
state_dir = "{tmp_path / "state"}"
"""
    )


def reading(at: datetime, **values: float) -> Snapshot:
    fields = {"pv_w": 0.0, "load_w": 500.0, "grid_w": 500.0, "battery_w": 0.0, "soc_pct": 50.0} | values
    return Snapshot(time=at, **fields)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> datetime:
        return self.t


@pytest.fixture
async def loop(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = loop_config(tmp_path)
    clock = Clock()
    async with DataManager(StorageOptions(state_dir=config.storage.state_dir), now=clock) as data:
        control = ControlLoop(config, RecordingInverter(), data, clock)
        await control.restore(None)
        yield control, clock, data


def charge_override(at: datetime, minutes: float = 60) -> OverrideRecord:
    return OverrideRequest("force_charge", "test", timedelta(minutes=minutes), 3000, 90).record(at)


async def test_stale_data_beyond_the_configured_time_means_self_use_even_during_an_override(loop) -> None:  # type: ignore[no-untyped-def]
    control, clock, data = loop
    inverter: RecordingInverter = control.inverter
    await data.save_override(charge_override(clock.t))
    await control.tick(reading(clock.t), None, None)
    assert inverter.applied[-1].kind is CommandKind.CHARGE
    clock.t += timedelta(seconds=30)
    await control.tick(reading(clock.t - timedelta(seconds=30)), None, None)  # 30 s old: fine
    assert inverter.applied[-1].kind is CommandKind.CHARGE
    clock.t += timedelta(seconds=100)
    await control.tick(reading(T0), None, None)  # the same reading, now 130 s old
    assert inverter.applied[-1].kind is CommandKind.SELF_USE
    await control.tick(replace(reading(clock.t), stale=True), None, None)  # flagged stale by the driver
    assert inverter.applied[-1].kind is CommandKind.SELF_USE
    assert control.state.command is not None
    assert control.state.command.kind is CommandKind.SELF_USE


async def test_an_override_stops_applying_the_tick_it_expires(loop) -> None:  # type: ignore[no-untyped-def]
    control, clock, data = loop
    inverter: RecordingInverter = control.inverter
    await data.save_override(charge_override(clock.t, minutes=20))
    for _ in range(41):  # 20 min of 30 s ticks, and one more; the battery charges as told
        await control.tick(reading(clock.t, battery_w=-3000.0), None, None)
        expected = CommandKind.CHARGE if clock.t < T0 + timedelta(minutes=20) else CommandKind.SELF_USE
        assert control.state.command is not None
        assert control.state.command.kind is expected, clock.t
        clock.t += timedelta(seconds=30)
    assert inverter.applied[-1].kind is CommandKind.SELF_USE


async def test_a_stored_override_without_a_24_h_limit_still_ends_after_24_h(loop) -> None:  # type: ignore[no-untyped-def]
    control, clock, data = loop
    forever = OverrideRecord(
        created_at=clock.t, mode="force_charge", source="test", expires_at=clock.t + timedelta(days=365),
        power_w=3000, soc_pct=90,
    )  # fmt: skip  # e.g. a row written by an older version or by hand
    await data.save_override(forever)
    await control.tick(reading(clock.t), None, None)
    assert control.state.command is not None
    assert control.state.command.kind is CommandKind.CHARGE
    clock.t += MAX_DURATION
    await control.tick(reading(clock.t), None, None)
    assert control.state.command.kind is CommandKind.SELF_USE


async def test_the_loop_keeps_deciding_when_storage_fails(loop) -> None:  # type: ignore[no-untyped-def]
    control, clock, data = loop
    inverter: RecordingInverter = control.inverter
    await data.save_override(charge_override(clock.t, minutes=10))
    await control.tick(reading(clock.t), None, None)
    assert inverter.applied[-1].kind is CommandKind.CHARGE
    await data.store.close()  # SQLite gone: every read and write fails from here on
    clock.t += timedelta(seconds=30)
    await control.tick(reading(clock.t), None, None)  # the override (read before) still applies
    assert inverter.applied[-1].kind is CommandKind.CHARGE or control.state.command.kind is CommandKind.CHARGE
    clock.t += timedelta(seconds=200)
    await control.tick(reading(clock.t - timedelta(seconds=200)), None, None)  # stale: self-use at once
    assert inverter.applied[-1].kind is CommandKind.SELF_USE
    clock.t += timedelta(minutes=15)
    await control.tick(reading(clock.t), None, None)  # fresh again, and the override has expired
    assert control.state.command is not None
    assert control.state.command.kind is CommandKind.SELF_USE
    await data.store.open()  # for the fixture's orderly close


def test_a_clock_jumping_back_does_not_hold_a_plan_change_for_the_jump() -> None:
    executor = Executor(SafetyGuard(EXECUTOR, battery(12), GRID))
    first = executor.decide(ExecutorState(), Intent("charge", 3000, 80), reading(T0), T0, 0.5)
    assert first.changed
    back = T0 - timedelta(hours=1)  # NTP corrects the clock an hour back
    later = executor.decide(first.state, Intent("self_use"), reading(back), back, 0.5)
    assert later.changed, later.held_back  # not held for an hour plus the dwell
    assert later.command.kind is CommandKind.SELF_USE


async def test_a_clock_jumping_back_does_not_stop_the_periodic_verification(loop) -> None:  # type: ignore[no-untyped-def]
    control, clock, _ = loop
    inverter: RecordingInverter = control.inverter
    await control.tick(reading(clock.t), None, None)
    applied = len(inverter.applied)
    clock.t -= timedelta(hours=1)
    for _ in range(40):  # 20 minutes of ticks on the corrected clock
        clock.t += timedelta(seconds=30)
        await control.tick(reading(clock.t), None, None)
    assert len(inverter.applied) > applied  # re-applied (drift check) within 15 minutes, as always
