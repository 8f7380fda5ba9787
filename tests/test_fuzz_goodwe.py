"""Fuzzing the GoodWe driver's frame handling: real emulator frames, damaged.

The driver talks to the in-process emulator over Modbus TCP once, and every reply frame it gets is
kept. Then each case serves the driver those frames with random damage instead of asking the
emulator: register values replaced (the frame stays well formed, so the goodwe library decodes
garbage), or the frame cut, extended or its header changed (the library's own validation rejects
it, as the protocol layer would). A read must give a sane snapshot (every value finite, SoC within
0-100 %, no power beyond any house's), or the last good one, or InverterError; reading the settings must give a Command, None
or InverterError; and nothing is ever written because of a damaged reply.

Also the pure mapping, ``snapshot_from_runtime``, on any dictionary of sensor values.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from goodwe.exceptions import RequestFailedException
from goodwe.protocol import ProtocolResponse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from controller.clock import VirtualClock
from controller.sim.emulator.server import GoodWeEmulator
from drivers.inverter.goodwe import _WRITE_COMMANDS, GoodWeConfig, GoodWeDriver, _CountingEt
from drivers.inverter.goodwe_mapping import snapshot_from_runtime
from drivers.inverter.types import Command, InverterError, Snapshot

START = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)


def sane(snapshot: Snapshot) -> None:
    values = snapshot.fields()
    assert all(math.isfinite(v) for v in values.values()), values
    assert 0.0 <= snapshot.soc_pct <= 100.0, snapshot.soc_pct
    powers = (snapshot.pv_w, snapshot.battery_w, snapshot.grid_w)
    assert all(abs(p) <= 200_000.0 for p in powers), powers  # no inverter or house carries more


# --- the mapping ----------------------------------------------------------------------------------

sensor_values = st.one_of(
    st.none(),
    st.integers(-(2**31), 2**32),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.booleans(),
)
SENSORS = ["ppv", "pbattery1", "active_power", "battery_soc", "meter_comm_status", "meter_active_power_total",
           "vgrid", "vgrid2", "vgrid3", "fgrid", "temperature", "battery_temperature", "e_total", "e_total_imp",
           "e_total_exp", "e_load_total", "e_bat_charge_total", "e_bat_discharge_total"]  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(data=st.dictionaries(st.sampled_from(SENSORS), sensor_values, min_size=0, max_size=len(SENSORS)))
def test_any_runtime_values_map_to_a_sane_snapshot_or_a_value_error(data: dict[str, Any]) -> None:
    try:
        snapshot = snapshot_from_runtime(data, START, "self_use")
    except ValueError:
        return
    sane(snapshot)


# --- damaged frames through the driver --------------------------------------------------------------


class Frames:
    """The emulator's reply to each request the driver made, served with damage on demand."""

    def __init__(self) -> None:
        self.replies: dict[bytes, bytes] = {}
        self.damage: list[tuple[int, int, bytes]] = []  # (request index, position, new bytes)
        self.shape = ""  # "", "cut", "extend", "header"
        self.requests = 0
        self.writes = 0

    def serve(self, command: Any) -> ProtocolResponse:
        if isinstance(command, _WRITE_COMMANDS):
            self.writes += 1
            raise AssertionError(f"a damaged reply led to a write: {command}")
        raw = bytearray(self.replies[command.request])
        index = self.requests
        self.requests += 1
        for at_request, position, new in self.damage:
            if at_request == index % 4 and len(raw) > 9:
                at = 9 + position % (len(raw) - 9)  # the register values, after the header
                raw[at : at + len(new)] = new[: len(raw) - at]
        if self.shape == "cut":
            raw = raw[: len(raw) // 2]
        elif self.shape == "extend":
            raw += b"\x00\x01"
        elif self.shape == "header":
            raw[7] ^= 0x80  # an exception reply code
        if not command.validator(bytes(raw)):
            raise RequestFailedException("invalid reply", 1)
        return ProtocolResponse(bytes(raw), command)


@pytest.fixture(scope="module")
def connected() -> Iterator[tuple[asyncio.AbstractEventLoop, GoodWeDriver, Frames]]:
    """A driver that has talked to the emulator for real (every reply kept), then is served the kept
    replies (with damage) by every connection it makes, without the emulator."""
    loop = asyncio.new_event_loop()
    clock = VirtualClock(START)
    emulator = GoodWeEmulator(clock=clock, tcp_port=0)
    loop.run_until_complete(emulator.start())
    driver = GoodWeDriver(
        GoodWeConfig(host="127.0.0.1", port=emulator.tcp_port, protocol="tcp", stale_after_failures=3),
        now=clock.now,
    )
    frames = Frames()
    real = _CountingEt._read_from_socket

    async def recording(self: _CountingEt, command: Any) -> Any:
        response = await real(self, command)
        frames.replies[command.request] = response.raw_data
        return response

    async def served(self: _CountingEt, command: Any) -> Any:
        return frames.serve(command)

    async def record() -> None:
        assert isinstance(await driver.read(), Snapshot)  # connect: device info, settings, runtime
        await driver.current_command()

    quiet = logging.getLogger("goodwe")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the library logs every sensor it cannot decode
    try:
        _CountingEt._read_from_socket = recording  # type: ignore[method-assign]
        loop.run_until_complete(record())
        _CountingEt._read_from_socket = served  # type: ignore[method-assign]
        yield loop, driver, frames
    finally:
        _CountingEt._read_from_socket = real  # type: ignore[method-assign]
        quiet.setLevel(level)
        loop.run_until_complete(emulator.stop())
        loop.close()


def fresh(driver: GoodWeDriver) -> None:
    """Each case starts from a driver with a good reading and no failures (no reconnect backoff)."""
    driver._failures, driver._next_connect_at = 0, 0.0


damage = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 300), st.binary(min_size=1, max_size=6)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged=damage, shape=st.sampled_from(["", "", "", "cut", "extend", "header"]))
def test_a_damaged_runtime_frame_gives_a_sane_snapshot_or_the_last_good_one(
    connected: tuple[asyncio.AbstractEventLoop, GoodWeDriver, Frames],
    damaged: list[tuple[int, int, bytes]],
    shape: str,
) -> None:
    loop, driver, frames = connected
    fresh(driver)
    frames.damage, frames.shape, frames.requests = damaged, shape, 0
    previous = driver._last
    try:
        snapshot = loop.run_until_complete(driver.read())
    except InverterError:
        assert previous is None
        return
    finally:
        frames.damage, frames.shape = [], ""
    if snapshot is previous:
        event("refused: the last good reading served")
        return  # the reply was refused: the last good reading is served
    event("decoded")
    sane(snapshot)
    assert frames.writes == 0


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged=damage, shape=st.sampled_from(["", "", "", "cut", "extend", "header"]))
def test_damaged_settings_frames_read_as_a_command_none_or_an_error(
    connected: tuple[asyncio.AbstractEventLoop, GoodWeDriver, Frames],
    damaged: list[tuple[int, int, bytes]],
    shape: str,
) -> None:
    loop, driver, frames = connected
    fresh(driver)
    frames.damage, frames.shape, frames.requests = damaged, shape, 0
    try:
        command = loop.run_until_complete(driver.current_command())
    except InverterError:
        return
    finally:
        frames.damage, frames.shape = [], ""
    assert command is None or isinstance(command, Command)
    assert frames.writes == 0
