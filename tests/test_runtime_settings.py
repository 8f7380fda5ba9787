"""The runtime overlay (numbers set over MQTT) on the file configuration, and the TOML it is recorded as."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config.loading import load_config, load_config_text
from controller.config.models import HemsdConfig
from controller.control.commands import CommandRejectedError, NumberSetting
from controller.control.settings import STATE_KEY, RuntimeSettings, toml_text
from storage.datamanager import DataManager, StorageOptions

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "hemsd.example.toml"
NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)

# --- TOML text ------------------------------------------------------------------------------------

_scalars = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.dates(min_value=date(1, 1, 1)),
    st.datetimes(timezones=st.just(UTC)),
)
_keys = st.text(max_size=8)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)
_documents = st.recursive(
    st.dictionaries(_keys, _values, max_size=4),
    lambda tables: st.dictionaries(_keys, tables | st.lists(tables, min_size=1, max_size=3), max_size=3),
    max_leaves=6,
)


@settings(max_examples=100, deadline=None)
@given(_documents)
def test_toml_text_reads_back_as_the_same_document(document: dict[str, Any]) -> None:
    assert tomllib.loads(toml_text(document)) == document


def test_toml_text_keeps_the_example_configuration() -> None:
    document = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    text = toml_text(document)
    assert tomllib.loads(text) == document
    assert load_config_text(text) == load_config(EXAMPLE)


def test_toml_text_escapes_what_toml_strings_cannot_hold() -> None:
    document = {
        'a "key"': 'line\nbreak\x7f\x00 "quoted" \\ tab\t',
        "plain": "zażółć ✓",
        "key\n": {"k\n": [{}]},
    }
    text = toml_text(document)
    assert "\x7f" not in text
    assert "\x00" not in text
    assert tomllib.loads(text) == document


def test_toml_text_refuses_values_toml_has_no_form_for() -> None:
    with pytest.raises(TypeError, match=r"NoneType.*not TOML serializable"):
        toml_text({"a": None})


# --- the overlay ------------------------------------------------------------------------------------

FILE = """
[battery]
min_soc_pct = {min_soc}
max_soc_pct = {max_soc}
max_charge_w = 4000
[executor]
grid_charge_price_cap = 0.8
[storage]
state_dir = "{state}"
"""


def write(path: Path, state: Path, min_soc: float = 20, max_soc: float = 95) -> HemsdConfig:
    path.write_text(FILE.format(min_soc=min_soc, max_soc=max_soc, state=state), encoding="utf-8")
    return load_config(path)


@pytest.fixture
async def data(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with DataManager(StorageOptions(state_dir=tmp_path / "state"), now=lambda: NOW) as manager:
        yield manager


async def test_numbers_overlay_the_file_and_survive_a_restart(tmp_path: Path, data: DataManager) -> None:
    path = tmp_path / "hemsd.toml"
    file_config = write(path, tmp_path / "state")
    overlay = RuntimeSettings()
    await overlay.load(data)
    assert await overlay.apply(data, file_config, NOW) == file_config

    for number, value in ((NumberSetting.MIN_SOC, 25.0), (NumberSetting.MAX_GRID_CHARGE_W, 2500.0)):
        config, entries = overlay.change(number, value, NOW)
        await overlay.commit(data, entries)
    config, entries = overlay.change(NumberSetting.PRICE_CAP, None, NOW)
    await overlay.commit(data, entries)
    assert (config.battery.min_soc_pct, config.battery.max_charge_w) == (25.0, 2500.0)
    assert config.executor.grid_charge_price_cap is None
    assert config.battery.max_soc_pct == file_config.battery.max_soc_pct

    text = tomllib.loads(overlay.config_text(path, config))
    assert text["battery"] == {"min_soc_pct": 25.0, "max_soc_pct": 95, "max_charge_w": 2500.0}
    assert "grid_charge_price_cap" not in text["executor"]
    assert load_config_text(overlay.config_text(path, config)) == config

    restarted = RuntimeSettings()
    await restarted.load(data)
    assert await restarted.apply(data, file_config, NOW) == config


async def test_a_value_that_does_not_fit_is_rejected_and_changes_nothing(
    tmp_path: Path, data: DataManager
) -> None:
    file_config = write(tmp_path / "hemsd.toml", tmp_path / "state", max_soc=90)
    overlay = RuntimeSettings()
    await overlay.apply(data, file_config, NOW)
    with pytest.raises(CommandRejectedError) as raised:
        overlay.change(NumberSetting.MIN_SOC, 92.0, NOW)
    assert raised.value.field == "min_soc"
    assert raised.value.value == 92.0
    assert "max_soc_pct (90.0)" in raised.value.reason
    with pytest.raises(CommandRejectedError, match="cannot be removed"):
        overlay.change(NumberSetting.MIN_SOC, None, NOW)
    assert overlay.entries == {}
    assert await data.get_state(STATE_KEY) is None


async def test_a_later_file_edit_wins_over_the_overlay(tmp_path: Path, data: DataManager) -> None:
    path = tmp_path / "hemsd.toml"
    overlay = RuntimeSettings()
    await overlay.apply(data, write(path, tmp_path / "state"), NOW)
    for number, value in ((NumberSetting.MIN_SOC, 30.0), (NumberSetting.MAX_GRID_CHARGE_W, 2000.0)):
        _, entries = overlay.change(number, value, NOW)
        await overlay.commit(data, entries)

    later = NOW + timedelta(hours=1)
    edited = await overlay.apply(data, write(path, tmp_path / "state", min_soc=15), later)
    assert edited.battery.min_soc_pct == 15  # the file was edited after the number was set
    assert edited.battery.max_charge_w == 2000.0  # untouched in the file: the overlay stays
    stored = await data.get_state(STATE_KEY)
    assert isinstance(stored, dict)
    assert set(stored) == {"battery.max_charge_w"}
    events = await data.events(kinds=["settings.dropped"])
    assert [e.data["key"] for e in events] == ["battery.min_soc_pct"]


async def test_an_overlay_the_file_no_longer_allows_is_dropped(tmp_path: Path, data: DataManager) -> None:
    path = tmp_path / "hemsd.toml"
    overlay = RuntimeSettings()
    await overlay.apply(data, write(path, tmp_path / "state"), NOW)
    _, entries = overlay.change(NumberSetting.MIN_SOC, 60.0, NOW)
    await overlay.commit(data, entries)
    config = await overlay.apply(data, write(path, tmp_path / "state", max_soc=50), NOW)
    assert config.battery.min_soc_pct == 20
    assert overlay.entries == {}
    (event,) = await data.events(kinds=["settings.dropped"])
    assert "no longer valid" in event.message


async def test_unreadable_stored_entries_are_ignored(tmp_path: Path, data: DataManager) -> None:
    await data.put_state(
        STATE_KEY,
        {
            "battery.min_soc_pct": {"value": "high", "file_value": 20, "set_at": NOW.isoformat()},
            "battery.capacity_kwh": {"value": 5, "file_value": 10, "set_at": NOW.isoformat()},
            "battery.max_charge_w": {"value": 3000, "file_value": 4000, "set_at": NOW.isoformat()},
        },
    )
    overlay = RuntimeSettings()
    await overlay.load(data)
    assert set(overlay.entries) == {"battery.max_charge_w"}
    config = await overlay.apply(data, write(tmp_path / "hemsd.toml", tmp_path / "state"), NOW)
    assert config.battery.max_charge_w == 3000
