"""Safety guard and executor: every limit, hysteresis and dwell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config.models import BatteryConfig, ExecutorConfig, GridConfig
from controller.control.executor import Executor, ExecutorState, Intent, SafetyGuard, quantise
from drivers.inverter.types import CommandKind, Snapshot

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BATTERY = BatteryConfig(min_soc_pct=10, max_soc_pct=95, max_charge_w=5000, max_discharge_w=4000)
GRID = GridConfig(max_import_w=7000, max_export_w=6000)


def snap(
    load_w: float = 500.0,
    pv_w: float = 0.0,
    age_s: float = 5.0,
    temp: float | None = 25.0,
    stale: bool = False,
    at: datetime = NOW,
) -> Snapshot:
    temps = {} if temp is None else {"battery": temp}
    return Snapshot(
        time=at - timedelta(seconds=age_s),
        pv_w=pv_w,
        load_w=load_w,
        grid_w=load_w - pv_w,
        battery_w=0.0,
        soc_pct=50.0,
        temperatures=temps,
        stale=stale,
    )


def guard(**executor: float | None) -> SafetyGuard:
    return SafetyGuard(ExecutorConfig(**executor), BATTERY, GRID)  # type: ignore[arg-type]


def test_charge_within_limits_passes_unchanged() -> None:
    out = guard().check(Intent("charge", 3000, 80), snap(), NOW, 0.5)
    assert out.command.kind is CommandKind.CHARGE
    assert out.command.power_w == 3000
    assert out.command.target_soc == 80
    assert out.events == ()


def test_charge_power_clamped_to_battery_limit() -> None:
    out = guard().check(Intent("charge", 9000, 80), snap(), NOW, 0.5)
    assert out.command.power_w == 5000
    assert [e.limit for e in out.events] == ["max_charge_w"]


def test_charge_limited_by_main_fuse() -> None:
    # house draws 4.5 kW of a 7 kW fuse: 2.5 kW left for charging
    out = guard().check(Intent("charge", 5000, 80), snap(load_w=4500), NOW, 0.5)
    assert out.command.power_w == 2500
    assert "max_import_w" in [e.limit for e in out.events]


def test_no_room_under_the_fuse_refuses_charging() -> None:
    out = guard().check(Intent("charge", 5000, 80), snap(load_w=7000), NOW, 0.5)
    assert out.command.kind is CommandKind.HOLD
    assert out.events[-1].kind == "refused"
    assert out.events[-1].limit == "max_import_w"


def test_target_soc_clamped_to_window() -> None:
    out = guard().check(Intent("charge", 2000, 100), snap(), NOW, 0.5)
    assert out.command.target_soc == 95
    out = guard().check(Intent("discharge", 2000, 2), snap(), NOW, 0.5)
    assert out.command.target_soc == 10
    assert out.events[0].limit == "soc_window"


def test_discharge_power_clamped() -> None:
    out = guard().check(Intent("discharge", 6000, 20), snap(), NOW, 0.5)
    assert out.command.power_w == 4000


def test_price_cap_refuses_grid_charging() -> None:
    out = guard(grid_charge_price_cap=0.6).check(Intent("charge", 2000, 80), snap(), NOW, 0.75)
    assert out.command.kind is CommandKind.SELF_USE
    assert out.events[0].limit == "grid_charge_price_cap"
    ok = guard(grid_charge_price_cap=0.6).check(Intent("charge", 2000, 80), snap(), NOW, 0.55)
    assert ok.command.kind is CommandKind.CHARGE


@pytest.mark.parametrize("temp", [-5.0, 55.0])
def test_battery_temperature_window(temp: float) -> None:
    out = guard().check(Intent("discharge", 2000, 20), snap(temp=temp), NOW, 0.5)
    assert out.command.kind is CommandKind.SELF_USE
    assert out.events[0].limit == "battery_temp"


def test_stale_or_missing_data_falls_back_to_self_use() -> None:
    g = guard(stale_after_s=60)
    for snapshot in (None, snap(age_s=61), snap(stale=True)):
        out = g.check(Intent("charge", 2000, 80), snapshot, NOW, 0.5)
        assert out.command.kind is CommandKind.SELF_USE
        assert out.events[0].kind == "fallback"


def test_the_fallback_names_its_real_reason() -> None:
    g = guard(stale_after_s=120)
    old = g.check(Intent("charge", 2000, 80), snap(age_s=130), NOW, 0.5)
    assert "inverter data is 130 s old (limit 120 s)" in old.events[0].detail
    failing = g.check(Intent("charge", 2000, 80), snap(age_s=40, stale=True), NOW, 0.5)
    assert "stopped answering" in failing.events[0].detail
    assert "40 s old" in failing.events[0].detail
    assert "limit" not in failing.events[0].detail


def test_export_limit_never_above_grid_cap() -> None:
    out = guard().check(Intent("export_limit", export_limit_w=9000), snap(), NOW, 0.5)
    assert out.command.kind is CommandKind.SELF_USE
    assert out.command.export_limit_w == 6000


def test_a_forced_mode_or_hold_keeps_the_export_limit_it_asks_for_within_the_grid_cap() -> None:
    """Below a zero export price every mode curtails rather than export; a command in force that
    curtails is still one the guard allows."""
    executor = Executor(guard())
    for intent, kind in (
        (Intent("charge", 3000, 80, export_limit_w=0), CommandKind.CHARGE),
        (Intent("discharge", 100, 20, export_limit_w=0), CommandKind.DISCHARGE),
        (Intent("discharge", 40, 20, export_limit_w=0), CommandKind.HOLD),  # below one power step
        (Intent("hold", export_limit_w=9000), CommandKind.HOLD),
    ):
        out = guard().check(intent, snap(), NOW, 0.5)
        assert out.command.kind is kind
        assert out.command.export_limit_w == min(intent.export_limit_w or 0.0, GRID.max_export_w)
        assert executor.allowed(out.command, snap(), NOW, 0.5)
    assert guard().check(Intent("charge", 3000, 80), snap(), NOW, 0.5).command.export_limit_w is None


def test_power_is_quantised_down() -> None:
    assert quantise(2549, 100) == 2500
    out = guard(power_step_w=250).check(Intent("charge", 2999, 80), snap(), NOW, 0.5)
    assert out.command.power_w == 2750


def test_executor_hysteresis_and_dwell() -> None:
    ex = Executor(guard(min_dwell_s=300, power_hysteresis_w=300))
    first = ex.decide(ExecutorState(), Intent("charge", 3000, 80), snap(), NOW, 0.5)
    assert first.changed
    small = ex.decide(
        first.state,
        Intent("charge", 3200, 80),
        snap(at=NOW + timedelta(minutes=10)),
        NOW + timedelta(minutes=10),
        0.5,
    )
    assert not small.changed
    assert small.held_back == "within hysteresis"
    early = ex.decide(
        first.state,
        Intent("discharge", 3000, 20),
        snap(at=NOW + timedelta(minutes=2)),
        NOW + timedelta(minutes=2),
        0.5,
    )
    assert not early.changed
    assert early.held_back.startswith("minimum dwell")
    late = ex.decide(
        first.state,
        Intent("discharge", 3000, 20),
        snap(at=NOW + timedelta(minutes=6)),
        NOW + timedelta(minutes=6),
        0.5,
    )
    assert late.changed
    assert late.command.kind is CommandKind.DISCHARGE


def test_safety_fallback_and_override_skip_the_dwell() -> None:
    ex = Executor(guard(min_dwell_s=900))
    first = ex.decide(ExecutorState(), Intent("charge", 3000, 80), snap(), NOW, 0.5)
    stale = ex.decide(
        first.state, Intent("charge", 3000, 80), snap(age_s=500), NOW + timedelta(seconds=30), 0.5
    )
    assert stale.changed
    assert stale.command.kind is CommandKind.SELF_USE
    override = ex.decide(
        first.state,
        Intent("hold", source="override"),
        snap(at=NOW + timedelta(seconds=30)),
        NOW + timedelta(seconds=30),
        0.5,
    )
    assert override.changed
    assert override.command.kind is CommandKind.HOLD


@settings(max_examples=300, deadline=None)
@given(
    action=st.sampled_from(["self_use", "charge", "hold", "discharge", "export_limit"]),
    power=st.floats(0, 50_000),
    target=st.one_of(st.none(), st.floats(0, 100)),
    load=st.floats(0, 20_000),
    pv=st.floats(0, 15_000),
    price=st.floats(-1, 5),
    temp=st.one_of(st.none(), st.floats(-30, 80)),
)
def test_no_command_ever_leaves_the_limits(
    action: str, power: float, target: float | None, load: float, pv: float, price: float, temp: float | None
) -> None:
    g = guard(grid_charge_price_cap=1.0)
    out = g.check(
        Intent(action, power, target, export_limit_w=power), snap(load_w=load, pv_w=pv, temp=temp), NOW, price
    )
    cmd = out.command
    if cmd.target_soc is not None:
        assert BATTERY.min_soc_pct <= cmd.target_soc <= BATTERY.max_soc_pct
    if cmd.kind is CommandKind.CHARGE:
        assert cmd.power_w <= BATTERY.max_charge_w
        assert cmd.power_w + max(0.0, load - pv) <= GRID.max_import_w + 1e-6
        assert price <= 1.0
        assert temp is None or 0 <= temp <= 50
    if cmd.kind is CommandKind.DISCHARGE:
        assert cmd.power_w <= BATTERY.max_discharge_w
        assert temp is None or 0 <= temp <= 50
    if cmd.export_limit_w is not None:
        assert cmd.export_limit_w <= GRID.max_export_w
