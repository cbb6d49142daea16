"""The contract's server-to-client events: one small function per event type.

Each `*_on_commit` function is called by a service inside its transaction; the event is
built and handed to realtime.broadcast_on_commit, which sends it once the rows are committed.
Events that carry a Chat are rendered per member (my_role, unread_count differ) and go to
each member's user group; the others go once to the chat's group.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal, TypedDict

from django.db import transaction

from accounts import presence as presence_store
from accounts.models import User
from chats import realtime
from chats.models import Message
from chats.realtime import Event, chat_group, user_group

logger = logging.getLogger(__name__)


_connected = threading.local()


@contextmanager
def sender_connected(user_id: int) -> Iterator[None]:
    """Within this block (in this thread), `user_id` is online: they are sending over an open socket,
    so rendering their messages needs no presence lookup (a Redis round trip per message)."""
    previous = getattr(_connected, "user_ids", ())
    _connected.user_ids = {*previous, user_id}
    try:
        yield
    finally:
        _connected.user_ids = previous


def message_payload(message: Message) -> dict[str, Any]:
    """The Message as the contract shows it; rendered once per version of the instance.

    The socket's `message.ack` reuses the payload that `message.created` was built with
    (same instance, same version) instead of rendering the message a second time.
    """
    from chats.serializers import message_data

    cached: tuple[int, dict[str, Any]] | None = getattr(message, "_event_payload", None)
    if cached is not None and cached[0] == message.version:
        return cached[1]
    if message.sender_id in getattr(_connected, "user_ids", ()):
        online_ids = {message.sender_id}
    else:
        online_ids = presence_store.online_ids([message.sender_id])
    payload = message_data(message, online_ids=online_ids)
    message._event_payload = (message.version, payload)  # type: ignore[attr-defined]
    return payload


def message_created(message: Message) -> Event:
    return {
        "type": "message.created",
        "chat_id": message.chat_id,
        "version": message.version,
        "message": message_payload(message),
    }


def message_created_on_commit(*, message: Message) -> None:
    realtime.broadcast_on_commit(chat_group(message.chat_id), message_created(message))


def message_updated_on_commit(*, message: Message) -> None:
    event = {
        "type": "message.updated",
        "chat_id": message.chat_id,
        "version": message.version,
        "message": message_payload(message),
    }
    realtime.broadcast_on_commit(chat_group(message.chat_id), event)


def message_deleted_on_commit(*, chat_id: int, message_id: int, version: int) -> None:
    event = {"type": "message.deleted", "chat_id": chat_id, "message_id": message_id, "version": version}
    realtime.broadcast_on_commit(chat_group(chat_id), event)


def chat_read_on_commit(*, chat_id: int, user_id: int, last_read_id: int) -> None:
    event = {"type": "chat.read", "chat_id": chat_id, "user_id": user_id, "last_read_id": last_read_id}
    realtime.broadcast_on_commit(chat_group(chat_id), event)


# Typing and presence are not stored: the consumer and the hub send them from the event
# loop (realtime.send_async), never through a transaction.


class TypingEvent(TypedDict):
    type: Literal["typing"]
    chat_id: int
    user: dict[str, Any]  # PublicUser


class PresenceEvent(TypedDict):
    type: Literal["presence"]
    user_id: int
    is_online: bool
    last_seen: datetime | None


def public_user_payload(user: User, *, is_online: bool) -> dict[str, Any]:
    """PublicUser for events about a user whose presence the caller already knows."""
    from accounts.serializers import public_user_data

    return public_user_data(user, is_online=is_online)


def typing(*, chat_id: int, user_payload: dict[str, Any]) -> TypingEvent:
    return {"type": "typing", "chat_id": chat_id, "user": user_payload}


def presence(*, user_id: int, is_online: bool, last_seen: datetime | None) -> PresenceEvent:
    return {"type": "presence", "user_id": user_id, "is_online": is_online, "last_seen": last_seen}


def _chat_per_member(event_type: str, chat_id: int, only_user_id: int | None = None) -> list[tuple[str, Event]]:
    """Render the chat once per member (their own my_role and unread_count) for their user group."""
    from chats import selectors
    from chats.serializers import chat_data

    chat = selectors.chat_with_members(chat_id)
    online_ids = selectors.presence_context(selectors.users_in_chats([chat]))["online_ids"]
    pairs: list[tuple[str, Event]] = []
    for membership in selectors.members_of(chat):
        if only_user_id is not None and membership.user_id != only_user_id:
            continue
        data = chat_data(chat, viewer=membership.user, online_ids=online_ids)
        pairs.append((user_group(membership.user_id), {"type": event_type, "chat": data}))
    return pairs


def _per_member_on_commit(event_type: str, chat_id: int, only_user_id: int | None = None) -> None:
    def send() -> None:
        # Rendered after commit: the chat is read as every member will now see it.
        try:
            pairs = _chat_per_member(event_type, chat_id, only_user_id)
        except Exception:
            logger.exception("could not render %s for chat %s", event_type, chat_id)
            return
        for group, event in pairs:
            realtime.send_now(group, event)

    transaction.on_commit(send)


def chat_created_on_commit(*, chat_id: int) -> None:
    _per_member_on_commit("chat.created", chat_id)


def chat_updated_on_commit(*, chat_id: int) -> None:
    _per_member_on_commit("chat.updated", chat_id)


def member_added_on_commit(*, chat_id: int, user_id: int) -> None:
    # The newcomer learns of the chat through their user group (which also subscribes their
    # open sockets to it); everyone in the chat hears member.added.
    _per_member_on_commit("chat.created", chat_id, only_user_id=user_id)
    event = {"type": "member.added", "chat_id": chat_id, "user_id": user_id}
    realtime.broadcast_on_commit(chat_group(chat_id), event)


def member_removed_on_commit(*, chat_id: int, user_id: int) -> None:
    event = {"type": "member.removed", "chat_id": chat_id, "user_id": user_id}
    realtime.broadcast_on_commit(chat_group(chat_id), event)
    realtime.broadcast_on_commit(user_group(user_id), event)
