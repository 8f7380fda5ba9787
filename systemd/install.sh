#!/bin/sh
# Install, upgrade or remove hemsd as a systemd service (Debian / Raspberry Pi OS).
#
#   sudo sh systemd/install.sh                 install or upgrade, enable, start when configured
#   sudo sh systemd/install.sh --no-start      install or upgrade and enable, leave the service as it is
#   sudo sh systemd/install.sh --uninstall     stop and remove the service and the program; keep the
#                                              configuration, the credentials and the data
#   sudo sh systemd/install.sh --uninstall --purge   remove those too, and the hemsd user
#
# Every step checks before it acts, so running it again changes nothing that is already right. An
# existing /etc/hemsd/hemsd.toml is never overwritten.
#
# Environment:
#   DESTDIR        install into this root instead of / (image builds, tests): systemd is not asked
#                  to reload or start anything; users and unit links are written under DESTDIR
#   HEMSD_PACKAGE  what pip installs (default: the source tree this script belongs to); a wheel, a
#                  directory or a requirement such as hemsd==0.2.0. PIP_* variables reach pip.
#   PYTHON         interpreter for the virtual environment (default python3; 3.11 or newer)
set -eu
umask 022  # the venv and the unit must be readable by the service user whatever root's umask is

PROG=hemsd-install
SRC=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
PYTHON=${PYTHON:-python3}
PACKAGE=${HEMSD_PACKAGE:-$SRC}

# Fixed locations: the unit file names them.
PREFIX=/opt/hemsd
VENV=$PREFIX/venv
CONFDIR=/etc/hemsd
STATEDIR=/var/lib/hemsd
UNITDIR=/etc/systemd/system
CREDSTORE=/etc/credstore
UNIT=hemsd.service
USER_NAME=hemsd
# The credstore files the unit loads (LoadCredential=), removed by --purge.
CREDENTIALS="mqtt__password storage__influx__server__token storage__influx__server__password entsoe"

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# $1: exit status; the help goes to stdout for --help, to stderr after a usage error.
usage() {
    if [ "$1" -eq 0 ]; then exec 3>&1; else exec 3>&2; fi
    sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&3
    exit "$1"
}

# systemd runs this machine (not a chroot, container build or DESTDIR staging).
systemd_running() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

systemctl_offline() {
    if [ -n "$DESTDIR" ]; then systemctl --root="$DESTDIR" "$@"; else systemctl "$@"; fi
}

