"""Price-source configuration: one model per ``type``, and building sources from them.

``PriceSourceConfig`` is a discriminated union on ``type``: an unknown type is a config error
that lists the known ones. ``PricesConfig`` is the ``[prices]`` section of the config file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.http import HttpClient, RetryPolicy
from drivers.prices.awattar import AwattarConfig, AwattarSource
from drivers.prices.csv_file import CsvConfig, CsvSource
from drivers.prices.energi_data_service import EnergiDataServiceConfig, EnergiDataServiceSource
from drivers.prices.entsoe import EntsoeConfig, EntsoeSource
from drivers.prices.nordpool import NordpoolConfig, NordpoolSource
from drivers.prices.octopus_agile import OctopusAgileConfig, OctopusAgileSource
from drivers.prices.pse import PseConfig, PseSource
from drivers.prices.tariff import TariffConfig
from drivers.prices.tou import TouConfig, TouSource, missing_zones
from drivers.prices.types import PriceSource
from drivers.prices.zones import ZoneCalendar

PriceSourceConfig = Annotated[
    PseConfig
    | EntsoeConfig
    | NordpoolConfig
    | AwattarConfig
    | EnergiDataServiceConfig
    | OctopusAgileConfig
    | TouConfig
    | CsvConfig,
    Field(discriminator="type"),
]

SOURCE_TYPES = ("pse", "entsoe", "nordpool", "awattar", "energi_data_service", "octopus_agile", "tou", "csv")


def source_name(config: PriceSourceConfig) -> str:
    return config.name or config.type


class HttpConfig(BaseModel):
    """Timeouts and retries of every web price source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: Annotated[float, Field(gt=0.0, le=300.0)] = 15.0
    attempts: Annotated[int, Field(ge=1, le=10)] = 3
    backoff_s: Annotated[float, Field(ge=0.0, le=300.0)] = 2.0
    max_backoff_s: Annotated[float, Field(ge=0.0, le=3600.0)] = 60.0

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.attempts,
            timeout_s=self.timeout_s,
            backoff_s=self.backoff_s,
            max_backoff_s=self.max_backoff_s,
        )


def _default_sources() -> list[PriceSourceConfig]:
    return [PseConfig()]


class PricesConfig(BaseModel):
    """Sources tried in order for every day (cache, then network), the tariff, HTTP behaviour."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: Annotated[list[PriceSourceConfig], Field(min_length=1)] = Field(default_factory=_default_sources)
    tariff: TariffConfig = Field(default_factory=TariffConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    cache_days: Annotated[int, Field(ge=1, le=3650)] = 14

    @model_validator(mode="after")
    def _check_chain(self) -> Self:
        seen: set[str] = set()
        for index, source in enumerate(self.sources):
            name = source_name(source)
            if name in seen:
                raise ValueError(
                    f"sources[{index}]: a second source named {name!r}; give each a distinct name"
                )
            seen.add(name)
            if isinstance(source, TouConfig):
                calendar = source.calendar or self.tariff.calendar
                gaps = missing_zones(source, calendar.zones)
                if gaps:
                    raise ValueError(
                        f"sources[{index}] (tou): no price for zone(s) {', '.join(gaps)} "
                        f"of its calendar (zones: {', '.join(calendar.zones)})"
                    )
        return self


# Web sources: config type -> constructor taking (config, http).
WEB_SOURCES: tuple[tuple[type[BaseModel], Callable[[Any, HttpClient], PriceSource]], ...] = (
    (PseConfig, PseSource),
    (EntsoeConfig, EntsoeSource),
    (NordpoolConfig, NordpoolSource),
    (AwattarConfig, AwattarSource),
    (EnergiDataServiceConfig, EnergiDataServiceSource),
    (OctopusAgileConfig, OctopusAgileSource),
)


def build_source(
    config: PriceSourceConfig, *, http: HttpClient, tariff_calendar: ZoneCalendar, currency: str
) -> PriceSource:
    """The source a config describes; tou without its own calendar uses the tariff's."""
    if isinstance(config, TouConfig):
        calendar = (
            tariff_calendar if config.calendar is None else config.calendar.build(tariff_calendar.timezone)
        )
        return TouSource(config, calendar, currency=currency)
    if isinstance(config, CsvConfig):
        return CsvSource(config)
    for config_type, constructor in WEB_SOURCES:
        if isinstance(config, config_type):
            return constructor(config, http)
    raise TypeError(f"no price source for config {type(config).__name__}")
