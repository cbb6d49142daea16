"""Authorising connecting sockets: many connects, one worker-thread hop and two queries.

Sockets that connect together (a restart, a network blip that reconnects everyone) are looked
up together: `BatchedCall` coalesces the calls made while one hop is in flight.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async

from accounts.models import User
from accounts.ws_auth import resolve_users
from chats.models import ChatUser


def connect_lookups(requests: list[tuple[Any, int | None]]) -> list[tuple[User | None, dict[int, int] | None]]:
    """For each connecting socket (scope user, chat id or None): who it is (None: 4401) and
    their chats with each one's version now (None when asking for a chat they are not in: 4403).

    Two queries for a whole batch of connects: the tokens' users, then their memberships.
    """
    users = resolve_users([scope_user for scope_user, _ in requests])
    chats: dict[int, dict[int, int]] = {user.pk: {} for user in users if user is not None}
    if chats:
        rows = ChatUser.objects.filter(user_id__in=list(chats)).values_list("user_id", "chat_id", "chat__version")
        for user_id, chat_id, version in rows:
            chats[user_id][chat_id] = version
    answers: list[tuple[User | None, dict[int, int] | None]] = []
    for user, (_, wanted_chat) in zip(users, requests, strict=True):
        if user is None:
            answers.append((None, None))
        elif wanted_chat is not None and wanted_chat not in chats[user.pk]:
            answers.append((user, None))
        else:
            answers.append((user, chats[user.pk]))
    return answers


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
