"""Keep Chat.last_message right when rows go away outside the services.

Deleting a user (Django admin) deletes their messages with them; the chats whose newest message
was one of those are pointed at their newest remaining message, in the same transaction.
"""

from typing import Any

from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver

from accounts.models import User
from chats.models import Chat
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
