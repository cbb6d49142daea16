"""Whom a user shares a chat with, asked of chats without importing it (accounts <- media <- chats).

Presence (`is_online`, `last_seen`) is shown only to users who share a chat with its user: anyone
may find anyone by name, but not watch when a stranger is online. ChatsConfig.ready() tells this
module how to answer through register(); until then the question raises rather than guess.
"""

from collections.abc import Iterable
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured


class SharedWith(Protocol):
    def __call__(self, viewer_id: int, user_ids: Iterable[int]) -> set[int]: ...


_shared_with: SharedWith | None = None


def register(*, shared_with: SharedWith) -> None:
    """Called once, from ChatsConfig.ready(); a second call replaces the first."""
    global _shared_with
    _shared_with = shared_with


def shared_with(viewer_id: int, user_ids: Iterable[int]) -> set[int]:
    """Which of `user_ids` share at least one chat with the viewer (the viewer counts as one); one query."""
    if _shared_with is None:
        raise ImproperlyConfigured("accounts.contacts.register() was never called: ChatsConfig.ready() calls it.")
    wanted = set(user_ids)
    return ({viewer_id} & wanted) | _shared_with(viewer_id, wanted - {viewer_id})
