"""Blocking work coalesced into few worker-thread hops (see chats.hub)."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async


class BatchedCall:
    """Coalesce concurrent calls of a blocking batch function into one worker-thread hop.

    `function` takes a list of requests and returns a list of answers in the same order. While
    one hop is in flight the next requests gather, so a storm costs a few hops and queries
    instead of one per request, and a lone request waits for nothing but its own hop.
    """

    MAX_BATCH = 200

    def __init__(self, loop: asyncio.AbstractEventLoop, function: Callable[[list[Any]], list[Any]]) -> None:
        self.loop = loop
        self.function = database_sync_to_async(function, thread_sensitive=False)
        self.pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self.worker: asyncio.Task[None] | None = None

    async def __call__(self, request: Any) -> Any:
        future: asyncio.Future[Any] = self.loop.create_future()
        self.pending.append((request, future))
        if self.worker is None or self.worker.done():
            self.worker = self.loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[: self.MAX_BATCH], self.pending[self.MAX_BATCH :]
            try:
                result = await self.function([request for request, _ in batch])
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            await self._answer(batch, result)

    async def _answer(self, batch: list[tuple[Any, asyncio.Future[Any]]], answers: list[Any]) -> None:
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)


class PublishingBatchedCall(BatchedCall):
    """A BatchedCall whose function returns (envelopes, answers): the envelopes (the events of
    what the batch committed) are published, in order, before any caller gets its answer."""

    # Sockets per batch (each with up to consumers.FRAME_BATCH frames): a batch's transaction holds
    # its chats' row locks until it commits, and REST sends to those chats wait for it.
    MAX_BATCH = 50

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        function: Callable[[list[Any]], tuple[list[Any], list[Any]]],
        publish: Callable[[list[Any]], Awaitable[None]],
    ) -> None:
        super().__init__(loop, function)  # type: ignore[arg-type]
        self.publish = publish

    async def _answer(self, batch: list[tuple[Any, asyncio.Future[Any]]], result: Any) -> None:
        envelopes, answers = result
        await self.publish(envelopes)
        await super()._answer(batch, answers)
