"""Every write to chats and messages. REST views and WebSocket consumers both call these.

Services raise Django's ValidationError (bad input), PermissionDenied (a member without the
role) and Http404 (not a member: the chat's existence is never revealed). Each opens its
transaction with `outbox.atomic()` and records typed events (chats.realtime.events) in it; they
are rendered once and published after the commit, so listeners hear only of committed rows.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.db.models import (
    F,
    OuterRef,
    Subquery,
)
from django.db.models.functions import Lower
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from chats import statements
from chats.emoji import is_single_emoji
from chats.models import Chat, ChatUser, Mention, Message, Reaction
from chats.previews import jobs as previews
from chats.previews.links import first_url
from chats.realtime import outbox, render
from chats.realtime.events import (
    ChatCreated,
    ChatMuted,
    ChatRead,
    ChatRenamed,
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    MessageCreated,
    MessageDeleted,
    MessageUpdated,
)
from media.models import Attachment
from messenger.deadlocks import retry_deadlocks

Role = ChatUser.Role
Kind = Message.Kind


def membership_get(*, chat_id: int, user: User) -> ChatUser:
    """The caller's membership, or 404 whether the chat is missing or merely not theirs."""
    membership = ChatUser.objects.filter(chat_id=chat_id, user=user).select_related("chat").first()
    if membership is None:
        raise Http404("No chat matches the given query.")
    return membership


def _lock_chat(chat_id: int) -> Chat:
    """Take the chat's row lock: every version bump and read-position change goes through it."""
    return Chat.objects.select_for_update().get(pk=chat_id)


def _clean_title(title: str | None) -> str:
    cleaned = (title or "").strip()
    if not cleaned:
        raise ValidationError({"title": ["A group needs a title."]})
    if len(cleaned) > settings.CHAT_TITLE_MAX_LENGTH:
        raise ValidationError({"title": [f"Ensure the title has at most {settings.CHAT_TITLE_MAX_LENGTH} characters."]})
    return cleaned


def _clean_content(content: str | None, *, required: bool) -> str:
    cleaned = (content or "").strip()
    if required and not cleaned:
        raise ValidationError({"content": ["A message needs text or an attachment."]})
    if len(cleaned) > settings.MESSAGE_MAX_LENGTH:
        raise ValidationError(
            {"content": [f"Ensure the message has at most {settings.MESSAGE_MAX_LENGTH} characters."]}
        )
    return cleaned


def _existing_users(user_ids: Sequence[int]) -> list[User]:
    users = list(User.objects.filter(pk__in=user_ids, is_active=True))
    missing = sorted(set(user_ids) - {u.pk for u in users})
    if missing:
        raise ValidationError({"member_ids": [f"No such user: {', '.join(map(str, missing))}."]})
    return users


# Chats --------------------------------------------------------------------------------


def chat_create(
    *, creator: User, is_group: bool, member_ids: Sequence[int], title: str | None = None
) -> tuple[Chat, bool]:
    """Create a chat; returns (chat, created). A direct chat that exists is returned as is."""
    other_ids = list(dict.fromkeys(i for i in member_ids if i != creator.pk))
    if is_group:
        return _group_create(creator=creator, title=title, member_ids=other_ids), True
    if len(member_ids) != 1 or not other_ids:
        raise ValidationError({"member_ids": ["A direct chat takes exactly one other user."]})
    return _direct_get_or_create(creator=creator, other_id=other_ids[0])


@retry_deadlocks
@outbox.atomic()
def _group_create(*, creator: User, title: str | None, member_ids: list[int]) -> Chat:
    clean_title = _clean_title(title)
    if len(member_ids) + 1 > settings.GROUP_MAX_MEMBERS:
        raise ValidationError({"member_ids": [f"A group has at most {settings.GROUP_MAX_MEMBERS} members."]})
    users = _existing_users(member_ids)
    chat = Chat.objects.create(is_group=True, title=clean_title)
    ChatUser.objects.bulk_create(
        [ChatUser(chat=chat, user=creator, role=Role.OWNER)]
        + [ChatUser(chat=chat, user=user, role=Role.MEMBER) for user in users]
    )
    outbox.record(ChatCreated(chat_id=chat.pk))
    # The new row is this transaction's alone: no lock to take for its first version.
    system_message_record(chat=chat, actor=creator, action="chat.created", title=clean_title)
    return chat


