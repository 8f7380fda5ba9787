"""`hemsd demo`: the whole daemon against the emulator on an accelerated clock, end to end."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_runs_a_day_and_prints_the_summary() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "demo",
            "--hours",
            "24",
            "--speed",
            "2880",
            "--start",
            "2026-06-15",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Traceback" not in result.stderr
    # a status line per simulated quarter-hour
    assert len(re.findall(r"^(Mon|Tue) \d\d:\d\d  SoC", out, flags=re.MULTILINE)) >= 90
    summary = out[out.index("summary") :]
    cost = float(re.search(r"cost with hemsd\s+(-?[\d.]+)", summary).group(1))  # type: ignore[union-attr]
    baseline = float(re.search(r"with no battery\s+(-?[\d.]+)", summary).group(1))  # type: ignore[union-attr]
    failures = int(re.search(r"job failures\s+(\d+)", summary).group(1))  # type: ignore[union-attr]
    pv = float(re.search(r"PV produced\s+([\d.]+)", summary).group(1))  # type: ignore[union-attr]
    assert pv > 10.0  # a June day on 8 kWp
    # over a whole day, evening peak included (half a day can end with the morning's PV stored,
    # which this account does not value)
    assert cost < baseline
    assert failures == 0
