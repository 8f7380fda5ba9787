"""Electricity prices: market sources registered by ``type``, tariff composition, the service.

Values and errors live in ``drivers.prices.types``; the configuration models in
``drivers.prices.registry`` (``PricesConfig``, ``PriceSourceConfig``) and
``drivers.prices.tariff`` (``TariffConfig``); the entry point is
``drivers.prices.service.PriceService``.
"""

from drivers.prices.types import (
    MarketSlot,
    Origin,
    PriceDataError,
    PriceError,
    PriceFetchError,
    PriceResult,
    PriceSlot,
    PriceSource,
    PriceStatus,
    PriceUnavailableError,
    SourceOutcome,
)

__all__ = [
    "MarketSlot",
    "Origin",
    "PriceDataError",
    "PriceError",
    "PriceFetchError",
    "PriceResult",
    "PriceSlot",
    "PriceSource",
    "PriceStatus",
    "PriceUnavailableError",
    "SourceOutcome",
]