def _direct_key(a: int, b: int) -> str:
    low, high = sorted((a, b))
    return f"{low}:{high}"


@retry_deadlocks
def _direct_get_or_create(*, creator: User, other_id: int) -> tuple[Chat, bool]:
    key = _direct_key(creator.pk, other_id)
    existing = Chat.objects.filter(direct_key=key).first()
    if existing is not None:
        return existing, False
    other = _existing_users([other_id])[0]
    try:
        with outbox.atomic():
            chat = Chat.objects.create(is_group=False, title=None, direct_key=key)
            ChatUser.objects.bulk_create(
                [ChatUser(chat=chat, user=creator, role=Role.MEMBER), ChatUser(chat=chat, user=other, role=Role.MEMBER)]
            )
            outbox.record(ChatCreated(chat_id=chat.pk))
    except IntegrityError:
        # A concurrent request created the pair's chat first; the unique direct_key decided.
        return Chat.objects.get(direct_key=key), False
    return chat, True


@retry_deadlocks
@outbox.atomic()
def chat_update(*, chat_id: int, actor: User, title: str) -> Chat:
    membership = membership_get(chat_id=chat_id, user=actor)
    chat = membership.chat
    if not chat.is_group:
        raise ValidationError({"title": ["A direct chat has no title."]})
    if not membership.is_manager:
        raise PermissionDenied("Only the group's owner or an admin can rename it.")
    clean_title = _clean_title(title)
    chat = _lock_chat(chat_id)
    chat.title = clean_title
    chat.save(update_fields=["title"])
    outbox.record(ChatRenamed(chat_id=chat.pk))
    system_message_record(chat=chat, actor=actor, action="chat.renamed", title=clean_title)
    return chat


@retry_deadlocks
@outbox.atomic()
def chat_mute(*, chat_id: int, user: User, muted: bool) -> ChatUser:
    """Mute or unmute a chat for the user (any member). Their own sockets hear of a change."""
    membership = membership_get(chat_id=chat_id, user=user)
    if membership.muted != muted:
        membership.muted = muted
        membership.save(update_fields=["muted"])
        outbox.record(ChatMuted(chat_id=chat_id, user_id=user.pk, muted=muted))
    return membership


@retry_deadlocks
@outbox.atomic()
def chat_member_add(*, chat_id: int, actor: User, user_id: int) -> outbox.Entry:
    """Add a member (group owner/admin); returns the MemberAdded entry, which holds the chat as
    rendered for the newcomer once committed (the REST answer reuses it)."""
    membership = membership_get(chat_id=chat_id, user=actor)
    if not membership.chat.is_group:
        raise ValidationError({"user_id": ["Members of a direct chat cannot change."]})
    if not membership.is_manager:
        raise PermissionDenied("Only the group's owner or an admin can add members.")
    chat = _lock_chat(chat_id)
    if ChatUser.objects.filter(chat=chat, user_id=user_id).exists():
        raise ValidationError({"user_id": ["This user is already a member."]})
    if ChatUser.objects.filter(chat=chat).count() >= settings.GROUP_MAX_MEMBERS:
        raise ValidationError({"user_id": [f"A group has at most {settings.GROUP_MAX_MEMBERS} members."]})
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ValidationError({"user_id": [f"No such user: {user_id}."]})
    # A newcomer starts with everything before them read: the newest message, kept under this lock.
    ChatUser.objects.create(chat=chat, user=user, role=Role.MEMBER, last_read_id=chat.last_message_id or 0)
    added = outbox.record(MemberAdded(chat_id=chat.pk, user_id=user.pk))
    # After MemberAdded: the newcomer's sockets have joined the chat when its message.created comes.
    system_message_record(chat=chat, actor=actor, action="member.added", user_id=user.pk)
    return added


