"""The commands that change the daemon's stored state without it (`hemsd goal`, `hemsd load`,
`hemsd override`): each runs one action on the state directory's SQLite store."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from controller.config.models import HemsdConfig
from storage import StorageError
from storage.sqlite import SqliteStore, database_path


def run_on_store(
    tool: str,
    config: HemsdConfig,
    action: Callable[[SqliteStore], Awaitable[int]],
    rejected: tuple[type[Exception], ...] = (),
) -> int:
    """``action``'s exit code on the store, opened and closed around it; 2 when it raises one
    of ``rejected`` (the command does not fit what is stored), 1 when the store fails."""

    async def main() -> int:
        store = SqliteStore(database_path(config.storage.state_dir))
        await store.open()
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except rejected as exc:
        print(f"hemsd {tool}: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"hemsd {tool}: {exc}", file=sys.stderr)
        return 1
