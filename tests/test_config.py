"""Configuration: the example file is valid; every kind of mistake names its key and exits 78."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.config.loading import load_config, load_config_text
from controller.config.models import EXIT_CONFIG, ConfigError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "hemsd.example.toml"


def check_config(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_example_config_is_valid() -> None:
    result = check_config(EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


@pytest.mark.parametrize(
    ("snippet", "key", "fragment"),
    [
        ("[battery]\ncapacity_kwhh = 10\n", "battery.capacity_kwhh", "did you mean 'capacity_kwh'"),
        ('[battery]\ncapacity_kwh = "ten"\n', "battery.capacity_kwh", "'ten'"),
        ("[battery]\nmin_soc_pct = 120\n", "battery.min_soc_pct", "120"),
        ("[daemon]\npoll_interval_s = 0.1\n", "daemon.poll_interval_s", "0.1"),
        ('[site]\ntimezone = "Europe/Warszawa"\n', "site.timezone", "Europe/Warszawa"),
        ('[inverter]\ntype = "fronius"\n', "inverter", "'goodwe', 'emulator'"),
        ("[batery]\ncapacity_kwh = 5\n", "batery", "did you mean 'battery'"),
    ],
)
def test_bad_config_exits_78_naming_the_key(tmp_path: Path, snippet: str, key: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(snippet)
    result = check_config(path)
    assert result.returncode == EXIT_CONFIG
    assert key in result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_every_problem_is_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[battery]\ncapacity_kwh = -1\nmax_charge_w = "x"\n[grid]\nfuse = 3\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    assert len(problems) == 3
    assert {p.split(":")[0] for p in problems} == {
        "battery.capacity_kwh",
        "battery.max_charge_w",
        "grid.fuse",
    }


def test_soc_window_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match=r"min_soc_pct \(90.0\) must be below max_soc_pct \(80.0\)"):
        load_config_text("[battery]\nmin_soc_pct = 90\nmax_soc_pct = 80\n")


def test_malformed_toml_is_one_clear_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[battery\ncapacity_kwh = 1\n")
    result = check_config(path)
    assert result.returncode == EXIT_CONFIG
    assert "not valid TOML" in result.stderr


def test_missing_file_exits_78(tmp_path: Path) -> None:
    result = check_config(tmp_path / "absent.toml")
    assert result.returncode == EXIT_CONFIG
    assert "cannot read" in result.stderr


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEMSD_BATTERY__CAPACITY_KWH", "13.5")
    monkeypatch.setenv("HEMSD_SITE__NAME", "Cabin")
    config = load_config_text("[battery]\ncapacity_kwh = 10\n")
    assert config.battery.capacity_kwh == 13.5
    assert config.site.name == "Cabin"


def test_bad_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEMSD_GRID__MAX_IMPORT_W", "-5")
    with pytest.raises(ConfigError, match=r"grid\.max_import_w"):
        load_config_text("")


def test_secret_from_credentials_directory_is_never_shown(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt__password").write_text("hunter2")
    config = load_config_text('[mqtt]\nhost = "broker"\n', credentials_dir=creds)
    assert config.mqtt is not None
    assert config.mqtt.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config.redacted())


def test_invalid_secret_value_is_hidden_in_the_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("[mqtt]\npassword = 12345\n")
    assert "12345" not in str(info.value)
    assert "mqtt.password" in str(info.value)


def test_credentials_that_do_not_apply_are_ignored(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "storage__influx__server__token").write_text("tok\n")
    (creds / "storage__influx__server__password").write_text("pw\n")
    (creds / "mqtt__password").write_text("mq\n")
    # a 1.x server takes the password but has no token; no [mqtt] table: its password is unused
    text = '[storage.influx.server]\ntype = "v1"\nurl = "http://localhost:8086"\n'
    config = load_config_text(text, credentials_dir=creds)
    assert config.storage.influx is not None
    assert config.storage.influx.server.password.get_secret_value() == "pw"  # type: ignore[union-attr]
    assert config.mqtt is None
    v2 = load_config_text(text.replace('"v1"', '"v2"'), credentials_dir=creds)
    assert v2.storage.influx.server.token.get_secret_value() == "tok"  # type: ignore[union-attr]


def test_unknown_key_hint_follows_the_table_type() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text('[storage.influx.server]\ntype = "v1"\nurl = "http://x"\ndatabse = "h"\n')
    message = str(info.value)
    assert "did you mean 'database'" in message
    assert "bucket" not in message


@pytest.mark.parametrize(
    ("snippet", "fragment"),
    [
        ("[daemon]\npoll_interval_s = true", "poll_interval_s: a number or text, not the boolean true"),
        ("[battery]\nmax_soc_pct = 90\ntaper_start_soc_pct = 95", "taper_start_soc_pct (95.0) must be below"),
        ('[mqtt]\ndiscovery_prefix = "homeassistant/#"', "mqtt.discovery_prefix"),
        ('[mqtt]\nhost = ""', "mqtt.host"),
        ('[inverter]\ntype = "goodwe"\nhost = " "', "inverter.goodwe.host"),
        ('[storage]\nstate_dir = "var/lib/hemsd"', "an absolute path, not 'var/lib/hemsd'"),
        ('[storage]\nstate_dir = "/etc/hostname/hemsd"', "/etc/hostname is not a directory"),
        ('[storage.influx.server]\ntype = "v1"\nurl = "localhost:8086"', "storage.influx.server.v1.url"),
    ],
)
def test_values_that_would_fail_later_are_refused_up_front(snippet: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(snippet)
    assert any(fragment in problem for problem in info.value.problems), info.value.problems


def test_one_problem_is_one_line_of_bounded_length() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(f'[site]\nid = "{"x" * 5000}"')
    assert all(len(problem) <= 300 and "\n" not in problem for problem in info.value.problems)


def test_the_example_switched_to_the_emulator_is_valid_as_it_stands() -> None:
    """README: set [inverter] type = "emulator" in the example; nothing else needs to change."""
    text = EXAMPLE.read_text(encoding="utf-8").replace('type = "goodwe"', 'type = "emulator"', 1)
    config = load_config_text(text)
    assert config.inverter.type == "emulator"
    assert config.inverter.initial_soc_pct == 50.0  # the emulator's keys are read from the same table
    goodwe = load_config_text(EXAMPLE.read_text(encoding="utf-8"))
    assert goodwe.inverter.type == "goodwe"
    with pytest.raises(ConfigError, match=r"inverter\.emulator\.colour: unknown key"):
        load_config_text('[inverter]\ntype = "emulator"\ncolour = 1\n')