def chats_refresh_last_message(chat_ids: Sequence[int]) -> None:
    """Point each chat's last_message at its newest message again, after rows were removed
    outside message_create (a user's deletion takes their messages with it)."""
    newest = Message.objects.filter(chat=OuterRef("pk")).order_by("-id").values("id")[:1]
    Chat.objects.filter(pk__in=chat_ids).update(last_message=Subquery(newest))


@retry_deadlocks
@outbox.atomic()
def chat_member_remove(*, chat_id: int, actor: User, user_id: int, heir_id: int | None = None) -> None:
    """Owner/admin removes a member; anyone removes themself (leaves).

    An admin may remove plain members only; the owner anyone. When the owner leaves, `heir_id`
    (a member who stays) becomes owner, chosen by the owner in the client; without it, the
    longest-standing admin (else member) does. `heir_id` from anyone but a leaving owner is a 400.
    """
    membership = membership_get(chat_id=chat_id, user=actor)
    if not membership.chat.is_group:
        raise ValidationError({"user_id": ["Members of a direct chat cannot change."]})
    chat = _lock_chat(chat_id)
    target = ChatUser.objects.filter(chat=chat, user_id=user_id).first()
    if target is None:
        raise Http404("This user is not a member of the chat.")
    leaving = target.user_id == actor.pk
    if heir_id is not None and not (leaving and target.role == Role.OWNER):
        raise ValidationError({"heir_id": ["Only the owner leaving the group names an heir."]})
    if not leaving:
        if not membership.is_manager:
            raise PermissionDenied("Only the group's owner or an admin can remove members.")
        if membership.role == Role.ADMIN and target.role != Role.MEMBER:
            raise PermissionDenied("An admin can remove members only; the owner removes admins.")
    chosen = None
    if heir_id is not None:
        chosen = ChatUser.objects.filter(chat=chat, user_id=heir_id).exclude(user_id=actor.pk).first()
        if chosen is None:
            raise ValidationError({"heir_id": ["The heir must be another member of the group."]})
    target.delete()
    # Before MemberRemoved: the one who leaves or is removed still hears it.
    system_message_record(
        chat=chat, actor=actor, action="member.left" if leaving else "member.removed", user_id=user_id
    )
    if target.role == Role.OWNER:
        heir = chosen or (
            ChatUser.objects.filter(chat=chat)
            .order_by(F("role").asc(), "joined_at", "id")  # "admin" sorts before "member"
            .first()
        )
        if heir is not None:
            heir.role = Role.OWNER
            heir.save(update_fields=["role"])
            outbox.record(MemberRoleChanged(chat_id=chat.pk, user_id=heir.user_id, role=Role.OWNER))
            system_message_record(chat=chat, actor=actor, action="role.changed", user_id=heir.user_id, role=Role.OWNER)
    outbox.record(MemberRemoved(chat_id=chat.pk, user_id=user_id))


@retry_deadlocks
@outbox.atomic()
def chat_member_set_role(*, chat_id: int, actor: User, user_id: int, role: str) -> Chat:
    membership = membership_get(chat_id=chat_id, user=actor)
    if not membership.chat.is_group:
        raise ValidationError({"role": ["A direct chat has no roles."]})
    if membership.role != Role.OWNER:
        raise PermissionDenied("Only the group's owner can change roles.")
    if role not in {Role.ADMIN, Role.MEMBER}:
        raise ValidationError({"role": ["Role must be admin or member."]})
    target = ChatUser.objects.filter(chat_id=chat_id, user_id=user_id).first()
    if target is None:
        raise Http404("This user is not a member of the chat.")
    if target.role == Role.OWNER:
        raise ValidationError({"role": ["The owner's role cannot change."]})
    if target.role != role:
        chat = _lock_chat(chat_id)
        target.role = role
        target.save(update_fields=["role"])
        outbox.record(MemberRoleChanged(chat_id=chat_id, user_id=user_id, role=role))
        system_message_record(chat=chat, actor=actor, action="role.changed", user_id=user_id, role=role)
    return membership.chat


# Messages -----------------------------------------------------------------------------


