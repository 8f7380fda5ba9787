"""Battery goals in both planners: an SoC target by a time and a backup reserve until a time
(controller.planner.goals), reached when the battery and grid allow it, else as near as they allow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from controller.physics import BatteryParams, GridLimits
from controller.planner import deterministic, recourse
from controller.planner.goals import NO_GOALS, SocGoals, SocReserve, SocTarget
from controller.planner.inputs import PricedSlot
from controller.planner.plan import Plan

START = datetime(2026, 1, 12, 0, 0, tzinfo=UTC)
PARAMS = BatteryParams(capacity_kwh=10.0, min_soc_pct=10.0, max_charge_w=3000.0, max_discharge_w=3000.0)
# Night flat and dear enough that, without goals, the battery only covers the house; midday cheap
PRICES = [0.9] * 24 + [0.9] * 12 + [0.2] * 12 + [0.9] * 48


def _slots(n: int = 96, dt: timedelta = timedelta(minutes=15)) -> list[PricedSlot]:
    return [PricedSlot(START + i * dt, START + (i + 1) * dt, PRICES[i % len(PRICES)], 0.1) for i in range(n)]


def _plan(kind: str, goals: SocGoals, soc: float = 30.0, limits: GridLimits | None = None) -> Plan:
    slots = _slots()
    pv, load = [0.0] * len(slots), [400.0] * len(slots)
    common = {
        "soc_pct": soc,
        "params": PARAMS,
        "prices": slots,
        "pv_w": pv,
        "load_w": load,
        "limits": limits or GridLimits(),
        "created_at": START,
        "goals": goals,
    }
    if kind == "recourse":
        errors = np.tile([-300.0, 0.0, 300.0], (len(slots), 1))
        return recourse.plan(errors_w=errors, **common)  # type: ignore[arg-type]
    return deterministic.plan(**common)  # type: ignore[arg-type]


def _soc_at(plan: Plan, at: datetime) -> float:
    return next(s.target_soc_pct for s in plan.slots if s.end == at)


@pytest.mark.parametrize("kind", ["deterministic", "recourse"])
def test_a_target_by_a_time_is_reached_and_explained(kind: str) -> None:
    at = START + timedelta(hours=7)
    plan = _plan(kind, SocGoals(targets=(SocTarget(80.0, at),)))
    assert _soc_at(plan, at) >= 79.5
    without = _plan(kind, NO_GOALS)
    assert _soc_at(without, at) < 50.0  # the goal, not the prices, makes the charge
    charging = [s for s in plan.slots if s.end <= at and s.battery_w < -1.0]
    assert charging
    assert all("charging to reach 80 % by 07:00" in s.explanation for s in charging)
    assert plan.goal_notes == ("target 80 % by 07:00: planned",)
    assert plan.to_dict()["goals"][0]["reached"] is True  # type: ignore[index]
    assert "goals" not in without.to_dict()


@pytest.mark.parametrize("kind", ["deterministic", "recourse"])
def test_an_unreachable_target_is_approached_and_said_so(kind: str) -> None:
    at = START + timedelta(hours=1)  # 1 h at 3 kW: at most about 28 % more
    plan = _plan(kind, SocGoals(targets=(SocTarget(95.0, at),)))
    reached = _soc_at(plan, at)
    assert 55.0 <= reached < 95.0
    assert plan.goals[0].reached is False
    assert "not reachable" in plan.goal_notes[0]
    assert f"{reached:.0f} %" in plan.goal_notes[0]
    # the main fuse limits it further: a plan against a 1.5 kW grid gets less far, and says so
    fused = _plan(kind, SocGoals(targets=(SocTarget(95.0, at),)), limits=GridLimits(max_import_w=1500.0))
    assert _soc_at(fused, at) < reached - 5.0
    assert fused.goals[0].reached is False


@pytest.mark.parametrize("kind", ["deterministic", "recourse"])
def test_a_reserve_is_kept_until_its_end_then_used(kind: str) -> None:
    until = START + timedelta(hours=12)
    plan = _plan(kind, SocGoals(reserves=(SocReserve(50.0, until),)), soc=70.0)
    kept = [s.target_soc_pct for s in plan.slots if s.end <= until]
    assert min(kept) >= 49.5
    assert plan.goals[0].reached is True
    held = [s for s in plan.slots if s.end <= until and s.target_soc_pct <= 50.5]
    assert held
    assert all("50 % backup reserve until 12:00" in s.explanation for s in held)
    without = _plan(kind, NO_GOALS, soc=70.0)
    assert min(s.target_soc_pct for s in without.slots if s.end <= until) < 45.0


@pytest.mark.parametrize("kind", ["deterministic", "recourse"])
def test_goals_outside_the_horizon_change_nothing(kind: str) -> None:
    far = START + timedelta(days=5)
    past = START - timedelta(hours=1)
    goals = SocGoals(
        targets=(SocTarget(90.0, far), SocTarget(90.0, past)), reserves=(SocReserve(80.0, past),)
    )
    with_goals, without = _plan(kind, goals), _plan(kind, NO_GOALS)
    assert [s.to_dict() for s in with_goals.slots] == [s.to_dict() for s in without.slots]
    assert with_goals.inputs_digest == without.inputs_digest
    assert with_goals.goals == ()


def test_a_goal_needs_an_aware_instant_and_a_percentage() -> None:
    with pytest.raises(ValueError, match=r"target\.soc_pct must be within 0\.\.100, got 120"):
        SocTarget(120.0, START)
    with pytest.raises(ValueError, match="reserve: the instant must be timezone-aware"):
        SocReserve(50.0, datetime(2026, 1, 1, 7, 0))  # noqa: DTZ001 - the mistake under test
