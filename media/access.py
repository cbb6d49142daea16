"""What media must ask of the app whose rows carry attachments, without importing it.

The apps depend one way (accounts <- media <- chats). Chats' messages point at attachments, so
only chats can say who may fetch one and which are still in use; ChatsConfig.ready() tells us
through register(). Until it has, both questions raise rather than guess: answering "nobody
carries it" would let cleanup_blobs delete attachments that messages show.
"""

from dataclasses import dataclass
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db.models import OuterRef, QuerySet

from accounts.models import User
from media.models import Attachment


class ViewerCheck(Protocol):
    def __call__(self, *, attachment_id: int, user: User) -> Attachment | None: ...


class Carriers(Protocol):
    def __call__(self, attachment: int | OuterRef) -> QuerySet[Any]: ...


@dataclass(frozen=True, slots=True)
class _Rules:
    attachment_for_viewer: ViewerCheck
    carriers: Carriers


_rules: _Rules | None = None


def register(*, attachment_for_viewer: ViewerCheck, carriers: Carriers) -> None:
    """Called once, from ChatsConfig.ready(); a second call replaces the first."""
    global _rules
    _rules = _Rules(attachment_for_viewer=attachment_for_viewer, carriers=carriers)


def _registered() -> _Rules:
    if _rules is None:
        raise ImproperlyConfigured("media.access.register() was never called: ChatsConfig.ready() calls it.")
    return _rules


def attachment_for_viewer(*, attachment_id: int, user: User) -> Attachment | None:
    """The attachment with its blob if `user` may fetch it, else None (answered as 404); one query."""
    return _registered().attachment_for_viewer(attachment_id=attachment_id, user=user)


def carriers(attachment: int | OuterRef) -> QuerySet[Any]:
    """The rows that keep an attachment in use, deleted messages included: filter by its pk, or by
    OuterRef("pk") inside Exists(). An attachment none of them carries is unattached."""
    return _registered().carriers(attachment)