check_python() {
    command -v "$PYTHON" >/dev/null 2>&1 || die "no Python interpreter '$PYTHON' (set PYTHON, or: apt-get install python3)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is $("$PYTHON" -c 'import platform; print(platform.python_version())'); hemsd needs Python 3.11 or newer"
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
        || die "$PYTHON cannot create virtual environments (apt-get install python3-venv)"
    # The venv runs its base interpreter, which the service must reach: ProtectHome=yes hides
    # /home, /root and /run/user (a pyenv or conda Python there would fail with status 203/EXEC).
    base=$("$PYTHON" -c 'import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))')
    case $base in
        /home/* | /root/* | /run/user/*)
            die "$PYTHON is $base, hidden from the service by ProtectHome=yes; use a system Python (PYTHON=/usr/bin/python3)" ;;
    esac
}

# The venv is kept when it runs the same Python version; otherwise (first install, or the system
# Python was upgraded under it) it is built anew.
ensure_venv() {
    venv=$DESTDIR$VENV
    want=$("$PYTHON" -c 'import platform; print(platform.python_version())')
    have=$("$venv/bin/python" -c 'import platform; print(platform.python_version())' 2>/dev/null || true)
    if [ -n "$have" ] && [ "$have" = "$want" ]; then
        say "kept virtual environment $VENV (Python $have)"
        return
    fi
    if [ -e "$venv" ]; then
        say "replacing virtual environment $VENV (Python ${have:-unusable} -> $want)"
        rm -rf "$venv"
    fi
    mkdir -p "$DESTDIR$PREFIX"
    "$PYTHON" -m venv "$venv"
    say "created virtual environment $VENV (Python $want)"
}

install_package() {
    say "installing $PACKAGE into $VENV"
    "$DESTDIR$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        --upgrade "$PACKAGE" || die "pip could not install $PACKAGE"
    [ -x "$DESTDIR$VENV/bin/hemsd" ] || die "$VENV/bin/hemsd is missing after pip install"
    install -m 0644 "$SRC/README.md" "$DESTDIR$PREFIX/README.md"
}

ensure_user() {
    line="u $USER_NAME - \"hemsd home-energy controller\" $STATEDIR /usr/sbin/nologin"
    command -v systemd-sysusers >/dev/null 2>&1 || die "systemd-sysusers not found (is this a systemd system?)"
    if [ -n "$DESTDIR" ]; then
        mkdir -p "$DESTDIR/etc"
        systemd-sysusers --root="$DESTDIR" --inline "$line"
    else
        systemd-sysusers --inline "$line"
    fi
    say "system user $USER_NAME present"
}

install_config() {
    mkdir -p "$DESTDIR$CONFDIR"
    chmod 0755 "$DESTDIR$CONFDIR"
    if [ -e "$DESTDIR$CONFDIR/hemsd.toml" ]; then
        say "kept existing $CONFDIR/hemsd.toml"
        CONFIG_CREATED=no
    else
        # Readable by the service user; secrets belong in $CREDSTORE, never in this file.
        install -m 0644 "$SRC/config/hemsd.example.toml" "$DESTDIR$CONFDIR/hemsd.toml"
        say "created $CONFDIR/hemsd.toml from the example: edit it before starting"
        CONFIG_CREATED=yes
    fi
    install -d -m 0700 "$DESTDIR$CREDSTORE"
}

install_unit() {
    mkdir -p "$DESTDIR$UNITDIR"
    if cmp -s "$SRC/systemd/$UNIT" "$DESTDIR$UNITDIR/$UNIT"; then
        say "kept $UNITDIR/$UNIT (unchanged)"
    else
        install -m 0644 "$SRC/systemd/$UNIT" "$DESTDIR$UNITDIR/$UNIT"
        say "installed $UNITDIR/$UNIT"
    fi
    if systemd_running; then systemctl daemon-reload; fi
    systemctl_offline enable --quiet "$UNIT"
    say "enabled $UNIT"
}

# Start on a valid configuration: a fresh example is left for the administrator to edit, and an
# invalid file is reported instead of restarting a running daemon into exit 78.
start_service() {
    if ! systemd_running; then
        say "systemd is not running here: not starting $UNIT"
        return 0
    fi
    if [ "$CONFIG_CREATED" = yes ]; then
        say "next: edit $CONFDIR/hemsd.toml, then: systemctl start hemsd"
        return 0
    fi
    if ! "$VENV/bin/hemsd" check-config "$CONFDIR/hemsd.toml"; then
        say "not (re)started: fix $CONFDIR/hemsd.toml (hemsd check-config $CONFDIR/hemsd.toml)"
        return 1
    fi
    if systemctl --quiet is-active "$UNIT"; then
        systemctl restart "$UNIT"
        say "restarted $UNIT"
    else
        systemctl start "$UNIT"
        say "started $UNIT"
    fi
}

do_install() {
    start=$1
    check_python
    ensure_venv
    install_package
    ensure_user
    install_config
    install_unit
    if [ "$start" = yes ]; then start_service; fi
    say "done: $("$DESTDIR$VENV/bin/python" -c 'import controller; print("hemsd", controller.__version__)' 2>/dev/null || echo hemsd) in $PREFIX"
}

do_uninstall() {
    purge=$1
    if systemd_running; then
        systemctl disable --now --quiet "$UNIT" 2>/dev/null || true
    elif [ -e "$DESTDIR$UNITDIR/$UNIT" ]; then
        systemctl_offline disable --quiet "$UNIT" || true
    fi
    if [ -e "$DESTDIR$UNITDIR/$UNIT" ]; then
        rm -f "$DESTDIR$UNITDIR/$UNIT"
        say "removed $UNITDIR/$UNIT"
    fi
    if systemd_running; then systemctl daemon-reload; fi
    if [ -e "$DESTDIR$PREFIX" ]; then
        rm -rf "$DESTDIR$PREFIX"
        say "removed $PREFIX"
    fi
    if [ "$purge" = no ]; then
        say "kept $CONFDIR, $STATEDIR, the credentials in $CREDSTORE and the user $USER_NAME (--purge removes them)"
        return 0
    fi
    rm -rf "$DESTDIR$CONFDIR" "$DESTDIR$STATEDIR" "$DESTDIR/var/lib/private/hemsd"
    for name in $CREDENTIALS; do rm -f "$DESTDIR$CREDSTORE/hemsd.$name"; done
    say "removed $CONFDIR, $STATEDIR and the hemsd credentials"
    if grep -q "^$USER_NAME:" "$DESTDIR/etc/passwd" 2>/dev/null; then
        if [ -n "$DESTDIR" ]; then userdel --prefix "$DESTDIR" "$USER_NAME"; else userdel "$USER_NAME"; fi
        say "removed the user $USER_NAME"
    fi
    if grep -q "^$USER_NAME:" "$DESTDIR/etc/group" 2>/dev/null; then
        if [ -n "$DESTDIR" ]; then groupdel --prefix "$DESTDIR" "$USER_NAME"; else groupdel "$USER_NAME"; fi
    fi
}

action=install
start=yes
purge=no
for arg in "$@"; do
    case $arg in
        --uninstall) action=uninstall ;;
        --purge) purge=yes ;;
        --no-start) start=no ;;
        -h | --help) usage 0 ;;
        *) printf '%s: unknown argument %s\n' "$PROG" "$arg" >&2; usage 2 ;;
    esac
done
if [ "$purge" = yes ] && [ "$action" != uninstall ]; then
    printf '%s: --purge only goes with --uninstall\n' "$PROG" >&2
    usage 2
fi
if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo sh $0 $*), or set DESTDIR to stage the files elsewhere"
fi

if [ "$action" = install ]; then do_install "$start"; else do_uninstall "$purge"; fi
