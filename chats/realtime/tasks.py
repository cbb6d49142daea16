"""Waiting for tasks to end, without taking the waiter's own cancel from it.

`with contextlib.suppress(BaseException): await task` -- how the hub's stop, the send batches'
close and the subscriptions' close waited -- swallowed the CancelledError of the one waiting as
well as the task's: a stop cancelled from outside (the tests' teardown bound) went on waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def settle(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Wait until every task has ended, however it ended (its exception retrieved: its owner logs
    what matters). A cancel of the caller propagates, and leaves the tasks running (asyncio.wait,
    unlike gather, never cancels them)."""
    tasks = list(tasks)
    pending = [task for task in tasks if not task.done()]
    if pending:
        await asyncio.wait(pending)
    for task in tasks:
        if not task.cancelled():
            task.exception()
