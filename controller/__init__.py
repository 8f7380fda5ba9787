"""hemsd: the application, one room per capability (see README, Layout)."""

__version__ = "0.1.0"