def system_message_record(
    *,
    chat: Chat,
    actor: User,
    action: str,
    user_id: int | None = None,
    title: str | None = None,
    message_id: int | None = None,
    role: str | None = None,
) -> Message:
    """Store a system message recording a change to the chat, and announce it (`message.created`).

    Called holding the chat's row lock (or on a chat created in this transaction), with `chat` that
    locked row: the message takes the chat's next version like any message, but counts as unread
    for nobody (the members' counters are left alone) and can be neither edited nor deleted.
    """
    system: dict[str, Any] = {"action": action, "actor_id": actor.pk}
    details = {"user_id": user_id, "title": title, "message_id": message_id, "role": role}
    system.update({key: value for key, value in details.items() if value is not None})
    now = timezone.now()
    chat.version += 1
    message = Message.objects.create(
        chat=chat, sender=actor, kind=Kind.SYSTEM, system=system, created_at=now, version=chat.version
    )
    chat.last_activity_at, chat.last_message = now, message
    chat.save(update_fields=["version", "last_activity_at", "last_message"])
    outbox.record(MessageCreated(chat_id=chat.pk, message_id=message.pk, version=message.version), message)
    return message


@dataclass
class MessageResult:
    """A stored (or found) message, and the event its change recorded.

    Once the transaction has committed, `payload()` is the Message as its event showed it to
    every member, rendered once (chats.realtime.render): the REST answer and the socket's
    `message.ack` reuse it.
    """

    message: Message
    created: bool
    entry: outbox.Entry | None = None

    def payload(self) -> tuple[dict[str, Any], str]:
        """(the Message as the contract shows it, its JSON text)."""
        entry = self.entry
        if entry is not None and entry.message is not None and entry.message_text is not None:
            return entry.message, entry.message_text
        # No event (a repeated client_id) or its rendering failed: render it here.
        return render.message_payloads([self.message.pk])[self.message.pk]


@retry_deadlocks
def message_create(
    *,
    chat_id: int,
    sender: User,
    content: str | None = None,
    attachment_id: int | None = None,
    client_id: str | None = None,
    reply_to_id: int | None = None,
    forward_of_id: int | None = None,
) -> MessageResult:
    """Store a message and announce it (`created`), or find the sender's first with this client_id.

    A client_id the sender used before in this chat returns the first message and creates nothing,
    so a client may retry a send whose answer it never saw; in another chat it is a new message.
    """
    client_id = (client_id or "").strip() or None
    try:
        return _message_create(
            chat_id=chat_id,
            sender=sender,
            content=content,
            attachment_id=attachment_id,
            client_id=client_id,
            reply_to_id=reply_to_id,
            forward_of_id=forward_of_id,
        )
    except IntegrityError:
        if client_id is None:
            raise
        # A concurrent retry with the same client_id won the insert.
        first = Message.objects.filter(sender=sender, chat_id=chat_id, client_id=client_id).first()
        if first is None:
            raise
        return MessageResult(first, created=False)


