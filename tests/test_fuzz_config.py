"""Fuzzing the configuration loader and the daemon's reload.

Inputs: the example configuration with random mutations (values of every TOML type in place of
any value, keys removed, unknown keys added, tables replaced), secrets at every secret key, and
raw text (random, or the example file with characters inserted and removed). The loader must
return a configuration or raise ConfigError with readable problems, never anything else, and a
secret must never appear in a message. A running daemon given the same files on reload keeps its
configuration unless the new one is valid.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import random
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.apps import StillApp

from controller.clock import Clock, SystemClock
from controller.config.loading import load_config_text
from controller.config.models import ConfigError, HemsdConfig
from controller.control.settings import toml_text
from controller.daemon.runner import Daemon
from controller.daemon.systemd import Notifier

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "hemsd.example.toml"
SECRET = "Zq8-secret-4d7f1e0b9a"  # nothing else in any configuration looks like this
SECRET_PLACES: tuple[tuple[str, ...], ...] = (
    ("mqtt", "password"),
    ("storage", "influx", "server", "token"),
    ("web", "token"),
    ("forecast", "weather", "api_key"),
)


def base_document() -> dict[str, Any]:
    document = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    document.setdefault("mqtt", {"host": "127.0.0.1"})
    document["storage"].setdefault("influx", {"server": {"type": "v2", "url": "http://127.0.0.1:8086"}})
    for *tables, key in SECRET_PLACES:
        table = document
        for name in tables:
            table = table.setdefault(name, {})
        table[key] = SECRET
    return document


BASE = base_document()


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every value (tables and arrays included) below ``value``."""
    out: list[tuple[Any, ...]] = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(leaves(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(leaves(item, (*path, index)))
    return out


PATHS = leaves(BASE)

scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.booleans(),
    st.datetimes(timezones=st.one_of(st.none(), st.just(dt.UTC))),
    st.dates(),
    st.sampled_from(
        ["", " ", "0", "-1", "1e309", "NaN", "Europe/Atlantis", "udp", "v1", "v2", "goodwe", "emulator"]
    ),
)
toml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(min_size=1, max_size=12), inner, max_size=4)
    ),
    max_leaves=8,
)


def copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy(v) for v in value]
    return value


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    document = copy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = document
        try:
            for part in path[:-1]:
                parent = parent[part]
            last = path[-1]
            parent[last]  # the path may have been removed by an earlier mutation
        except (KeyError, IndexError, TypeError):
            continue
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[last] = draw(toml_values)
        elif action == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(toml_values)
    return document


def check(text: str) -> HemsdConfig | None:
    """Load ``text``: a configuration or a ConfigError that names its problems and hides secrets."""
    try:
        return load_config_text(text)
    except ConfigError as exc:
        error = exc
    assert error.problems
    assert all(isinstance(p, str) and p.strip() for p in error.problems)
    assert SECRET not in str(error), str(error)
    return None


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=mutated_documents())
def test_mutated_configurations_load_or_are_rejected_clearly(document: dict[str, Any]) -> None:
    try:
        text = toml_text(document)
    except (TypeError, ValueError):
        return  # something TOML cannot hold (e.g. a key the writer refuses): not a configuration file
    config = check(text)
    if config is not None:
        assert SECRET not in str(config.redacted())
        assert SECRET not in repr(config)


example = EXAMPLE.read_text(encoding="utf-8")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(example)), st.integers(0, 8), st.text(max_size=6)),
        min_size=1,
        max_size=6,
    )
)
def test_a_damaged_config_file_is_one_clear_problem_or_loads(edits: list[tuple[int, int, str]]) -> None:
    text = example
    for position, cut, insert in edits:
        at = min(position, len(text))
        text = text[:at] + insert + text[at + cut :]
    check(text)


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_is_a_config_or_a_config_error(text: str) -> None:
    check(text)


# --- the running daemon's reload ---------------------------------------------------------------------


def damaged(rng: random.Random) -> bytes:
    """A broken or mutated version of the example file (or random bytes)."""
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
    text = example
    if kind == 1:
        for _ in range(rng.randrange(1, 5)):
            at = rng.randrange(len(text))
            text = (
                text[:at]
                + rng.choice(["", "=", "[", '"', "\n", "x", "0", "]]", "\x00"])
                + text[at + rng.randrange(5) :]
            )
        return text.encode()
    document = copy(BASE)
    path = rng.choice(PATHS)
    parent: Any = document
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = rng.choice(
        [-1, 10**12, math.nan, "", "bogus", [], {"x": 1}, True, dt.date(2026, 1, 1)]
    )
    try:
        return toml_text(document).encode()
    except (TypeError, ValueError):
        return b"[["


async def test_a_running_daemon_keeps_its_configuration_through_300_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "hemsd.toml"
    path.write_text(example, encoding="utf-8")
    running = load_config_text(example)
    apps: list[StillApp] = []

    def factory(config: HemsdConfig, clock: Clock) -> StillApp:
        apps.append(StillApp(config, clock))
        return apps[-1]

    level = logging.getLogger().level
    daemon = Daemon(running, factory, SystemClock(), config_path=path, notifier=Notifier(""))
    runner = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.started.wait(), 10)
        app = apps[0]
        rng = random.Random(20261122)
        accepted = 0
        for _ in range(300):
            content = damaged(rng)
            path.write_bytes(content)
            before = daemon.config
            try:
                valid = load_config_text(content.decode("utf-8"))
            except (ConfigError, UnicodeDecodeError):
                valid = None
            assert await daemon.reload() is (valid is not None)
            if valid is None:
                assert daemon.config is before  # nothing of a rejected file is applied
            else:
                accepted += 1
                assert daemon.config == valid
            assert app.config == daemon.config
        assert app.rejections == daemon.rejected_reloads > 150
        assert accepted > 0
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(runner, 10) == 0
        logging.getLogger().setLevel(level)  # a reload applies [logging] to the whole process
