"""Pure mapping of the GoodWe driver: sensors to Snapshot, Commands to ET settings and back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.emulator_fixtures import require_dumps

from drivers.inverter.goodwe_mapping import (
    EcoSlot,
    EtSettings,
    Policy,
    StepKind,
    Target,
    command_from_settings,
    mismatches,
    mode_label,
    plan,
    snapshot_from_runtime,
    target_for,
)
from drivers.inverter.types import Command, CommandKind

POLICY = Policy(
    rated_power_w=10000, base_export_limit_w=10000, base_min_soc=10, min_floor_soc=11, ems_supported=True
)
T = datetime(2026, 6, 1, 12, tzinfo=UTC)
GENERAL = EtSettings(0, None, (False, False, False), 1, 0, True, 10000, 11)


def settings_realising(target: Target) -> EtSettings:
    """The settings an ET holds after the target was written (what the read-back shows)."""
    eco = None
    if target.eco_power is not None:
        eco = EcoSlot(0, 0, 23, 59, True, 0x7F, target.eco_power, target.eco_soc or 100)
    return EtSettings(
        work_mode=target.work_mode,
        eco=eco,
        other_groups_on=(False, False, False),
        ems_mode=target.ems_mode,
        ems_power_w=target.ems_power_w if target.ems_power_w is not None else 0,
        export_enabled=True,
        export_limit_w=target.export_limit_w,
        floor_soc=target.floor_soc,
    )


def test_charge_plan_writes_group_before_mode_and_nothing_else() -> None:
    target = target_for(Command(CommandKind.CHARGE, 3000, 80), POLICY)
    steps = plan(GENERAL, target, eco_v2=True)
    assert [(s.kind, s.value) for s in steps] == [(StepKind.ECO_GROUP, -30), (StepKind.OPERATION_MODE, 3)]
    assert steps[0].soc == 80
    assert sum(s.writes for s in steps) == 3  # group, then work mode + its EMS reset


def test_discharge_raises_the_floor_first_and_self_use_lowers_it_last() -> None:
    discharge = target_for(Command(CommandKind.DISCHARGE, 5000, 40), POLICY)
    steps = plan(GENERAL, discharge, eco_v2=True)
    assert steps[0].kind is StepKind.DOD
    assert steps[0].value == 40
    back = plan(settings_realising(discharge), target_for(Command.self_use(), POLICY), eco_v2=True)
    assert [s.kind for s in back] == [StepKind.OPERATION_MODE, StepKind.DOD]
    assert back[-1].value == 11


def test_hold_after_eco_writes_ems_after_the_mode_that_resets_it() -> None:
    charging = settings_realising(target_for(Command(CommandKind.CHARGE, 3000, 80), POLICY))
    steps = plan(
        replace(charging, ems_power_w=500), target_for(Command(CommandKind.HOLD), POLICY), eco_v2=True
    )
    # the EMS power 500 is reset to 0 by the operation mode: only the EMS mode is written after it
    assert [s.kind for s in steps] == [StepKind.OPERATION_MODE, StepKind.EMS_MODE]
    assert steps[-1].value == 2
    in_general = replace(GENERAL, ems_power_w=500)
    steps = plan(in_general, target_for(Command(CommandKind.HOLD), POLICY), eco_v2=True)
    assert [(s.kind, s.value) for s in steps] == [(StepKind.EMS_POWER, 0), (StepKind.EMS_MODE, 2)]


def test_other_eco_groups_are_switched_off_when_eco_is_used() -> None:
    current = replace(GENERAL, other_groups_on=(False, True, False))
    steps = plan(current, target_for(Command(CommandKind.DISCHARGE, 1000, 20), POLICY), eco_v2=True)
    assert [s.setting for s in steps if s.kind is StepKind.ECO_SWITCH] == ["eco_mode_3_switch"]


@pytest.mark.parametrize(
    ("command", "work_mode", "eco_power", "ems_mode", "floor", "limit", "enable"),
    [
        (Command(CommandKind.CHARGE, 50, 90), 3, -1, 1, 11, 10000, False),  # any power is at least 1 %
        (Command(CommandKind.CHARGE, 12000, 90), 3, -100, 1, 11, 10000, False),
        (Command(CommandKind.CHARGE, 0, 90), 0, None, 2, 11, 10000, False),  # 0 W charging = hold
        (Command(CommandKind.DISCHARGE, 0, 30), 0, None, 2, 11, 10000, False),
        (Command(CommandKind.SELF_USE, min_soc=5), 0, None, 1, 11, 10000, False),  # DoD at most 89 %
        (Command(CommandKind.SELF_USE, min_soc=20.2, export_limit_w=0), 0, None, 1, 21, 0, True),
        (Command(CommandKind.DISCHARGE, 2000, 15, min_soc=25), 3, 20, 1, 25, 10000, False),
    ],
)
def test_target_quantises_and_clamps(command: Command, work_mode: int, eco_power: int | None,
                                     ems_mode: int, floor: int, limit: int, enable: bool) -> None:  # fmt: skip
    t = target_for(command, POLICY)
    assert (t.work_mode, t.eco_power, t.ems_mode, t.floor_soc, t.export_limit_w, t.export_enable) == (
        work_mode, eco_power, ems_mode, floor, limit, enable,
    )  # fmt: skip


def test_hold_without_ems_uses_an_idle_eco_group() -> None:
    t = target_for(Command(CommandKind.HOLD), replace(POLICY, ems_supported=False))
    assert (t.work_mode, t.eco_power, t.ems_mode) == (3, 0, None)
    assert command_from_settings(settings_realising(t), POLICY) == Command(CommandKind.HOLD, min_soc=11)


def test_idle_is_the_ems_battery_standby_or_without_ems_the_idle_eco_group() -> None:
    t = target_for(Command(CommandKind.IDLE, export_limit_w=0), POLICY)
    assert (t.work_mode, t.eco_power, t.ems_mode, t.ems_power_w, t.export_limit_w) == (0, None, 8, None, 0)
    assert [s.kind for s in plan(GENERAL, t, eco_v2=True)] == [
        StepKind.EXPORT_LIMIT,
        StepKind.EMS_MODE,
    ]
    no_ems = replace(POLICY, ems_supported=False)
    t = target_for(Command(CommandKind.IDLE), no_ems)
    assert (t.work_mode, t.eco_power, t.ems_mode) == (3, 0, None)  # the ET's "neither charge nor discharge"


commands = st.builds(
    Command,
    kind=st.sampled_from(list(CommandKind)),
    power_w=st.integers(1, 100).map(lambda p: p * 100.0),
    target_soc=st.integers(12, 100).map(float),
    export_limit_w=st.one_of(st.none(), st.integers(0, 9000).map(float)),
    min_soc=st.one_of(st.none(), st.integers(11, 100).map(float)),
)


@given(commands)
def test_settings_read_back_as_the_command_that_wrote_them(command: Command) -> None:
    target = target_for(command, POLICY)
    settings = settings_realising(target)
    assert mismatches(settings, target, eco_v2=True) == ()
    assert plan(settings, target, eco_v2=True) == []  # nothing left to write
    again = command_from_settings(settings, POLICY)
    assert again is not None
    assert target_for(again, POLICY) == target  # the same settings: a restart changes nothing
    assert mode_label(settings, POLICY) == again.kind.value


def test_mismatches_name_the_setting_and_both_values() -> None:
    target = target_for(Command(CommandKind.CHARGE, 3000, 80, export_limit_w=100), POLICY)
    wrong = replace(settings_realising(target), work_mode=0, export_limit_w=200)
    found = mismatches(wrong, target, eco_v2=True)
    assert "work_mode: wanted 3, read 0" in found
    assert "grid_export_limit: wanted 100, read 200" in found


def test_settings_the_driver_never_writes_have_no_command() -> None:
    peak_shaving = replace(GENERAL, work_mode=4)
    assert command_from_settings(peak_shaving, POLICY) is None
    assert mode_label(peak_shaving, POLICY) == "work_mode_4"
    assert mode_label(replace(GENERAL, ems_mode=11), POLICY) == "ems_11"


def test_snapshot_from_a_real_inverter_reading_corrects_the_signs() -> None:
    samples = require_dumps()
    data = samples["et/GW10K-ET_running_data.hex"] | samples["et/GW10K-ET_meter_data.hex"]
    data |= samples["et/GW10K-ET_battery_info.hex"]
    snap = snapshot_from_runtime(data, T, "self_use")
    assert data["pbattery1"] < 0
    assert data["battery_mode_label"] == "Charge"
    assert snap.battery_w == data["pbattery1"]  # charging is negative in both
    assert snap.grid_w == -data["meter_active_power_total"]  # the meter's -110 (import) is +110 here
    assert snap.grid_w > 0
    assert snap.load_w == snap.pv_w + snap.battery_w + snap.grid_w
    assert snap.grid_v == (239.3, 241.5, 241.1)
    assert snap.counters_kwh["pv"] == data["e_total"]


def test_snapshot_uses_the_inverter_power_when_the_meter_is_down() -> None:
    data = {"ppv": 2000, "pbattery1": 500, "active_power": 1800, "battery_soc": 60, "meter_comm_status": 0,
            "meter_active_power_total": 0, "vgrid": 231.0, "vgrid2": 0.0, "fgrid": 50.01}  # fmt: skip
    snap = snapshot_from_runtime(data, T, "self_use")
    assert (snap.grid_w, snap.load_w, snap.grid_v, snap.grid_hz) == (-1800.0, 700.0, (231.0,), 50.01)


def test_snapshot_names_a_missing_sensor() -> None:
    with pytest.raises(ValueError, match="'battery_soc' missing"):
        snapshot_from_runtime({"ppv": 1, "pbattery1": 0, "active_power": 0}, T, "")
