"""hemsd: the application (config, daemon loop, planning, execution, CLI)."""

__version__ = "0.1.0"
