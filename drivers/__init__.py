"""Everything that talks to the outside world: inverters, price and weather APIs, MQTT.

Nothing here imports ``controller`` or ``storage``; each driver kind defines the values it
produces and accepts in one leaf module.
"""


class DriverError(Exception):
    """Root of every error raised by a driver."""
