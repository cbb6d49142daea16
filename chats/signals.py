"""Keep Chat.last_message right when rows go away outside the services, and tell a user's peers of
a changed profile.

Deleting a user (Django admin) deletes their messages with them; the chats whose newest message
was one of those are pointed at their newest remaining message, in the same transaction.

A changed display name or avatar (accounts.services.profile_changed, sent inside the transaction
that wrote it) is recorded as a `UserUpdated` event in that transaction's outbox: after the commit
it becomes one `user.updated` frame to everyone sharing a chat with the user (chats.realtime.render).
"""

from typing import Any

from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver

from accounts.models import User
from accounts.services import profile_changed
from chats.models import Chat
from chats.realtime import events, outbox
from chats.services import chats_refresh_last_message


@receiver(pre_delete, sender=User, dispatch_uid="chats_last_message_before_user_delete")
def _note_chats_losing_last_message(sender: type[User], instance: User, **kwargs: Any) -> None:
    instance._chats_losing_last_message = list(  # type: ignore[attr-defined]
        Chat.objects.filter(last_message__sender=instance).values_list("pk", flat=True)
    )


@receiver(post_delete, sender=User, dispatch_uid="chats_last_message_after_user_delete")
def _refresh_chats_last_message(sender: type[User], instance: User, **kwargs: Any) -> None:
    chat_ids = getattr(instance, "_chats_losing_last_message", [])
    if chat_ids:
        chats_refresh_last_message(chat_ids)


@receiver(profile_changed, dispatch_uid="chats_user_updated")
def _record_user_updated(sender: type[User], user_id: int, **kwargs: Any) -> None:
    # A savepoint with an outbox inside the writer's transaction: published after its commit, or
    # not at all when it rolls back.
    with outbox.atomic():
        outbox.record(events.UserUpdated(user_id))
