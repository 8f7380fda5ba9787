"""Small applications for running the real daemon around them."""

from __future__ import annotations

from controller.clock import Clock
from controller.config.models import HemsdConfig
from controller.daemon.schedule import CalendarJob, Job


class StillApp:
    """The application a daemon runs while its file is rewritten: records what it is given."""

    def __init__(self, config: HemsdConfig, clock: Clock) -> None:
        self.config = config
        self.reconfigured: list[HemsdConfig] = []
        self.rejections = 0

    def jobs(self) -> tuple[Job | CalendarJob, ...]:
        return ()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def reconfigure(self, config: HemsdConfig) -> None:
        self.reconfigured.append(config)
        self.config = config

    def config_rejected(self, problems: list[str]) -> None:
        self.rejections += 1

    def task_restarted(self, task: str, error: str) -> None:
        return None

    def status_line(self) -> str:
        return "still"
