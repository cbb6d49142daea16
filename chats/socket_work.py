"""The blocking side of the socket endpoints: what consumers run in worker threads.

Connect lookups and the sockets' sends (both batched across sockets by the hub), read marks;
and the `error` frame for what the services refuse.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.http import Http404

from accounts.models import User
from accounts.ws_auth import resolve_users
from chats import events, realtime, services
from chats.models import ChatUser
from chats.realtime import Event

logger = logging.getLogger(__name__)


class FrameError(Exception):
    """A frame the contract refuses: answered with an `error` frame, the socket stays open."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


# Blocking work, run in worker threads -------------------------------------------------------


def connect_lookups(requests: list[tuple[Any, int | None]]) -> list[tuple[User | None, list[int] | None]]:
    """For each connecting socket (scope user, chat id or None): who it is (None: 4401) and
    their chat ids (None when asking for a chat they are not in: 4403).

    Two queries for a whole batch of connects: the tokens' users, then their memberships.
    """
    users = resolve_users([scope_user for scope_user, _ in requests])
    chat_ids: dict[int, list[int]] = {user.pk: [] for user in users if user is not None}
    if chat_ids:
        for user_id, chat_id in ChatUser.objects.filter(user_id__in=list(chat_ids)).values_list("user_id", "chat_id"):
            chat_ids[user_id].append(chat_id)
    answers: list[tuple[User | None, list[int] | None]] = []
    for user, (_, wanted_chat) in zip(users, requests, strict=True):
        if user is None:
            answers.append((None, None))
        elif wanted_chat is not None and wanted_chat not in chat_ids[user.pk]:
            answers.append((user, None))
        else:
            answers.append((user, chat_ids[user.pk]))
    return answers


Envelopes = list[tuple[str, dict[str, Any]]]


SocketSends = tuple[User, list[dict[str, Any]]]


def store_sends(batch: list[SocketSends]) -> tuple[Envelopes, list[list[Event] | None]]:
    """Store the queued messages of the process's sockets, in frame order, in one commit.

    `batch` holds, for each socket with sends waiting, its user and its `message.send` requests
    (chats.hub coalesces the sockets' calls while one is in the worker thread). The messages share
    one transaction, each under its own savepoint: a refused one (not a member, bad content)
    rolls back alone and gets its `error`, the others stand. One commit instead of one per
    message is what lets the senders keep up (each commit waits for the log to reach the disk).
    Returns the events of what was stored, to publish before any reply, and each socket's
    replies (`message.ack` or `error`), in the order of its frames.

    Should the shared transaction fail (a deadlock with another process's batch locking the same
    chats in another order), every message is stored in a transaction of its own instead (each
    run again should it lose a deadlock in turn: messenger.deadlocks); a socket whose message
    still fails on the database gets None: it is closed, and its client resends what was not
    acknowledged (client_id makes that safe).
    """
    if sum(len(requests) for _, requests in batch) > 1:
        try:
            with realtime.deferred_sends() as envelopes, transaction.atomic():
                replies: list[list[Event] | None] = [_replies(user, requests) for user, requests in batch]
        except DatabaseError:
            logger.warning("%s sockets' sends failed together; storing them one by one", len(batch))
        else:
            return envelopes, replies
    every_envelope: Envelopes = []
    replies = []
    for user, requests in batch:
        socket_replies: list[Event] | None = None
        with realtime.deferred_sends() as envelopes:
            try:
                socket_replies = _replies(user, requests)  # outside a transaction: one each
            except DatabaseError:
                logger.exception("socket message.send failed")
        every_envelope += envelopes
        replies.append(socket_replies)
    return every_envelope, replies


def _replies(user: User, requests: list[dict[str, Any]]) -> list[Event]:
    with events.sender_connected(user.pk):
        return [_send_or_refuse(user, request) for request in requests]


def _send_or_refuse(user: User, request: dict[str, Any]) -> Event:
    """Store (or find, for a repeated client_id) one message: its `message.ack`, or the `error`."""
    client_id = request["client_id"]
    try:
        message, _ = services.message_create(sender=user, **request)
    except (ValidationError, PermissionDenied, Http404, ObjectDoesNotExist) as refused:
        return error_event(refused, client_id)
    return {"type": "message.ack", "client_id": client_id, "message": events.message_payload(message)}


def error_event(error: Exception, client_id: Any = None) -> Event:
    """The `error` frame for what a service raised (or a FrameError)."""
    if isinstance(error, FrameError):
        code, detail = error.code, error.detail
    elif isinstance(error, ValidationError):
        code, detail = "invalid", _validation_detail(error)
    elif isinstance(error, PermissionDenied):
        code, detail = "forbidden", str(error) or "Not allowed."
    else:
        code, detail = "not_found", "No chat or message matches the given query."
    event: Event = {"type": "error", "code": code, "detail": detail}
    if isinstance(client_id, str):
        event["client_id"] = client_id
    return event


def read_mark(*, user: User, chat_id: int, message_id: int) -> Envelopes:
    with realtime.deferred_sends() as envelopes:
        services.chat_mark_read(chat_id=chat_id, user=user, message_id=message_id)
    return envelopes


def _in_thread(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    return database_sync_to_async(function, thread_sensitive=False)


read_mark_async = _in_thread(read_mark)


def _validation_detail(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return " ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(error.messages)
