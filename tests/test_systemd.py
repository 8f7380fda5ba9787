"""systemd/hemsd.service: the settings the daemon relies on, its sandbox score and systemd's own check.

``systemd-analyze verify`` checks that every directive is known, the dependencies exist and the
executables are there. The installed path /opt/hemsd/venv/bin/hemsd does not exist on a build
machine, so the test verifies a copy whose ExecStart names this checkout's own ``hemsd`` console
script (the same program); everything else in the copy is the unit as shipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from controller.cli import DEFAULT_CONFIG
from controller.config.loading import load_config_text
from controller.config.models import EXIT_CONFIG, HemsdConfig, StorageConfig

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "hemsd.service"
INSTALLED_HEMSD = "/opt/hemsd/venv/bin/hemsd"
MAX_EXPOSURE = 2.0


def unit_settings() -> list[tuple[str, str, str]]:
    """(section, key, value) of every assignment, in order; keys may repeat as in systemd."""
    section, settings = "", []
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.append((section, key, value))
    return settings


def values(key: str, section: str = "Service") -> list[str]:
    return [v for s, k, v in unit_settings() if s == section and k == key]


def value(key: str, section: str = "Service") -> str:
    found = values(key, section)
    assert len(found) == 1, f"{section}.{key}: {found}"
    return found[0]


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        reason = "systemd-analyze is not installed (Debian: apt-get install systemd)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return path


def test_service_lifecycle_matches_the_daemon() -> None:
    assert value("Type") == "notify"  # notify-reload needs systemd 253; Pi OS bookworm has 252
    assert value("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert value("ExecStart") == f"{INSTALLED_HEMSD} run --config {DEFAULT_CONFIG}"
    assert value("Restart") == "on-failure"
    assert value("RestartPreventExitStatus") == str(EXIT_CONFIG)
    assert value("WatchdogSec") == "60s"
    assert int(value("StartLimitBurst", "Unit")) >= 3
    assert value("StartLimitIntervalSec", "Unit")
    assert value("RestartSec")
    assert "multi-user.target" in value("WantedBy", "Install")


def test_files_and_identity() -> None:
    assert value("User") == "hemsd"
    assert value("StateDirectory") == "hemsd"
    assert StorageConfig().state_dir == Path("/var/lib") / value("StateDirectory")
    assert value("ConfigurationDirectory") == "hemsd"
    assert DEFAULT_CONFIG.parent == Path("/etc") / value("ConfigurationDirectory")
    assert value("UMask") == "0077"


def test_hardening_settings() -> None:
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
    }
    for key, wanted in expected.items():
        assert value(key) == wanted, key
    assert values("SystemCallFilter")[0] == "@system-service"
    # UDP broadcast to the inverter needs the host network with no address filter
    assert not values("PrivateNetwork")
    assert not values("IPAddressDeny")


@pytest.mark.parametrize(
    ("toml", "credential_id", "read_secret"),
    [
        ('[mqtt]\nhost = "broker"\n', "mqtt__password", lambda c: c.mqtt.password),
        (
            '[storage.influx.server]\ntype = "v2"\nurl = "http://influx:8086"\n',
            "storage__influx__server__token",
            lambda c: c.storage.influx.server.token,
        ),
        (
            '[storage.influx.server]\ntype = "v1"\nurl = "http://influx:8086"\n',
            "storage__influx__server__password",
            lambda c: c.storage.influx.server.password,
        ),
    ],
)
def test_each_loaded_credential_fills_its_configuration_key(
    tmp_path: Path,
    toml: str,
    credential_id: str,
    read_secret: Callable[[HemsdConfig], SecretStr],
) -> None:
    credentials = dict(i.split(":", 1) for i in values("LoadCredential"))
    assert credentials[credential_id] == f"hemsd.{credential_id}"  # /etc/credstore is shared
    (tmp_path / credential_id).write_text("s3cret\n", encoding="utf-8")
    config = load_config_text(toml, credentials_dir=tmp_path)
    assert read_secret(config).get_secret_value().strip() == "s3cret"


def test_entsoe_credential_is_where_the_example_config_points() -> None:
    example = (REPO / "config" / "hemsd.example.toml").read_text(encoding="utf-8")
    assert "entsoe:hemsd.entsoe" in values("LoadCredential")
    assert "/run/credentials/hemsd.service/entsoe" in example


def test_security_exposure_is_at_most_two() -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for hemsd\.service: (\d+\.\d+)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    analyze = systemd_analyze()
    hemsd = Path(sys.executable).parent / "hemsd"
    if not hemsd.exists():
        pytest.skip(f"{hemsd} is missing: install the checkout first (pip install -e .)")
    copy = tmp_path / "hemsd.service"
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(INSTALLED_HEMSD) == 1
    copy.write_text(text.replace(INSTALLED_HEMSD, str(hemsd)), encoding="utf-8")
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "hemsd" in line] == []
