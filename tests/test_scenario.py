"""Scenario CSV loading: good files load, bad ones name the row and column at fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.shared import SHARED, needs_shared

from controller.sim.scenario import ScenarioError, currency_from_name, load_scenario

SCENARIOS = SHARED / "scenarios"
HEADER = "time,import_price,export_price,pv_w,load_w"


def write(tmp_path: Path, rows: list[str], name: str = "site_pln.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def rows(n: int, step_min: int = 60) -> list[str]:
    return [
        f"2025-10-01T{(i * step_min) // 60:02d}:{(i * step_min) % 60:02d}:00Z,1.0,0.5,{i * 10},{300 + i}"
        for i in range(n)
    ]


def test_loads_a_good_file(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, rows(24, 15)))
    assert len(s) == 24
    assert s.currency == "PLN"
    assert s.step_h == 0.25
    assert s.steps_per_day == 96
    assert s.start.isoformat() == "2025-10-01T00:00:00+00:00"
    assert s.pv_w[3] == 30.0
    assert s.load_w[3] == 303.0
    assert s.filled_intervals == 0


def test_columns_in_any_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        ["300,2025-10-01T00:00:00Z,0,1.0,0.5", "301,2025-10-01T01:00:00Z,0,1.1,0.5"],
        header="load_w,time,pv_w,import_price,export_price",
    )
    s = load_scenario(path)
    assert s.import_price.tolist() == [1.0, 1.1]
    assert s.load_w.tolist() == [300.0, 301.0]


def test_a_short_gap_repeats_the_row_before(tmp_path: Path) -> None:
    data = rows(6, 15)
    del data[2:4]  # 00:30 and 00:45 missing
    s = load_scenario(write(tmp_path, data))
    assert len(s) == 6
    assert s.filled_intervals == 2
    assert s.load_w.tolist() == [300, 301, 301, 301, 304, 305]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: [r[0], "2025-10-01T01:00:00Z,abc,0.5,0,300", *r[2:]],
            "row 3, column import_price: not a number",
        ),
        (
            lambda r: [r[0], "2025-10-01T01:00:00Z,1.0,nan,0,300", *r[2:]],
            "row 3, column export_price: not a finite",
        ),
        (lambda r: [r[0], "2025-10-01T01:00:00Z,1.0,0.5,-5,300", *r[2:]], "row 3, column pv_w: must be >= 0"),
        (
            lambda r: [r[0], "2025-10-01T01:00:00,1.0,0.5,0,300", *r[2:]],
            "row 3, column time: time must be UTC",
        ),
        (
            lambda r: [r[0], "2025-10-01T03:00:00+02:00,1.0,0.5,0,300", *r[2:]],
            "row 3, column time: time must be UTC",
        ),
        (lambda r: [r[0], "yesterday,1.0,0.5,0,300", *r[2:]], "row 3, column time: not an ISO 8601"),
        (lambda r: [r[0], "2025-10-01T01:00:00Z,1.0,0.5", *r[2:]], "row 3: 3 fields, header has 5"),
        (lambda r: [r[0], r[1], r[3], r[2], *r[4:]], "row 5, column time: .* follows"),
        (lambda r: [*r[:3], r[2], *r[3:]], "row 5, column time: .* follows"),
        (lambda r: [*r[:3], *r[6:]], "row 5, column time: .* gaps of at most"),
    ],
)
def test_bad_rows_name_row_and_column(tmp_path: Path, edit: object, message: str) -> None:
    path = write(tmp_path, edit(rows(10)))  # type: ignore[operator]
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_bad_header_and_step(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"row 1 .*missing column.*load_w"):
        load_scenario(write(tmp_path, rows(3), header="time,import_price,export_price,pv_w,load"))
    with pytest.raises(ScenarioError, match="duplicated column"):
        load_scenario(write(tmp_path, ["x"], header=HEADER + ",pv_w"))
    with pytest.raises(ScenarioError, match="step 0:20:00"):
        load_scenario(write(tmp_path, ["2025-10-01T00:00:00Z,1,0,0,1", "2025-10-01T00:20:00Z,1,0,0,1"]))
    with pytest.raises(ScenarioError, match="at least 2 data rows"):
        load_scenario(write(tmp_path, rows(1)))
    empty = tmp_path / "empty_eur.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ScenarioError, match="empty file"):
        load_scenario(empty)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing_eur.csv")


def test_currency_from_the_file_name() -> None:
    assert currency_from_name(Path("kn4_de_2019_hourly_eur.csv")) == "EUR"
    assert currency_from_name(Path("x_pln.csv")) == "PLN"
    assert currency_from_name(Path("site.csv")) == "XXX"


@needs_shared(SCENARIOS)
def test_real_scenarios_load() -> None:
    for path in sorted(SCENARIOS.glob("*.csv")):
        s = load_scenario(path)
        assert len(s) >= 8760
        assert s.currency in ("EUR", "PLN")
        assert np.all(s.load_w >= 0)
        assert s.filled_intervals <= 4  # the PL file lacks the autumn clock-change hour
