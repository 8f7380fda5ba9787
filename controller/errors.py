"""The root of every error the controller package raises."""


class HemsdError(Exception):
    """Root of every error raised by the controller package."""
