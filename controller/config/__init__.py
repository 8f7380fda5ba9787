"""The configuration: pydantic models of the TOML file (``models``) and how it is read (``loading``)."""

from controller.config.loading import apply_credentials, load_config, load_config_text
from controller.config.models import EXIT_CONFIG, ConfigError, HemsdConfig

__all__ = (
    "EXIT_CONFIG",
    "ConfigError",
    "HemsdConfig",
    "apply_credentials",
    "load_config",
    "load_config_text",
)
