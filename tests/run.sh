#!/bin/sh
# The whole test suite on a fresh Debian / Raspberry Pi OS machine: installs the real servers the
# tests start (mosquitto, influxdb 1.x, victoria-metrics), chromium (the dashboard's headless browser
# test; about 26 s to install, 350 MB on disk) and python3-venv when missing, creates .venv, installs
# hemsd with its test extras, runs the gates (ruff, ruff format, mypy --strict, import-linter), then pytest.
# Extra arguments go to pytest. Any failure, including "no tests collected", fails the run.
set -eu
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=""
for pkg in mosquitto influxdb victoria-metrics chromium python3-venv; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done
if [ -n "$missing" ]; then
    echo "installing Debian packages:$missing"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== import-linter"
.venv/bin/lint-imports --no-cache
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