@outbox.atomic()
def _message_create(
    *,
    chat_id: int,
    sender: User,
    content: str | None,
    attachment_id: int | None,
    client_id: str | None,
    reply_to_id: int | None = None,
    forward_of_id: int | None = None,
) -> MessageResult:
    # The hot path of the messenger: four statements, all fixed SQL (chats.statements).
    # The chat's row lock comes first, with the membership and the client_id's first message read
    # under it, so a member removed while this send waited gets 404 and nothing lands.
    locked = statements.lock_chat_for_member(chat_id, sender.pk, client_id)
    if locked is None:
        raise Http404("No chat matches the given query.")
    if locked.first_message_id is not None:
        return MessageResult(Message.objects.get(pk=locked.first_message_id), created=False)
    forwarded = None
    if forward_of_id is not None:
        if (content or "").strip() or attachment_id is not None:
            raise ValidationError({"forward_of_id": ["A forward carries the original's text and attachment only."]})
        forwarded = _forward_source(user=sender, message_id=forward_of_id)
        content = forwarded.content
    attachment = forwarded.attachment if forwarded is not None else None
    if attachment_id is not None:
        attachment = _attachment_for(chat_id=chat_id, user=sender, attachment_id=attachment_id)
    text = _clean_content(content, required=attachment is None)
    reply_to = _reply_target(chat_id=chat_id, message_id=reply_to_id) if reply_to_id is not None else None

    now = timezone.now()
    message = Message(
        chat_id=chat_id,
        sender=sender,
        content=text,
        attachment=attachment,
        client_id=client_id,
        created_at=now,
        version=locked.chat_version + 1,
        reply_to=reply_to,
        mentions=_mentioned(chat_id=chat_id, content=text),
    )
    if forwarded is not None:
        # A forward of a forward names the first author, as the one it copies did.
        first_author = forwarded.forwarded_created_at is None
        message.forwarded_sender = forwarded.sender if first_author else forwarded.forwarded_sender
        message.forwarded_created_at = forwarded.created_at if first_author else forwarded.forwarded_created_at
    # The foreign keys were checked above; validating them again would cost a query each.
    message.full_clean(
        exclude=["chat", "sender", "attachment", "reply_to", "forwarded_sender"],
        validate_unique=False,
        validate_constraints=False,
    )
    statements.insert_message(message)
    statements.chat_advance(chat_id, version=message.version, at=now, last_message_id=message.pk)
    # Writing in a chat means having read it, up to the new message (the newest, under the lock).
    statements.members_count_new_message(chat_id, sender_id=sender.pk, message_id=message.pk)
    # Others' messages after the sender's old position become read; with nothing unread for
    # the sender there are none (every message after the position is someone else's).
    newly_read = 0
    if locked.unread_count:
        newly_read = _mark_others_read(
            chat_id=chat_id, reader=sender, after_id=locked.last_read_id, up_to_id=message.pk
        )
    _mentions_store(message=message)
    url = first_url(text)
    if url is not None:
        previews.fetch_after_commit(message_id=message.pk, url=url)
    # The row as written, its sender and attachment loaded: the renderer need not read it again.
    entry = outbox.record(MessageCreated(chat_id=chat_id, message_id=message.pk, version=message.version), message)
    if newly_read:
        # Others' messages just became read (is_read): their senders' ticks change.
        outbox.record(ChatRead(chat_id=chat_id, user_id=sender.pk, last_read_id=message.pk))
    return MessageResult(message, created=True, entry=entry)


# "@name" not preceded by a word character or "@" (so not the middle of an email address).
MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_.]{3,32})")


def _mentioned(*, chat_id: int, content: str) -> list[int]:
    """The ids of the chat's members named as @username in the text (case-insensitive), in the order
    first named. No query for a text without a candidate; one otherwise."""
    named: dict[str, None] = {}
    for match in MENTION.finditer(content):
        name = match.group(1).lower()
        named[name] = None
        named[name.rstrip(".")] = None  # "@bob." at the end of a sentence
    if not named:
        return []
    rows = (
        ChatUser.objects.filter(chat_id=chat_id)
        .annotate(name=Lower("user__username"))
        .filter(name__in=list(named))
        .values_list("name", "user_id")
    )
    ids = dict(rows)
    return list(dict.fromkeys(ids[name] for name in named if name in ids))


def _mentions_store(*, message: Message) -> None:
    if message.mentions:
        Mention.objects.bulk_create(
            [Mention(message=message, user_id=user_id, chat_id=message.chat_id) for user_id in message.mentions]
        )


def _reply_target(*, chat_id: int, message_id: int) -> Message:
    """The message a reply answers: one of the same chat that still has something to quote, with
    what its quote shows loaded (the new message's rendering reads it from here, no query)."""
    quoted = Message.objects.select_related("sender", "attachment__blob")
    original = quoted.filter(pk=message_id, chat_id=chat_id).first()
    if original is None:
        raise ValidationError({"reply_to_id": ["No such message in this chat."]})
    if original.deleted or original.kind == Kind.SYSTEM:
        raise ValidationError({"reply_to_id": ["A deleted or system message cannot be replied to."]})
    return original


def _forward_source(*, user: User, message_id: int) -> Message:
    """The message a forward copies: one in any chat of the user (else 404, as a chat they are not in)."""
    visible = Message.objects.select_related("sender", "attachment__blob", "forwarded_sender")
    original = visible.filter(pk=message_id, chat__memberships__user=user).first()
    if original is None:
        raise Http404("No message matches the given query.")
    if original.deleted or original.kind == Kind.SYSTEM:
        raise ValidationError({"forward_of_id": ["A deleted or system message cannot be forwarded."]})
    return original


