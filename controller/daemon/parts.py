"""Building the parts of the daemon from the configuration: storage, inverter (or emulator), prices.

Each ``open_*`` enters what it builds into an AsyncExitStack, so the application closes them in
reverse order on stop.
"""

from __future__ import annotations

import math
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from controller.clock import Clock
from controller.config.models import EmulatedInverterConfig, GoodweInverterConfig, HemsdConfig
from controller.forecast.service import clear_sky_pv_w
from controller.planner.inputs import PricedSlot
from controller.sim.emulator.site import EmulatedSiteConfig, Profile, daily_clearness, household_profile
from drivers.inverter.goodwe import GoodWeConfig, GoodWeDriver
from drivers.inverter.types import Inverter, InverterError
from drivers.prices.service import PriceService
from storage.datamanager import DataManager, StorageOptions
from storage.influx import InfluxApi, InfluxSettings
from storage.sqlite import Retention

if TYPE_CHECKING:  # the emulator (and pymodbus) is imported only when one is configured
    from controller.sim.emulator.server import GoodWeEmulator

# The emulator's default household profile uses about this much energy a day (Wh); the configured
# daily consumption scales it.
_PROFILE_DAY_WH = 300.0 * 24 + 900.0 * math.sqrt(math.pi) * 1.0 + 1600.0 * math.sqrt(math.pi) * 1.8


def storage_options(config: HemsdConfig) -> StorageOptions:
    s = config.storage
    influx = None
    if s.influx is not None:
        server = s.influx.server
        common = {
            "batch_size": s.influx.batch_size,
            "flush_interval_s": s.influx.flush_interval_s,
            "timeout_s": s.influx.timeout_s,
            "gzip": s.influx.gzip,
            "max_buffer_points": max(20_000, s.influx.batch_size),
        }
        if server.type == "v2":
            influx = InfluxSettings(
                url=server.url,
                api=InfluxApi.V2,
                org=server.org,
                bucket=server.bucket,
                token=server.token.get_secret_value(),
                **common,  # type: ignore[arg-type]
            )
        else:
            influx = InfluxSettings(
                url=server.url,
                api=InfluxApi.V1,
                database=server.database,
                retention_policy=server.retention_policy,
                username=server.username,
                password=server.password.get_secret_value(),
                **common,  # type: ignore[arg-type]
            )
    return StorageOptions(
        state_dir=s.state_dir,
        site=config.site.id,
        sample_interval_s=config.daemon.poll_interval_s,
        commit_interval_s=s.commit_interval_s,
        ring_hours=s.raw_retention_hours,
        max_gap_s=max(60.0, 3 * config.daemon.poll_interval_s),
        retention=Retention(rollup_days=float(s.rollup_retention_days)),
        spool_max_points=s.spool_max_points,
        backup_interval_h=s.backup.interval_hours,
        backup_keep=s.backup.keep,
        influx=influx,
    )


async def open_storage(stack: AsyncExitStack, config: HemsdConfig, clock: Clock) -> DataManager:
    config.storage.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # private when created here
    return await stack.enter_async_context(DataManager(storage_options(config), now=clock.now, owner=True))


@dataclass(frozen=True, slots=True)
class InverterHandle:
    driver: Inverter
    device: str
    emulator: GoodWeEmulator | None = None


def _driver_config(config: HemsdConfig, host: str, port: int, protocol: str, inv: object) -> GoodWeConfig:
    assert isinstance(inv, GoodweInverterConfig | EmulatedInverterConfig)
    timeout = inv.timeout_s if isinstance(inv, GoodweInverterConfig) else 1.0
    retries = inv.retries if isinstance(inv, GoodweInverterConfig) else 2
    return GoodWeConfig(
        host=host,
        port=port,
        family=inv.family if isinstance(inv, GoodweInverterConfig) else "ET",
        protocol=protocol,  # type: ignore[arg-type]
        timeout_s=timeout,
        retries=retries,
        stale_after_failures=inv.failures_before_stale,
        max_writes_per_day=inv.max_writes_per_day,
        write_day_tz=config.site.zone,
        base_min_soc=config.battery.min_soc_pct,
        battery_capacity_kwh=config.battery.capacity_kwh,
        base_export_limit_w=min(65535, int(config.grid.max_export_w)),
        eco_window_min=inv.eco_window_min,
    )


def emulated_pv(config: HemsdConfig, inv: EmulatedInverterConfig) -> Profile:
    """PV of the emulated site: the clear-sky output of the configured arrays (the forecaster's own
    solar geometry) times a clearness drawn once per local day around the season's mean
    (deterministic for a seed), so that a forecast has something to learn and a December day is dim."""
    forecast = config.forecast
    tz = config.site.zone

    def pv(t: datetime) -> float:
        power = clear_sky_pv_w(forecast.arrays, forecast.latitude, forecast.longitude, [t])[0]
        day = t.astimezone(tz).date()
        clearness = daily_clearness(
            day, forecast.latitude, inv.pv_clearness_min, inv.pv_clearness_max, inv.seed
        )
        return float(power) * clearness

    return pv


def start_emulator(config: HemsdConfig, inv: EmulatedInverterConfig, clock: Clock) -> GoodWeEmulator:
    from controller.sim.emulator.server import GoodWeEmulator  # noqa: PLC0415 - only when configured

    tz = config.site.zone
    scale = inv.daily_load_kwh * 1000.0 / _PROFILE_DAY_WH
    site = EmulatedSiteConfig(battery=config.battery.params(), initial_soc_pct=inv.initial_soc_pct, tz=tz)
    return GoodWeEmulator(
        clock=clock,
        tcp_port=0 if inv.protocol == "tcp" else None,
        udp_port=0 if inv.protocol == "udp" else None,
        site=site,
        pv=emulated_pv(config, inv),
        load=household_profile(300.0 * scale, 900.0 * scale, 1600.0 * scale, tz=tz),
    )


async def open_inverter(stack: AsyncExitStack, config: HemsdConfig, clock: Clock) -> InverterHandle:
    inv = config.inverter
    emulator = None
    if isinstance(inv, EmulatedInverterConfig):
        emulator = await stack.enter_async_context(start_emulator(config, inv, clock))
        port = emulator.tcp_port if inv.protocol == "tcp" else emulator.udp_port
        driver_config = _driver_config(config, "127.0.0.1", port, inv.protocol, inv)
    else:
        driver_config = _driver_config(config, inv.host, inv.port, inv.protocol, inv)
    driver = GoodWeDriver(driver_config, now=clock.now)
    stack.push_async_callback(driver.close)
    try:
        info = await driver.info()
        device = info.serial or info.model or "inverter"
    except InverterError:
        device = "inverter"  # unreachable now: the poller keeps trying; the tag settles next start
    return InverterHandle(driver, device, emulator)


async def open_prices(stack: AsyncExitStack, config: HemsdConfig, clock: Clock) -> PriceService:
    service = PriceService.from_config(
        config.prices,
        timezone=config.site.zone,
        currency=config.site.currency,
        cache_dir=config.storage.state_dir / "price-cache",
        now=clock.now,
    )
    stack.push_async_callback(service.close)
    return service


async def fetch_prices(service: PriceService, now: datetime) -> tuple[list[PricedSlot], str]:
    """Today's and tomorrow's prices (as far as known) and the service's status."""
    # the planner sees only published prices: tomorrow's appear once the market publishes them
    result = await service.fetch_days(now, days=2, fill_unpublished=False)
    slots = [PricedSlot(s.start, s.end, s.import_price, s.export_price) for s in result.slots]
    return slots, result.status.value
