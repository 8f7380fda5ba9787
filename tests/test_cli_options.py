"""Every command that reads the configuration takes --config, --credentials-dir and --state-dir in
the same places, before or after its action, and needs no secret it does not use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = """
[inverter]
type = "emulator"
[storage]
state_dir = "{state}"
[web]
enabled = true
"""


def hemsd(*args: str) -> subprocess.CompletedProcess[str]:
    env_free = {"PATH": "/usr/bin:/bin"}  # no CREDENTIALS_DIRECTORY from the caller
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env_free,
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One configuration and its database for the module's tests, which only read them."""
    directory = tmp_path_factory.mktemp("cli-options")
    path = directory / "hemsd.toml"
    path.write_text(CONFIG.format(state=directory / "state"), encoding="utf-8")
    created = hemsd("override", "list", "--config", str(path))  # creates the database the others read
    assert created.returncode == 0, created.stderr
    return path


@pytest.mark.parametrize(
    "command",
    [
        ("override", "list"),
        ("sessions", "list"),
        ("config", "history"),
        ("db", "check"),
        ("analytics", "quality"),
    ],
)
def test_options_before_or_after_the_action_and_no_unused_secret_needed(
    config: Path, tmp_path: Path, command: tuple[str, str]
) -> None:
    family, action = command
    after = hemsd(family, action, "--config", str(config))
    before = hemsd(family, "--config", str(config), action)
    assert after.returncode == before.returncode == 0, (after.stderr, before.stderr)
    assert after.stdout == before.stdout
    with_credentials = hemsd(family, action, "--config", str(config), "--credentials-dir", str(tmp_path))
    assert with_credentials.returncode == 0, with_credentials.stderr


def test_the_daemon_and_check_config_still_need_the_web_token(config: Path, tmp_path: Path) -> None:
    missing = hemsd("check-config", str(config))
    assert missing.returncode == 78
    assert "web.token" in missing.stderr
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "web__token").write_text("0123456789abcdef0123", encoding="utf-8")
    assert hemsd("check-config", str(config), "--credentials-dir", str(credentials)).returncode == 0