def _attachment_for(*, chat_id: int, user: User, attachment_id: int) -> Attachment:
    """An attachment may be sent by its uploader, or re-shared from a chat the sender is in."""
    attachment = Attachment.objects.filter(pk=attachment_id).select_related("blob").first()
    if attachment is None or (
        attachment.uploader_id != user.pk
        and not Message.objects.filter(attachment=attachment, chat__memberships__user=user, deleted=False).exists()
    ):
        raise ValidationError({"attachment_id": ["No such attachment."]})
    return attachment


@retry_deadlocks
@outbox.atomic()
def message_edit(*, chat_id: int, message_id: int, actor: User, content: str) -> MessageResult:
    membership_get(chat_id=chat_id, user=actor)
    # The message is read under the chat's lock: a delete that committed meanwhile is seen here
    # (read committed), and its blanked text is never overwritten by this edit.
    chat = _lock_chat(chat_id)
    message = Message.objects.filter(pk=message_id, chat_id=chat_id).first()
    if message is None:
        raise Http404("No message matches the given query.")
    if message.kind == Kind.SYSTEM:
        raise ValidationError({"content": ["A system message cannot be edited."]})
    if message.sender_id != actor.pk:
        raise PermissionDenied("Only the sender can edit a message.")
    if message.deleted:
        raise ValidationError({"content": ["A deleted message cannot be edited."]})
    text = _clean_content(content, required=message.attachment_id is None)
    chat.version += 1
    chat.save(update_fields=["version"])
    url, old_url = first_url(text), first_url(message.content)
    message.content = text
    message.edited_at = timezone.now()
    message.version = chat.version
    had_mentions, message.mentions = bool(message.mentions), _mentioned(chat_id=chat_id, content=text)
    changed = ["content", "edited_at", "version", "mentions"]
    if url != old_url:
        # Another first URL: the old preview goes with this version, the new one follows its fetch.
        message.link_preview = None
        changed.append("link_preview")
        if url is not None:
            previews.fetch_after_commit(message_id=message.pk, url=url)
    message.save(update_fields=changed)
    if had_mentions:
        Mention.objects.filter(message=message).delete()
    _mentions_store(message=message)
    entry = outbox.record(MessageUpdated(chat_id=chat_id, message_id=message.pk, version=message.version))
    return MessageResult(message, created=False, entry=entry)


@retry_deadlocks
@outbox.atomic()
def message_delete(*, chat_id: int, message_id: int, actor: User) -> None:
    membership = membership_get(chat_id=chat_id, user=actor)
    message = Message.objects.filter(pk=message_id, chat_id=chat_id).first()
    if message is None:
        raise Http404("No message matches the given query.")
    if message.kind == Kind.SYSTEM:
        raise ValidationError("A system message cannot be deleted.")
    may_moderate = membership.chat.is_group and membership.is_manager
    if message.sender_id != actor.pk and not may_moderate:
        raise PermissionDenied("Only the sender or a group owner/admin can delete this message.")
    if message.deleted:
        return
    message_soft_delete(message=message)


@retry_deadlocks
def message_soft_delete(*, message: Message) -> Message:
    """Blank a message in place and take a new version. Also used by the admin.

    Deleting a deleted message changes nothing: the check runs under the chat's lock, so of two
    concurrent deletes only the first takes a version and lowers the unread counts.
    """
    with outbox.atomic():
        chat = _lock_chat(message.chat_id)
        if Message.objects.filter(pk=message.pk, deleted=True).exists():
            message.refresh_from_db()
            return message
        chat.version += 1
        chat.save(update_fields=["version"])
        message.deleted = True
        message.content = ""
        message.attachment = None
        message.version = chat.version
        message.reactions = []
        message.pinned_at = None  # nothing left to pin
        message.link_preview = None
        had_mentions, message.mentions = bool(message.mentions), []
        message.save(
            update_fields=[
                "deleted",
                "content",
                "attachment",
                "version",
                "reactions",
                "pinned_at",
                "mentions",
                "link_preview",
            ]
        )
        Reaction.objects.filter(message=message).delete()
        if had_mentions:
            Mention.objects.filter(message=message).delete()
        # Members who had not read it yet no longer count it.
        ChatUser.objects.filter(chat=chat, last_read_id__lt=message.pk, unread_count__gt=0).exclude(
            user_id=message.sender_id
        ).update(unread_count=F("unread_count") - 1)
        outbox.record(MessageDeleted(chat_id=chat.pk, message_id=message.pk, version=message.version))
    return message


