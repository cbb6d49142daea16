"""Reads of attachments: who may see which, in one query."""

from django.db.models import Exists, OuterRef, Q

from accounts.models import User
from chats.models import Message
from media.models import Attachment


def attachment_for_viewer(*, attachment_id: int, user: User) -> Attachment | None:
    """The attachment with its blob if `user` may fetch it, else None (answered as 404).

    Its uploader may, and so may every member of a chat in which a message that is not
    deleted carries it.
    """
    shared_with_user = Message.objects.filter(attachment=OuterRef("pk"), deleted=False, chat__memberships__user=user)
    return (
        Attachment.objects.select_related("blob")
        .filter(pk=attachment_id)
        .filter(Q(uploader=user) | Exists(shared_with_user))
        .first()
    )
