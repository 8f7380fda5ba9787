"""`hemsd demo`: the whole daemon against the emulator on an accelerated clock, end to end."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

DAYS = {"june": "2026-06-15", "december": "2026-12-07"}


def _demo(start: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "controller.cli",
        "demo",
        "--hours",
        "24",
        "--speed",
        "2880",
        "--start",
        start,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _number(summary: str, label: str) -> float:
    found = re.search(rf"{label}\s+(-?[\d.]+)", summary)
    assert found is not None, f"{label!r} not in the summary"
    return float(found.group(1))


@pytest.mark.slow
def test_demo_runs_a_day_in_june_and_in_december() -> None:
    """Both days at once (one core each); the PV of each follows the sun and the season's weather."""
    processes = {name: _demo(start) for name, start in DAYS.items()}
    outputs = {name: process.communicate(timeout=150) for name, process in processes.items()}
    pv: dict[str, float] = {}
    for name, (out, err) in outputs.items():
        assert processes[name].returncode == 0, err
        assert "Traceback" not in err
        # a status line per simulated quarter-hour, under a header that says what a line is
        assert "each line: the readings at that instant" in out
        assert len(re.findall(r"^(Mon|Tue) \d\d:\d\d  SoC", out, flags=re.MULTILINE)) >= 90
        summary = out[out.index("summary") :]
        # over a whole day, evening peak included (half a day can end with the morning's PV stored,
        # which this account does not value)
        assert _number(summary, "cost with hemsd") < _number(summary, "with no battery")
        assert _number(summary, "job failures") == 0
        assert "prices from csv" in summary
        assert "synthetic day-ahead prices" in out
        next_steps = out[out.index("\nnext\n") :]
        assert "--state-dir" in next_steps
        assert "hemsd backtest" in next_steps
        pv[name] = _number(summary, "PV produced")
    print(f"demo PV on 8 kWp at 52 N: June 15 {pv['june']:.1f} kWh, December 7 {pv['december']:.1f} kWh")
    assert pv["june"] > 25.0  # a long day, a high sun
    assert pv["december"] < 16.0  # under 2 kWh per kWp: a low sun for under 8 hours
    assert pv["june"] > 2.5 * pv["december"]