def _message_updated(*, chat: Chat, message: Message, fields: list[str]) -> outbox.Entry:
    """Give a changed message the chat's next version and announce it (`message.updated`). Called
    holding the chat's row lock (`chat` is the locked row), with the message's changed `fields` set."""
    chat.version += 1
    chat.save(update_fields=["version"])
    message.version = chat.version
    message.save(update_fields=[*fields, "version"])
    return outbox.record(MessageUpdated(chat_id=chat.pk, message_id=message.pk, version=message.version))


@retry_deadlocks
@outbox.atomic()
def message_link_preview_set(*, message_id: int, url: str, preview: dict[str, Any]) -> Message | None:
    """Show a fetched preview on the message whose first URL it is (chats.previews.jobs, after the
    fetch): the chat's next version and `message.updated`. Returns the message, or None when nothing
    changed: it was deleted meanwhile, edited to another first URL, or shows this preview already."""
    chat_id = Message.objects.filter(pk=message_id).values_list("chat_id", flat=True).first()
    if chat_id is None:
        return None
    chat = _lock_chat(chat_id)
    message = Message.objects.filter(pk=message_id).first()  # read again under the lock
    if message is None or message.deleted or first_url(message.content) != url or message.link_preview == preview:
        return None
    message.link_preview = preview
    _message_updated(chat=chat, message=message, fields=["link_preview"])
    return message


def _pin_membership(*, chat_id: int, actor: User) -> ChatUser:
    """Who may pin: any member of a direct chat, the owner or an admin of a group."""
    membership = membership_get(chat_id=chat_id, user=actor)
    if membership.chat.is_group and not membership.is_manager:
        raise PermissionDenied("Only the group's owner or an admin can pin or unpin messages.")
    return membership


@retry_deadlocks
@outbox.atomic()
def message_pin(*, chat_id: int, actor: User, message_id: int) -> MessageResult:
    """Pin a message: it takes the chat's next version (`message.updated`, `pinned: true`), and a
    `message.pinned` system message records who pinned it. Pinning a pinned message changes nothing
    (`created` False)."""
    _pin_membership(chat_id=chat_id, actor=actor)
    chat = _lock_chat(chat_id)
    message = Message.objects.filter(pk=message_id, chat_id=chat_id).first()
    if message is None:
        raise ValidationError({"message_id": ["No such message in this chat."]})
    if message.deleted or message.kind == Kind.SYSTEM:
        raise ValidationError({"message_id": ["A deleted or system message cannot be pinned."]})
    if message.pinned_at is not None:
        return MessageResult(message, created=False)
    message.pinned_at = timezone.now()
    entry = _message_updated(chat=chat, message=message, fields=["pinned_at"])
    system_message_record(chat=chat, actor=actor, action="message.pinned", message_id=message.pk)
    return MessageResult(message, created=True, entry=entry)


@retry_deadlocks
@outbox.atomic()
def message_unpin(*, chat_id: int, actor: User, message_id: int) -> None:
    """Unpin a message of the chat (404 for none): a new version and `message.updated`; a message
    that is not pinned changes nothing."""
    _pin_membership(chat_id=chat_id, actor=actor)
    chat = _lock_chat(chat_id)
    message = Message.objects.filter(pk=message_id, chat_id=chat_id).first()
    if message is None:
        raise Http404("No message matches the given query.")
    if message.pinned_at is None:
        return
    message.pinned_at = None
    _message_updated(chat=chat, message=message, fields=["pinned_at"])


# How many reactors of one emoji a Message names (its `count` says how many there are).
REACTORS_SHOWN = 50


