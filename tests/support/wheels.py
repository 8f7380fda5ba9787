"""A wheel of this checkout built without network by the system Python's setuptools (the tests
reach no package index, and the test venv's own setuptools may be too old to build one)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
PACKAGE_FILES = ("pyproject.toml", "README.md", "controller", "storage", "drivers")


def build_wheel(workdir: Path) -> Path:
    probes = (["-c", "import setuptools, wheel, venv, ensurepip"], ["-m", "pip", "--version"])
    if any(subprocess.run([SYSTEM_PYTHON, *p], capture_output=True, check=False).returncode for p in probes):
        reason = f"{SYSTEM_PYTHON} lacks pip/setuptools/wheel/venv (apt-get install python3-pip python3-venv)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    source = workdir / "source"
    source.mkdir()
    for name in PACKAGE_FILES:  # a copy: building writes build/ and *.egg-info next to the sources
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [
            SYSTEM_PYTHON,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(workdir / "dist"),
            str(source),
        ],
        check=True,
        timeout=120,
    )
    (wheel,) = (workdir / "dist").glob("hemsd-*.whl")
    return wheel
