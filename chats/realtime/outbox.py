"""The transaction's outbox: events recorded while writing, rendered and published once it commits.

A write service opens its transaction with `outbox.atomic()` (instead of `transaction.atomic()`)
and records what happened with `outbox.record(event)`. Nothing leaves before the commit:

    service (locks, writes, record)  ->  commit  ->  render every event once (render.py)
    ->  publish the envelopes (envelopes.py)  ->  each process's router writes its local sockets

An `atomic()` block inside another is a savepoint: its events join the enclosing block's outbox
when it succeeds and are dropped with it when it rolls back, exactly as its rows are. The
outermost block renders and publishes after the commit (Django's on_commit), all its events
together: one query for the messages they name, one presence lookup for everyone they show.
A caller that opens the outermost block with `publish=False` takes the envelopes itself
(`Outbox.envelopes`) and publishes them from the event loop (chats.realtime.sends).

The open blocks are kept per database connection, like Django's own on_commit callbacks: the
outbox belongs to the transaction, and a transaction to its connection.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction

from chats.realtime.envelopes import Envelope, publish_from_thread
from chats.realtime.events import Event, MessageChange

logger = logging.getLogger(__name__)


class Entry:
    """One recorded event; once committed and rendered, a message event's Message as clients see it.

    `row` is the model instance the service wrote, when it holds one with what the rendering reads
    (a new message with its sender and attachment): the renderer then need not read it again.
    """

    __slots__ = ("chat", "chat_shared", "event", "message", "message_text", "row")

    def __init__(self, event: Event, row: Any = None) -> None:
        self.event = event
        self.row = row
        # Set by render.render_entries after the commit, for an event that renders a whole chat:
        # the chat with its members, and the part of it every member sees alike.
        self.chat: Any = None
        self.chat_shared: dict[str, Any] | None = None
        # Set by render.render_entries after the commit (message events only).
        self.message: dict[str, Any] | None = None
        self.message_text: str | None = None


class Outbox:
    def __init__(self, *, publish: bool) -> None:
        self.entries: list[Entry] = []
        self.envelopes: list[Envelope] = []
        self.publish = publish

    def record(self, event: Event, row: Any = None) -> Entry:
        entry = Entry(event, row)
        self.entries.append(entry)
        return entry

    def commit(self) -> None:
        """After the commit: render every event once, then publish (never raises: the rows stand)."""
        from chats import search
        from chats.realtime import render

        if not self.entries:
            return
        # The search index of the chats whose messages changed is written now, by the background
        # indexer, not in the transaction that changed them (chats/search.py).
        changed = {entry.event.chat_id for entry in self.entries if isinstance(entry.event, MessageChange)}
        if changed:
            search.notify(changed)
        try:
            self.envelopes = render.render_entries(self.entries)
        except Exception:
            # Clients catch up with ?since=<version>; the answer to the caller is rendered again.
            logger.exception("could not render %d events", len(self.entries))
            return
        if self.publish:
            publish_from_thread(self.envelopes)


_open: weakref.WeakKeyDictionary[Any, list[Outbox]] = weakref.WeakKeyDictionary()


@contextmanager
def atomic(*, publish: bool = True) -> Iterator[Outbox]:
    """transaction.atomic() with an outbox (also usable as a decorator)."""
    connection = transaction.get_connection()
    stack = _open.setdefault(connection, [])
    box = Outbox(publish=publish)
    stack.append(box)
    try:
        with transaction.atomic():
            yield box
    finally:
        stack.pop()
    if not box.entries:
        return
    if stack:
        stack[-1].entries.extend(box.entries)  # the enclosing block commits or rolls back with them
    else:
        # Runs now when this block was the transaction; after the commit of an enclosing plain
        # atomic() block otherwise (and not at all if that one rolls back).
        transaction.on_commit(box.commit)


def record(event: Event, row: Any = None) -> Entry:
    """Record an event in the innermost open outbox of this connection's transaction."""
    stack = _open.get(transaction.get_connection())
    if not stack:
        raise RuntimeError(f"{type(event).__name__} recorded outside outbox.atomic()")
    return stack[-1].record(event, row)
