"""The whole configuration as pydantic models, one per TOML table (loaded by ``loading``)."""

from __future__ import annotations

import logging
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from controller.config.base import Section
from controller.config.loads import HeatPumpConfig, LoadConfig, topics_apart, unique_names
from controller.errors import HemsdError
from controller.physics import BatteryParams, GridLimits
from controller.settlement.config import SettlementConfig
from drivers.prices.registry import PricesConfig

log = logging.getLogger(__name__)

EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h; systemd's RestartPreventExitStatus names it
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
GOODWE_MIN_FLOOR_PCT = 11.0  # the ET family ignores a depth of discharge above 89 %
SECRET_KEYS = frozenset({"password", "token", "api_key"})
WEB_TOKEN_MIN_CHARS = 16


class ConfigError(HemsdError):
    """The configuration is invalid; ``problems`` holds one message per problem."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(problems))


Host = Annotated[str, Field(pattern=r"^[^\s/#?@]+$", max_length=253)]  # a name or an address, nothing empty
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/?#@]+(:\d{1,5})?(/[^\s?#]*)?$", max_length=500)]
MqttPrefix = Annotated[str, Field(pattern=r"^[^#+/\x00\s]+(/[^#+/\x00\s]+)*$", max_length=200)]


class SiteConfig(Section):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")] = "home"
    name: str = "Home"
    timezone: str = "Europe/Warsaw"
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "PLN"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Warsaw)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class DaemonConfig(Section):
    poll_interval_s: Annotated[float, Field(ge=1, le=300)] = 10.0
    plan_interval_min: Annotated[int, Field(ge=5, le=60)] = 15
    prices_interval_min: Annotated[int, Field(ge=5, le=1440)] = 30
    forecast_interval_min: Annotated[int, Field(ge=5, le=1440)] = 60
    publish_interval_s: Annotated[float, Field(ge=1, le=600)] = 10.0
    housekeeping_interval_min: Annotated[int, Field(ge=1, le=1440)] = 60
    config_check_interval_s: Annotated[float, Field(ge=0.2, le=60)] = 2.0
    stop_timeout_s: Annotated[float, Field(gt=0, le=60)] = 8.0
    # local times (the site's zone) at which the next day's prices are fetched, besides the interval
    day_ahead_times: Annotated[tuple[time, ...], Field(max_length=24)] = (time(13, 5), time(14, 5))


class GoodweInverterConfig(Section):
    type: Literal["goodwe"] = "goodwe"
    host: Host
    port: Annotated[int, Field(ge=1, le=65535)] = 8899
    protocol: Literal["udp", "tcp"] = "udp"
    family: Literal["ET", "EH", "BT", "BH"] = "ET"
    timeout_s: Annotated[float, Field(gt=0, le=30)] = 1.0
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    failures_before_stale: Annotated[int, Field(ge=1, le=100)] = 3
    max_writes_per_day: Annotated[int, Field(ge=1, le=10000)] = 300
    # forced modes expire on the inverter this long after each write (renewed while hemsd runs)
    eco_window_min: Annotated[int | None, Field(ge=10, le=720)] = None


class EmulatedInverterConfig(Section):
    """An in-process GoodWe emulator on loopback, reached through the real goodwe driver (demo, trials)."""

    type: Literal["emulator"] = "emulator"
    protocol: Literal["udp", "tcp"] = "tcp"
    # PV follows the clear-sky model of [forecast] arrays times a clearness drawn per day around the
    # month's mean (controller.sim.emulator.site.MONTHLY_CLEARNESS), kept within this range
    pv_clearness_min: Annotated[float, Field(ge=0, le=1)] = 0.1
    pv_clearness_max: Annotated[float, Field(ge=0, le=1)] = 1.0
    seed: Annotated[int, Field(ge=0)] = 1
    daily_load_kwh: Annotated[float, Field(ge=0, le=500)] = 12.0
    initial_soc_pct: Annotated[float, Field(ge=0, le=100)] = 50.0
    failures_before_stale: Annotated[int, Field(ge=1, le=100)] = 3
    max_writes_per_day: Annotated[int, Field(ge=1, le=10000)] = 300
    eco_window_min: Annotated[int | None, Field(ge=10, le=720)] = None


InverterConfig = Annotated[GoodweInverterConfig | EmulatedInverterConfig, Field(discriminator="type")]


class BatteryConfig(Section):
    capacity_kwh: Annotated[float, Field(gt=0, le=1000)] = 10.0
    min_soc_pct: Annotated[float, Field(ge=0, lt=100)] = 15.0
    max_soc_pct: Annotated[float, Field(gt=0, le=100)] = 100.0
    max_charge_w: Annotated[float, Field(ge=0, le=100_000)] = 5000.0
    max_discharge_w: Annotated[float, Field(ge=0, le=100_000)] = 5000.0
    charge_efficiency: Annotated[float, Field(gt=0, le=1)] = 0.95
    discharge_efficiency: Annotated[float, Field(gt=0, le=1)] = 0.95
    wear_cost_per_kwh: Annotated[float, Field(ge=0, le=10)] = 0.0
    taper_start_soc_pct: Annotated[float | None, Field(ge=0, lt=100)] = None
    taper_end_fraction: Annotated[float, Field(gt=0, le=1)] = 0.2

    @model_validator(mode="after")
    def _window(self) -> BatteryConfig:
        if self.min_soc_pct >= self.max_soc_pct:
            raise ValueError(
                f"min_soc_pct ({self.min_soc_pct}) must be below max_soc_pct ({self.max_soc_pct})"
            )
        if self.taper_start_soc_pct is not None and self.taper_start_soc_pct >= self.max_soc_pct:
            raise ValueError(
                f"taper_start_soc_pct ({self.taper_start_soc_pct}) must be below max_soc_pct ({self.max_soc_pct})"
            )
        return self

    def params(self) -> BatteryParams:
        return BatteryParams(**self.model_dump())


class GridConfig(Section):
    max_import_w: Annotated[float, Field(gt=0, le=1_000_000)] = 11_000.0
    max_export_w: Annotated[float, Field(ge=0, le=1_000_000)] = 10_000.0

    def limits(self) -> GridLimits:
        return GridLimits(max_import_w=self.max_import_w, max_export_w=self.max_export_w)


class EndValueConfig(Section):
    """Value of energy left in the battery at the end of the horizon."""

    mode: Literal["price", "percentile"] = "percentile"
    price: Annotated[float, Field(ge=-10, le=100)] = 0.0
    percentile: Annotated[float, Field(ge=0, le=100)] = 30.0


class PlannerConfig(Section):
    # recourse: the least expected cost over the spread of past forecast errors, each slot's mode
    # re-chosen on every reading (controller.planner.recourse); deterministic: the least-cost plan for the
    # forecast, followed slot by slot (controller.planner.deterministic)
    kind: Literal["deterministic", "recourse"] = "recourse"
    horizon_hours: Annotated[int, Field(ge=1, le=72)] = 48
    soc_step_pct: Annotated[float, Field(gt=0, le=10)] = 0.5
    # deterministic planner: the slot acted on leaves self-use only when that gains more than this
    # share of the horizon's median import-export spread per kWh (thin trades lose more on
    # forecast errors than they gain); the recourse planner prices those errors itself
    self_use_margin: Annotated[float, Field(ge=0, le=1)] = 0.06
    end_value: EndValueConfig = EndValueConfig()


class PvArrayConfig(Section):
    kwp: Annotated[float, Field(gt=0, le=1000)] = 6.0
    tilt_deg: Annotated[float, Field(ge=0, le=90)] = 35.0
    azimuth_deg: Annotated[float, Field(ge=0, lt=360)] = 180.0
    losses_pct: Annotated[float, Field(ge=0, lt=100)] = 14.0


def _one_array() -> list[PvArrayConfig]:
    return [PvArrayConfig()]


class WeatherConfig(Section):
    """Where the weather-driven PV forecast comes from (controller.forecast.weather)."""

    source: Literal["none", "open_meteo", "forecast_solar"] = "none"
    base_url: str = ""  # empty: the source's public API
    api_key: SecretStr = SecretStr(
        ""
    )  # forecast_solar: a personal key (credential forecast__weather__api_key)
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 15.0
    refresh_min: Annotated[int, Field(ge=5, le=1440)] = 60
    retry_min: Annotated[int, Field(ge=1, le=1440)] = 10

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.rstrip("/")


class ForecastConfig(Section):
    latitude: Annotated[float, Field(ge=-90, le=90)] = 52.23
    longitude: Annotated[float, Field(ge=-180, le=180)] = 21.01
    arrays: Annotated[list[PvArrayConfig], Field(min_length=1, max_length=8)] = Field(
        default_factory=_one_array
    )
    yearly_load_kwh: Annotated[float, Field(gt=0, le=1_000_000)] = 4000.0
    history_days: Annotated[int, Field(ge=1, le=60)] = 28
    calibration_days: Annotated[int, Field(ge=1, le=30)] = 7
    weather: WeatherConfig = WeatherConfig()


class ExecutorConfig(Section):
    """The safety guard's limits and the executor's anti-flapping rules."""

    stale_after_s: Annotated[float, Field(ge=10, le=3600)] = 120.0
    min_dwell_s: Annotated[float, Field(ge=0, le=3600)] = 300.0
    power_step_w: Annotated[float, Field(ge=1, le=5000)] = 100.0
    power_hysteresis_w: Annotated[float, Field(ge=0, le=10_000)] = 300.0
    soc_hysteresis_pct: Annotated[float, Field(ge=0, le=20)] = 2.0
    grid_charge_price_cap: Annotated[float | None, Field(ge=-10, le=100)] = None
    battery_temp_min_c: Annotated[float, Field(ge=-40, le=60)] = 0.0
    battery_temp_max_c: Annotated[float, Field(ge=-40, le=80)] = 50.0
    replan_soc_deviation_pct: Annotated[float, Field(gt=0, le=100)] = 5.0
    replan_power_deviation_w: Annotated[float, Field(gt=0, le=100_000)] = 2000.0
    # the inverter's measured battery power this far from a forced charge or discharge for
    # response_readings readings in a row: commanded again; as many more: self-use, the inverter
    # marked unreliable (event, problem sensor) and tried again after response_retry_min
    response_readings: Annotated[int, Field(ge=2, le=100)] = 6
    response_tolerance_w: Annotated[float, Field(gt=0, le=100_000)] = 500.0
    response_retry_min: Annotated[int, Field(ge=1, le=1440)] = 30

    @model_validator(mode="after")
    def _temperature_window(self) -> ExecutorConfig:
        if self.battery_temp_min_c >= self.battery_temp_max_c:
            raise ValueError(
                f"battery_temp_min_c ({self.battery_temp_min_c}) must be below battery_temp_max_c "
                f"({self.battery_temp_max_c})"
            )
        return self


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class SocTargetConfig(Section):
    """Reach ``soc_pct`` by the local time ``by``: on each of ``days`` (weekly), or on ``on`` only."""

    soc_pct: Annotated[float, Field(gt=0, le=100)]
    by: time
    days: Annotated[tuple[Weekday, ...], Field(min_length=1, max_length=7)] = WEEKDAYS  # type: ignore[assignment]
    on: date | None = None

    @model_validator(mode="after")
    def _one_way(self) -> SocTargetConfig:
        if self.on is not None and "days" in self.model_fields_set:
            raise ValueError("give either days (weekly) or on (one day), not both")
        return self


class SocReserveConfig(Section):
    """Keep at least ``soc_pct`` until ``until`` (a date-time with its UTC offset): a backup reserve."""

    soc_pct: Annotated[float, Field(gt=0, le=100)]
    until: datetime

    @field_validator("until")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError(
                f"until must carry a UTC offset (2026-12-08T18:00:00+01:00), got {value.isoformat()}"
            )
        return value


class GoalsConfig(Section):
    """Battery goals from the file; more are set at run time (Home Assistant, HTTP, ``hemsd goal``)."""

    targets: Annotated[tuple[SocTargetConfig, ...], Field(max_length=14)] = ()
    reserves: Annotated[tuple[SocReserveConfig, ...], Field(max_length=4)] = ()


class InfluxV2Config(Section):
    type: Literal["v2"] = "v2"
    url: HttpUrl
    org: str = "hemsd"
    bucket: str = "hemsd"
    token: SecretStr = SecretStr("")


class InfluxV1Config(Section):
    type: Literal["v1"] = "v1"
    url: HttpUrl
    database: str = "hemsd"
    retention_policy: str = ""
    username: str = ""
    password: SecretStr = SecretStr("")


class InfluxConfig(Section):
    server: Annotated[InfluxV2Config | InfluxV1Config, Field(discriminator="type")]
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5000
    flush_interval_s: Annotated[float, Field(gt=0, le=600)] = 5.0
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    gzip: bool = True


class BackupConfig(Section):
    interval_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 24.0
    keep: Annotated[int, Field(ge=0, le=365)] = 7


class StorageConfig(Section):
    state_dir: Path = Path("/var/lib/hemsd")

    @field_validator("state_dir")
    @classmethod
    def _usable_directory(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"an absolute path, not {str(value)!r} (the service does not run where you do)")
        found = next((p for p in (value, *value.parents) if p.exists()), None)
        if found is not None and not found.is_dir():
            raise ValueError(f"{found} is not a directory")
        return value

    commit_interval_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    raw_retention_hours: Annotated[float, Field(ge=1, le=24 * 14)] = 48.0
    rollup_retention_days: Annotated[int, Field(ge=1, le=36500)] = 3650
    spool_max_points: Annotated[int, Field(ge=1000, le=100_000_000)] = 5_000_000
    backup: BackupConfig = BackupConfig()
    influx: InfluxConfig | None = None


class MqttTlsConfig(Section):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False


class MqttConfig(Section):
    host: Host = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str = ""
    password: SecretStr = SecretStr("")
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{0,64}$")] = ""
    base_topic: Annotated[str, Field(pattern=r"^([^#+/\x00]+(/[^#+/\x00]+)*)?$", max_length=200)] = ""
    discovery_prefix: MqttPrefix = "homeassistant"
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 60
    tls: MqttTlsConfig | None = None


class WebTlsConfig(Section):
    cert_file: Path
    key_file: Path


class WebConfig(Section):
    """The local HTTP API and dashboard (controller.frontends.web.server)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8780  # 0: any free port (tests)
    token: Annotated[SecretStr, Field(validate_default=True)] = SecretStr("")
    write_enabled: bool = False
    tls: WebTlsConfig | None = None

    @field_validator("token")
    @classmethod
    def _usable_token(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        secret = value.get_secret_value()
        if any(ord(c) < 0x21 or ord(c) > 0x7E for c in secret):
            raise ValueError("printable ASCII characters only, no spaces")
        if info.data.get("enabled") and len(secret) < WEB_TOKEN_MIN_CHARS:
            raise ValueError(
                f"the web server needs a bearer token of at least {WEB_TOKEN_MIN_CHARS} characters "
                f"(credential file web__token, e.g. from `openssl rand -hex 32`); got {len(secret)}"
            )
        return value

    def listener(self) -> tuple[object, ...]:
        """What a change of needs a restart of the server (the rest is read on every request)."""
        return (self.enabled, self.host, self.port, self.tls)


class HemsdConfig(BaseSettings):
    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix="HEMSD_",
        env_nested_delimiter="__",
        case_sensitive=False,
    )

    site: SiteConfig = SiteConfig()
    logging: LoggingConfig = LoggingConfig()
    daemon: DaemonConfig = DaemonConfig()
    inverter: InverterConfig = EmulatedInverterConfig()
    battery: BatteryConfig = BatteryConfig()
    grid: GridConfig = GridConfig()
    planner: PlannerConfig = PlannerConfig()
    executor: ExecutorConfig = ExecutorConfig()
    goals: GoalsConfig = GoalsConfig()
    forecast: ForecastConfig = ForecastConfig()
    prices: PricesConfig = PricesConfig()
    settlement: SettlementConfig = SettlementConfig()
    storage: StorageConfig = StorageConfig()
    mqtt: MqttConfig | None = None
    web: WebConfig = WebConfig()
    loads: Annotated[tuple[LoadConfig, ...], Field(max_length=16)] = ()

    @field_validator("loads")
    @classmethod
    def _unique_loads(cls, value: tuple[LoadConfig, ...]) -> tuple[LoadConfig, ...]:
        unique_names(value)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init holds the TOML file; environment and credential files override it.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _inverter_floor(self) -> HemsdConfig:
        if self.battery.min_soc_pct < GOODWE_MIN_FLOOR_PCT:
            raise ValueError(
                f"battery.min_soc_pct: GoodWe ET-family inverters keep at least {GOODWE_MIN_FLOOR_PCT:.0f} % "
                f"(depth of discharge at most 89 %); got {self.battery.min_soc_pct}"
            )
        if self.loads and self.mqtt is None:
            raise ValueError(f"loads: switching {self.loads[0].name!r} needs an [mqtt] broker")
        if self.mqtt is not None:
            base = self.mqtt.base_topic or f"hemsd/{self.site.id}"  # as drivers.mqtt's for_site
            topics_apart(self.loads, (base, self.mqtt.discovery_prefix))
        for load in self.loads:
            if (
                isinstance(load, HeatPumpConfig)
                and load.demand_w_per_k
                and self.forecast.weather.source != "open_meteo"
            ):
                raise ValueError(
                    f"loads.{load.name}.demand_w_per_k: a demand following the air temperature needs "
                    f'[forecast.weather] source = "open_meteo" (got {self.forecast.weather.source!r})'
                )
        return self

    @model_validator(mode="after")
    def _goals_within_the_window(self) -> HemsdConfig:
        top = self.battery.max_soc_pct
        goals = self.goals
        levels = [("targets", i, t.soc_pct) for i, t in enumerate(goals.targets)]
        levels += [("reserves", i, r.soc_pct) for i, r in enumerate(goals.reserves)]
        for kind, i, soc in levels:
            if soc > top:
                raise ValueError(f"goals.{kind}[{i}].soc_pct ({soc}) is above battery.max_soc_pct ({top})")
        return self

    def redacted(self) -> dict[str, Any]:
        """The configuration as plain data with every secret replaced; safe to log or store."""
        redacted: dict[str, Any] = redact(self.model_dump(mode="json"))
        return redacted


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("**********" if k in SECRET_KEYS and v else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
