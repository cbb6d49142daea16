"""The sockets' `message.send` frames, stored by chat: one lane per chat, chats side by side.

A lane takes the validated sends queued for its chat -- from any sockets of the process -- and
stores up to MAX_BATCH of them in one transaction in a worker thread: one commit for many (each
commit waits for the log to reach the disk), and the chat's row lock taken once per batch, so
batches of different chats never wait on each other. Lanes of PARALLEL_CHATS chats run at once
(each a worker thread and its database connection); the sends of one chat stay in order.

Each send has its own savepoint (services.message_create opens it): one that the services
refuse or that fails in any other way rolls back alone and gets its own `error` frame; the
others stand. Should the batch's transaction itself fail on the database (a deadlock, a lost
connection: the rows of the earlier sends are gone with it), every send of the batch is stored
again in a transaction of its own, and the one that still fails gets `unavailable`.

After the commit the batch's events are published (their envelopes were rendered once, with the
messages that the acks reuse), and only then is each sender answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.db import DatabaseError

from accounts.models import User
from chats import services
from chats.realtime import outbox, render
from chats.realtime.envelopes import Envelope, encode, publish
from messenger.exceptions import error_frame

logger = logging.getLogger(__name__)

MAX_BATCH = 50
PARALLEL_CHATS = 4

Send = tuple[User, dict[str, Any]]  # the sender, MessageSendSerializer's validated data
Outcome = services.MessageResult | Exception


def store_sends(chat_id: int, sends: list[Send]) -> tuple[list[Envelope], list[str]]:
    """Store one chat's queued sends (in a worker thread): the envelopes to publish, and each
    send's reply (`message.ack` or `error`, encoded) in the order given."""
    try:
        envelopes, outcomes = _store_together(chat_id, sends)
    except DatabaseError:
        logger.warning("%d sends to chat %s failed together; storing them one by one", len(sends), chat_id)
        envelopes, outcomes = [], [_store_alone(chat_id, user, data) for user, data in sends]
    return envelopes, _replies(sends, outcomes)


def _store_together(chat_id: int, sends: list[Send]) -> tuple[list[Envelope], list[Outcome]]:
    outcomes: list[Outcome] = []
    with outbox.atomic(publish=False) as box:
        for user, data in sends:
            try:
                outcomes.append(services.message_create(chat_id=chat_id, sender=user, **data))
            except DatabaseError:
                raise  # the transaction may be gone with the earlier sends' rows: start over
            except Exception as refused:  # its savepoint rolled back; the others stand
                outcomes.append(refused)
    return box.envelopes, outcomes


def _store_alone(chat_id: int, user: User, data: dict[str, Any]) -> Outcome:
    try:
        return services.message_create(chat_id=chat_id, sender=user, **data)  # publishes its own events
    except Exception as error:
        if isinstance(error, DatabaseError):
            logger.exception("socket message.send to chat %s failed", chat_id)
        return error


def _replies(sends: list[Send], outcomes: list[Outcome]) -> list[str]:
    # A repeated client_id's first message has no event to reuse: those are rendered together.
    unrendered = [
        o.message.pk
        for o in outcomes
        if isinstance(o, services.MessageResult) and (o.entry is None or o.entry.message_text is None)
    ]
    rendered = render.message_payloads(unrendered) if unrendered else {}
    replies = []
    for (_, data), outcome in zip(sends, outcomes, strict=True):
        client_id = data["client_id"]
        if isinstance(outcome, Exception):
            replies.append(encode(error_frame(outcome, client_id)))
            continue
        entry = outcome.entry
        if entry is not None and entry.message_text is not None:
            text = entry.message_text
        elif outcome.message.pk in rendered:
            text = rendered[outcome.message.pk][1]
        else:
            replies.append(encode({"type": "message.ack", "client_id": client_id, "message": None}))
            continue
        replies.append(
            f'{{"type":"message.ack","client_id":{json.dumps(client_id, ensure_ascii=False)},"message":{text}}}'
        )
    return replies


_store_in_thread = database_sync_to_async(store_sends, thread_sensitive=False)


class SendLanes:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queues: dict[int, list[tuple[User, dict[str, Any], asyncio.Future[str]]]] = {}
        self._slots = asyncio.Semaphore(PARALLEL_CHATS)
        self._lanes: dict[int, asyncio.Task[None]] = {}

    def submit(self, user: User, chat_id: int, data: dict[str, Any]) -> asyncio.Future[str]:
        """Queue a validated send; the future is its reply, once stored and announced."""
        future: asyncio.Future[str] = self.loop.create_future()
        self._queues.setdefault(chat_id, []).append((user, data, future))
        if chat_id not in self._lanes:
            self._lanes[chat_id] = self.loop.create_task(self._lane(chat_id))
        return future

    async def _lane(self, chat_id: int) -> None:
        try:
            while queue := self._queues.get(chat_id):
                async with self._slots:
                    batch = queue[:MAX_BATCH]
                    del queue[:MAX_BATCH]
                    try:
                        envelopes, replies = await _store_in_thread(chat_id, [(u, d) for u, d, _ in batch])
                    except Exception as error:
                        logger.exception("sends to chat %s failed", chat_id)
                        envelopes, replies = [], [encode(error_frame(error, d["client_id"])) for _, d, _ in batch]
                await publish(envelopes)
                for (_, _, future), reply in zip(batch, replies, strict=True):
                    if not future.done():
                        future.set_result(reply)
        finally:
            del self._lanes[chat_id]
            if not self._queues.get(chat_id):
                self._queues.pop(chat_id, None)

    async def close(self) -> None:
        for task in list(self._lanes.values()):
            with _suppressed():
                await task


def _suppressed() -> Any:
    import contextlib

    return contextlib.suppress(BaseException)
