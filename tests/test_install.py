"""systemd/install.sh run for real into a temporary root (DESTDIR): venv, package, user, config,
unit and its enablement, a second run that changes nothing, uninstall that keeps the data, purge.

The package is a wheel of this checkout built without network by the system Python's setuptools;
pip installs it with PIP_NO_INDEX/PIP_NO_DEPS (the dependencies would come from an index), so the
installed program is complete but its dependencies are not: the test checks the files, not a run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.wheels import SYSTEM_PYTHON, build_wheel

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "systemd" / "install.sh"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def install(
    root: Path, *args: str, package: Path | None = None, python: str = SYSTEM_PYTHON
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "DESTDIR": str(root),
        "PYTHON": python,
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    if package is not None:
        env["HEMSD_PACKAGE"] = str(package)
    return subprocess.run(
        ["sh", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def passwd_names(root: Path, table: str) -> list[str]:
    path = root / "etc" / table
    return (
        [line.split(":")[0] for line in path.read_text(encoding="utf-8").splitlines()]
        if path.exists()
        else []
    )


def require_tools() -> None:
    for tool in ("systemd-sysusers", "systemctl", "userdel"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


@pytest.mark.slow
def test_install_twice_then_uninstall_then_purge(tmp_path: Path, wheel: Path) -> None:
    require_tools()
    root = tmp_path / "root"
    venv = root / "opt/hemsd/venv"
    config = root / "etc/hemsd/hemsd.toml"
    unit = root / "etc/systemd/system/hemsd.service"
    wants = root / "etc/systemd/system/multi-user.target.wants/hemsd.service"

    first = install(root, package=wheel)
    assert first.returncode == 0, first.stderr
    assert "created /etc/hemsd/hemsd.toml" in first.stdout
    assert "systemd is not running here" in first.stdout  # DESTDIR: nothing is started
    assert config.read_bytes() == (REPO / "config/hemsd.example.toml").read_bytes()
    assert config.stat().st_mode & 0o777 == 0o644  # the service user reads it; secrets live elsewhere
    assert unit.read_bytes() == (REPO / "systemd/hemsd.service").read_bytes()
    assert os.readlink(wants) == "/etc/systemd/system/hemsd.service"
    assert (root / "etc/credstore").stat().st_mode & 0o777 == 0o700
    assert "hemsd" in passwd_names(root, "passwd")
    assert "hemsd" in passwd_names(root, "group")
    hemsd = venv / "bin/hemsd"
    assert hemsd.read_text(encoding="utf-8").startswith(f"#!{venv}/bin/python")
    version = subprocess.run(
        [str(venv / "bin/python"), "-c", "import controller; print(controller.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() in first.stdout

    config.write_text(
        config.read_text(encoding="utf-8") + "\n# edited by the administrator\n", encoding="utf-8"
    )
    edited = config.read_bytes()
    python_inode = (venv / "bin/python").lstat().st_ino
    second = install(root, package=wheel)
    assert second.returncode == 0, second.stderr
    assert "kept existing /etc/hemsd/hemsd.toml" in second.stdout
    assert "kept virtual environment" in second.stdout
    assert "(unchanged)" in second.stdout
    assert config.read_bytes() == edited
    assert (venv / "bin/python").lstat().st_ino == python_inode
    assert os.readlink(wants) == "/etc/systemd/system/hemsd.service"

    # systemd's own check of the unit as installed: ExecStart names the installed program
    installed_copy = tmp_path / "verify" / "hemsd.service"
    installed_copy.parent.mkdir()
    installed_copy.write_text(
        unit.read_text(encoding="utf-8").replace("/opt/hemsd/venv/bin/hemsd", str(hemsd))
    )
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        verified = subprocess.run(
            [analyze, "verify", str(installed_copy)], capture_output=True, text=True, check=False
        )
        assert verified.returncode == 0, verified.stderr

    state = root / "var/lib/hemsd/hemsd.sqlite3"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"data")
    (root / "etc/credstore/hemsd.mqtt__password").write_text("pw", encoding="utf-8")
    (root / "etc/credstore/other-service.token").write_text("t", encoding="utf-8")

    removed = install(root, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not unit.exists()
    assert not wants.is_symlink()
    assert not (root / "opt/hemsd").exists()
    assert config.read_bytes() == edited
    assert state.read_bytes() == b"data"
    assert (root / "etc/credstore/hemsd.mqtt__password").exists()
    assert "hemsd" in passwd_names(root, "passwd")

    again = install(root, "--uninstall")
    assert again.returncode == 0, again.stderr

    purged = install(root, "--uninstall", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not (root / "etc/hemsd").exists()
    assert not (root / "var/lib/hemsd").exists()
    assert not (root / "etc/credstore/hemsd.mqtt__password").exists()
    assert (root / "etc/credstore/other-service.token").exists()  # not ours
    assert "hemsd" not in passwd_names(root, "passwd")
    assert "hemsd" not in passwd_names(root, "group")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bogus",), "unknown argument --bogus"),
        (("--purge",), "--purge only goes with --uninstall"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = install(tmp_path / "root", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "--uninstall" in result.stderr  # the usage follows the error
    assert not (tmp_path / "root").exists()


def test_help_exits_0(tmp_path: Path) -> None:
    result = install(tmp_path / "root", "--help")
    assert result.returncode == 0
    assert "DESTDIR" in result.stdout


def test_missing_python_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-python")
    result = install(tmp_path / "root", python=missing)
    assert result.returncode == 1
    assert f"no Python interpreter '{missing}'" in result.stderr
    assert not (tmp_path / "root" / "opt").exists()
