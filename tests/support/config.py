"""Pieces of site configuration the tests share."""

FLAT_TARIFF = """[[prices.sources]]
type = "tou"
[prices.sources.prices]
all = 0.6
"""
"""One flat import price of 0.6/kWh all day: prices that never fail and never change."""
