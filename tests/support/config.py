"""Pieces of site configuration the tests share."""

FLAT_TARIFF = """[[prices.sources]]
type = "tou"
[prices.sources.prices]
all = 0.6
"""
"""One flat import price of 0.6/kWh all day: prices that never fail and never change."""


def goodwe_process_config(site_id: str) -> str:
    """A daemon process's configuration against a GoodWe (an emulator) on TCP at ``{port}``, with
    its state in ``{state}`` (both left to ``str.format``), polled every second, switching at once."""
    return (
        f"""
[site]
id = "{site_id}"
[inverter]
type = "goodwe"
host = "127.0.0.1"
port = {{port}}
protocol = "tcp"
timeout_s = 0.5
retries = 1
[daemon]
poll_interval_s = 1
[executor]
min_dwell_s = 0
[storage]
state_dir = "{{state}}"
commit_interval_s = 0.5
"""
        + FLAT_TARIFF
    )
