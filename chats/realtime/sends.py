"""The sockets' `message.send` frames, stored in batches: chats side by side, each chat's in order.

A send is validated on the loop (the REST serializer), then queued by its chat. Up to
PARALLEL_BATCHES batches are stored at once, each in a worker thread and one transaction of its
own: a batch takes the queued sends of chats that no batch in flight holds (up to MAX_BATCH
sends), so the sends of one chat are stored in the order they came and never by two batches at
once, while sends of other users to other chats never wait for each other's batch. Inside a batch
the chats' row locks are taken in ascending chat id (a stable sort keeps each chat's sends in
order): two batches -- of this process or another -- never wait on each other in a cycle.

One commit for many sends is what lets the senders keep up (each commit waits for the log to
reach the disk). Each send has its own savepoint (services.message_create opens it): one that the
services refuse, or that fails in any other way, rolls back alone and gets its own `error` frame;
the others stand. Should the batch's transaction itself fail on the database (a deadlock, a lost
connection: the rows of the earlier sends are gone with it), every send of the batch is stored
again in a transaction of its own, and the one that still fails gets `unavailable`.

After the commit the batch's events are published (rendered once, with the messages that the
acks reuse), and only then is each sender answered.

Fairness between users: each chat's queue is kept per sender, and a batch is filled round-robin,
one send of each (chat, sender) queue per round, so that one user's thousand queued sends take a
batch's room no sooner than another user's one (each user's sends stay in their order, and a
chat's versions follow the order they were stored in). A chat that gave sends to a batch goes to
the back of the line. And a user's sends are stored by one batch at a time, at most
USER_SENDS_IN_FLIGHT of them; the rest of theirs wait in the queue. Without that a user's burst over
many chats (a flood's first 100 sends, one per chat) filled batches of 50 in every slot, and
another user's send waited for such a batch -- in it, or behind it for its chat -- 150-550 ms on
MariaDB (bench/README.md, "One user's flood"); with it, one user holds one slot, and another
user's send finds a free one and a batch with at most that many of the flooder's. (At the per-user
rate's 50 a second, 10 a batch keep up as long as a batch of 10 commits within 200 ms.) And a
user's sends are rate-limited on each process,
across all of their sockets (`UserRates`: WEBSOCKET_SENDS_PER_SECOND_PER_USER, burst twice that):
one over it gets `rate_limited` and a strike against its socket, as a socket's own flood control
answers (and closes it 4429 when the strikes go on).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError

from accounts.models import User
from chats import services
from chats.realtime import outbox, render
from chats.realtime.envelopes import Envelope, encode, publish
from chats.realtime.tasks import settle
from messenger.exceptions import error_frame

logger = logging.getLogger(__name__)

MAX_BATCH = 50
PARALLEL_BATCHES = 4
USER_SENDS_IN_FLIGHT = 10

Send = tuple[int, User, dict[str, Any]]  # chat id, sender, MessageSendSerializer's validated data
Outcome = services.MessageResult | Exception


def store_sends(sends: list[Send]) -> tuple[list[Envelope], list[str]]:
    """Store a batch of sends (in a worker thread): the envelopes to publish, and each send's reply
    (`message.ack` or `error`, encoded) in the order given."""
    by_chat = sorted(range(len(sends)), key=lambda index: sends[index][0])  # the lock order
    try:
        envelopes, stored = _store_together([sends[index] for index in by_chat])
    except DatabaseError:
        logger.warning("%d sends failed together; storing them one by one", len(sends))
        envelopes, stored = [], [_store_alone(*sends[index]) for index in by_chat]
    outcomes: list[Outcome] = [Exception()] * len(sends)
    for index, outcome in zip(by_chat, stored, strict=True):
        outcomes[index] = outcome
    return envelopes, _replies(sends, outcomes)


def _store_together(sends: list[Send]) -> tuple[list[Envelope], list[Outcome]]:
    outcomes: list[Outcome] = []
    with outbox.atomic(publish=False) as box:
        for chat_id, user, data in sends:
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
    for (_, _, data), outcome in zip(sends, outcomes, strict=True):
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
        name = json.dumps(client_id, ensure_ascii=False)
        replies.append(f'{{"type":"message.ack","client_id":{name},"message":{text}}}')
    return replies


_store_in_thread = database_sync_to_async(store_sends, thread_sensitive=False)

Queued = tuple[User, dict[str, Any], "asyncio.Future[str]"]


class UserRates:
    """A token bucket of `message.send` frames per user, over all their sockets on this process."""

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}  # user id -> (tokens, when counted)

    def allow(self, user_id: int) -> bool:
        rate = float(settings.WEBSOCKET_SENDS_PER_SECOND_PER_USER)
        if rate <= 0:  # no limit
            return True
        burst = 2 * rate
        now = time.monotonic()
        tokens, stamp = self._buckets.get(user_id, (burst, now))
        tokens = min(burst, tokens + (now - stamp) * rate)
        allowed = tokens >= 1
        self._buckets[user_id] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > 100_000:  # full buckets are forgotten: a new one starts full
            self._buckets = {
                user: (left, when) for user, (left, when) in self._buckets.items() if left + (now - when) * rate < burst
            }
        return allowed


class SendBatches:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Chats with sends waiting, oldest first; each chat's per sender, in the order they came.
        self._queued: OrderedDict[int, OrderedDict[int, deque[Queued]]] = OrderedDict()
        # Chats whose sends a batch in flight is storing.
        self._held: set[int] = set()
        # Users whose sends a batch in flight is storing (one batch at a time per user).
        self._busy: set[int] = set()
        self._batches: set[asyncio.Task[None]] = set()

    def submit(self, user: User, chat_id: int, data: dict[str, Any]) -> asyncio.Future[str]:
        """Queue a validated send; the future is its reply, once stored and announced."""
        future: asyncio.Future[str] = self.loop.create_future()
        senders = self._queued.get(chat_id)
        if senders is None:
            senders = self._queued[chat_id] = OrderedDict()
        queue = senders.get(user.pk)
        if queue is None:
            queue = senders[user.pk] = deque()
        queue.append((user, data, future))
        self._start_batches()
        return future

    def _start_batches(self) -> None:
        while len(self._batches) < PARALLEL_BATCHES:
            batch = self._take()
            if not batch:
                return
            task = self.loop.create_task(self._store(batch))
            self._batches.add(task)

    def _take(self) -> list[tuple[int, Queued]]:
        """Queued sends of chats no batch holds, up to MAX_BATCH: round-robin over each chat's
        senders, the oldest chat first; none of a user that a batch in flight holds, and at most
        USER_SENDS_IN_FLIGHT of any one user (see the module's docstring)."""
        batch: list[tuple[int, Queued]] = []
        taken: dict[int, int] = {}

        def has_room(user_id: int) -> bool:
            return user_id not in self._busy and taken.get(user_id, 0) < USER_SENDS_IN_FLIGHT

        chats = [chat_id for chat_id in self._queued if chat_id not in self._held]
        while chats and len(batch) < MAX_BATCH:
            for chat_id in chats:
                senders = self._queued[chat_id]
                for user_id in list(senders):
                    if not has_room(user_id):
                        continue
                    queue = senders[user_id]
                    batch.append((chat_id, queue.popleft()))
                    taken[user_id] = taken.get(user_id, 0) + 1
                    if not queue:
                        del senders[user_id]
                    if len(batch) >= MAX_BATCH:
                        break
                if len(batch) >= MAX_BATCH:
                    break
            chats = [chat_id for chat_id in chats if any(has_room(user_id) for user_id in self._queued[chat_id])]
        self._busy.update(taken)
        for chat_id in dict.fromkeys(chat_id for chat_id, _ in batch):
            self._held.add(chat_id)
            if self._queued[chat_id]:
                self._queued.move_to_end(chat_id)  # the chats behind it go first next time
            else:
                del self._queued[chat_id]
        return batch

    async def _store(self, batch: list[tuple[int, Queued]]) -> None:
        try:
            sends = [(chat_id, user, data) for chat_id, (user, data, _) in batch]
            try:
                envelopes, replies = await _store_in_thread(sends)
            except Exception as error:
                logger.exception("a batch of %d sends failed", len(batch))
                envelopes, replies = [], [encode(error_frame(error, data["client_id"])) for _, _, data in sends]
            await publish(envelopes)
            for (_, (_, _, future)), reply in zip(batch, replies, strict=True):
                if not future.done():
                    future.set_result(reply)
        finally:
            self._held.difference_update(chat_id for chat_id, _ in batch)
            self._busy.difference_update(user.pk for _, (user, _, _) in batch)
            self._batches.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._start_batches()

    async def close(self) -> None:
        while self._batches:
            await settle(self._batches)
