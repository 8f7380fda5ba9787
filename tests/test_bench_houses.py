"""bench/houses.py builds its scenarios from ../shared into a temporary folder, loadable as any."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from support.shared import SHARED, needs_shared

from controller.sim.scenario import load_scenario

BENCH = Path(__file__).resolve().parents[1] / "bench" / "houses.py"


def houses() -> ModuleType:
    spec = importlib.util.spec_from_file_location("houses", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("houses", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@needs_shared(SHARED / "data")
def test_the_built_houses_are_what_they_say(tmp_path: Path) -> None:
    bench = houses()
    heating = load_scenario(bench.no3_heating(tmp_path))
    assert (heating.currency, heating.steps_per_day, len(heating)) == ("NOK", 24, 47 * 24)
    assert not heating.pv_w.any()
    assert heating.load_w.mean() > 3000.0
    summer = load_scenario(bench.kn1_pv_summer(tmp_path))
    assert (summer.currency, len(summer)) == ("EUR", 43 * 24)
    assert summer.pv_w.sum() > 3 * summer.load_w.sum()
    flat = load_scenario(bench.flat_pl_winter(tmp_path))
    assert (flat.currency, flat.steps_per_day, len(flat)) == ("PLN", 96, 42 * 96)
    assert np.all(flat.load_w == 500.0)
    assert np.all(flat.import_price > flat.export_price)


@pytest.mark.slow
@needs_shared(SHARED / "scenarios")
def test_the_shared_scenarios_are_cut_to_six_week_windows(tmp_path: Path) -> None:
    bench = houses()
    built = dict(bench.scenarios(tmp_path, whole=False))
    winter = built["kn4_be_2022 winter"]
    assert winter.start.isoformat() == "2022-01-08T00:00:00+00:00"
    assert len(winter) == 42 * 24
    assert built["kn4_pl_rce_2025-26 summer"].start.year == 2026
