"""The project's shared data beside the checkout (``../shared``): skipped without it, except under
``CI=true``, where CI must run every test and a missing ``../shared`` fails."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared"


def missing_shared(path: Path) -> NoReturn:
    reason = f"{path} is absent (../shared is not beside the checkout)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def needs_shared(path: Path) -> pytest.MarkDecorator:
    """Mark a test (or, as ``pytestmark``, a module) that reads ``path`` under ../shared."""
    return pytest.mark.shared(path=path)