@retry_deadlocks
@outbox.atomic()
def message_react(*, chat_id: int, message_id: int, actor: User, emoji: str, add: bool) -> MessageResult:
    """Put (add=True) or take back the actor's emoji on a message. Idempotent: a reaction that is
    already there (or already gone) changes nothing and takes no version; a change takes the chat's
    next version and is announced as `message.updated`."""
    if not is_single_emoji(emoji):
        raise ValidationError({"emoji": ["A reaction is exactly one emoji."]})
    membership_get(chat_id=chat_id, user=actor)
    chat = _lock_chat(chat_id)
    message = Message.objects.filter(pk=message_id, chat_id=chat_id).first()
    if message is None:
        raise Http404("No message matches the given query.")
    if message.deleted or message.kind == Kind.SYSTEM:
        raise ValidationError({"emoji": ["A deleted or system message takes no reactions."]})
    key = Reaction.key_of(emoji)
    if add:
        if Reaction.objects.filter(message=message, user=actor, key=key).exists():
            return MessageResult(message, created=False)
        Reaction.objects.create(message=message, user=actor, emoji=emoji, key=key)
    elif not Reaction.objects.filter(message=message, user=actor, key=key).delete()[0]:
        return MessageResult(message, created=False)
    message.reactions = _reactions_summary(message.pk)
    entry = _message_updated(chat=chat, message=message, fields=["reactions"])
    return MessageResult(message, created=False, entry=entry)


def _reactions_summary(message_id: int) -> list[dict[str, Any]]:
    """[{emoji, count, user_ids}]: emoji in the order of their first use, reactors oldest first (at
    most REACTORS_SHOWN). Read holding the chat's lock, from every reaction to the message."""
    summary: dict[str, dict[str, Any]] = {}
    rows = Reaction.objects.filter(message_id=message_id).order_by("id").values_list("key", "emoji", "user_id")
    for key, emoji, user_id in rows:
        entry = summary.setdefault(key, {"emoji": emoji, "count": 0, "user_ids": []})
        entry["count"] += 1
        if len(entry["user_ids"]) < REACTORS_SHOWN:
            entry["user_ids"].append(user_id)
    return list(summary.values())


@retry_deadlocks
@outbox.atomic()
def chat_mark_read(*, chat_id: int, user: User, message_id: int) -> ChatUser:
    """Mark everything up to message_id read for the user. Never moves the position back."""
    membership_get(chat_id=chat_id, user=user)
    if not Message.objects.filter(pk=message_id, chat_id=chat_id).exists():
        raise ValidationError({"message_id": ["No such message in this chat."]})
    chat = _lock_chat(chat_id)
    moved, _ = _advance_read(chat=chat, user=user, message_id=message_id)
    if moved:
        outbox.record(ChatRead(chat_id=chat_id, user_id=user.pk, last_read_id=message_id))
    return ChatUser.objects.get(chat_id=chat_id, user=user)  # present: _advance_read checked under the lock


def _advance_read(*, chat: Chat, user: User, message_id: int) -> tuple[bool, int]:
    """Move the user's read position forward (called holding the chat's row lock).

    Recounts the user's unread messages and marks others' messages up to the position as
    read. Returns whether the position moved and how many messages became read.
    """
    membership = ChatUser.objects.filter(chat=chat, user=user).first()
    if membership is None:
        # Removed from the chat while waiting for its lock.
        raise Http404("No chat matches the given query.")
    if message_id <= membership.last_read_id:
        return False, 0
    unread = (
        Message.objects.filter(chat=chat, id__gt=message_id, deleted=False, kind=Kind.TEXT).exclude(sender=user).count()
    )
    ChatUser.objects.filter(pk=membership.pk).update(last_read_id=message_id, unread_count=unread)
    newly_read = _mark_others_read(chat_id=chat.pk, reader=user, after_id=membership.last_read_id, up_to_id=message_id)
    return True, newly_read


def _mark_others_read(*, chat_id: int, reader: User, after_id: int, up_to_id: int) -> int:
    """Set is_read on others' messages in (after_id, up_to_id]; returns how many changed."""
    return (
        Message.objects.filter(chat_id=chat_id, id__gt=after_id, id__lte=up_to_id, is_read=False)
        .exclude(sender=reader)
        .update(is_read=True)
    )
