"""Test-wide hooks: the ``shared`` marker (data under ../shared, see support/shared.py), and
hypothesis without time limits: how long an example takes depends on the machine's load, what
it checks does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from support.shared import missing_shared

settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shared(path): reads path under ../shared; skipped without it, failed under CI=true"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("shared"):
        path: Path = mark.kwargs["path"]
        if not path.exists():
            missing_shared(path)
