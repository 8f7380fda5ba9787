"""Price configuration: the source registry, readable errors, chain checks, the example file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from drivers.http import HttpClient
from drivers.prices.pse import PseSource
from drivers.prices.registry import SOURCE_TYPES, PricesConfig, build_source
from drivers.prices.tou import TouSource

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "hemsd.example.toml"


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        PricesConfig.model_validate({"sources": [{"type": "tibber"}]})
    message = str(caught.value)
    assert "sources.0" in message
    assert "Input tag 'tibber' found using 'type' does not match any of the expected tags" in message
    for known in SOURCE_TYPES:
        assert f"'{known}'" in message


def test_every_source_type_is_registered() -> None:
    minimal = {
        "pse": {},
        "entsoe": {"token": "t", "zone": "PL"},
        "nordpool": {"area": "SE3"},
        "awattar": {},
        "energi_data_service": {},
        "octopus_agile": {"region": "C"},
        "tou": {"prices": {"all": 0.5}},
        "csv": {"path": "/tmp/prices.csv", "currency": "PLN"},
    }
    assert set(minimal) == set(SOURCE_TYPES)
    config = PricesConfig.model_validate(
        {
            "sources": [
                {"type": kind, "name": f"s{i}", **extra} for i, (kind, extra) in enumerate(minimal.items())
            ]
        }
    )
    assert [source.type for source in config.sources] == list(minimal)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sources": []}, "at least 1 item"),
        ({"sources": [{"type": "pse"}, {"type": "pse"}]}, "a second source named 'pse'"),
        ({"sources": [{"type": "pse", "colour": "red"}]}, "sources.0.pse.colour"),
        ({"sources": [{"type": "entsoe", "zone": "PL"}]}, "give exactly one of token and token_file"),
        ({"sources": [{"type": "entsoe", "zone": "PL", "token": ""}]}, "sources.0.entsoe.token"),
        ({"sources": [{"type": "octopus_agile", "region": "O"}]}, "sources.0.octopus_agile.region"),
        (
            {
                "sources": [{"type": "tou", "prices": {"peak": 0.6}}],
                "tariff": {"calendar": {"preset": "G12"}, "fees": {"peak": {}, "offpeak": {}}},
            },
            r"sources\[0\] \(tou\): no price for zone\(s\) offpeak",
        ),
        ({"tariff": {"vat": 1.5}}, "tariff.vat"),
        ({"tariff": {"fees": {"all": {"distribution": "a lot"}}}}, "tariff.fees.all.distribution"),
        ({"http": {"timeout_s": 0}}, "http.timeout_s"),
    ],
)
def test_config_errors_name_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PricesConfig.model_validate(data)


def test_token_is_secret() -> None:
    config = PricesConfig.model_validate({"sources": [{"type": "entsoe", "token": "abc123", "zone": "PL"}]})
    assert "abc123" not in repr(config)
    assert "abc123" not in config.model_dump_json()


async def test_build_source_uses_the_tariff_calendar_for_tou() -> None:
    config = PricesConfig.model_validate(
        {
            "sources": [{"type": "pse"}, {"type": "tou", "prices": {"peak": 0.6, "offpeak": 0.4}}],
            "tariff": {"calendar": {"preset": "G12w"}, "fees": {"peak": {}, "offpeak": {}}},
        }
    )
    calendar = config.tariff.calendar.build(ZoneInfo("Europe/Warsaw"))
    async with HttpClient() as http:
        built = [build_source(s, http=http, tariff_calendar=calendar, currency="PLN") for s in config.sources]
    assert isinstance(built[0], PseSource)
    assert isinstance(built[1], TouSource)
    assert built[1].calendar is calendar


def test_example_config_prices_section_is_valid() -> None:
    if not EXAMPLE.exists():
        pytest.skip(f"{EXAMPLE} not present")
    document = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    if "prices" not in document:
        pytest.skip("the example config has no [prices] section yet")
    config = PricesConfig.model_validate(document["prices"])
    assert config.sources
