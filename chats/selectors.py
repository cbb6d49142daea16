"""Reads beyond a one-liner: each is a fixed number of queries, whatever the data's size."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from accounts.models import User
from accounts.selectors import presence_context as presence_context  # chats.views uses it from here
from chats import search, statements
from chats.models import Chat, ChatUser, Mention, Message, Reaction
from media.models import Attachment


@dataclass(frozen=True, slots=True)
class MemberUser:
    """What a chat's rendering shows of a member: PublicUserSerializer's fields."""

    id: int
    username: str
    display_name: str
    last_seen: datetime | None
    avatar_sha256: str

    @property
    def pk(self) -> int:
        return self.id


@dataclass(frozen=True, slots=True)
class Member:
    """A membership as the chat's rendering needs it. Read as plain rows, not model instances:
    a page of 30 chats has about 100 members, and building a ChatUser and a User for each cost
    more than the query (bench: 4.1 against 1.9 ms)."""

    user: MemberUser
    role: str
    unread_count: int
    last_read_id: int
    muted: bool = False

    @property
    def user_id(self) -> int:
        return self.user.id


# What rendering a Message reads besides its row (chats.serializers.message_data): joined, never a
# query per message.
MESSAGE_RELATED = (
    "sender",
    "attachment__blob",
    "reply_to__sender",
    "reply_to__attachment__blob",
    "forwarded_sender",
)
LAST_MESSAGE_RELATED = tuple(f"last_message__{name}" for name in MESSAGE_RELATED)


def chats_for(user: User) -> QuerySet[Chat]:
    """The user's chats, most recent activity first, each with its last message joined in.

    Members come with attach_members, once the page is cut.
    """
    return (
        Chat.objects.filter(memberships__user=user)
        .select_related(*LAST_MESSAGE_RELATED)
        .order_by(F("last_activity_at").desc(), F("id").desc())
    )


def attach_members(chats: Iterable[Chat]) -> list[Chat]:
    """Set chat.members_list (in joining order) for a page of chats, in one query."""
    page = list(chats)
    by_chat: dict[int, list[Member]] = {chat.pk: [] for chat in page}
    rows = statements.member_rows(list(by_chat))
    for chat_id, role, unread_count, last_read_id, muted, user_id, username, display_name, last_seen, avatar in rows:
        user = MemberUser(user_id, username, display_name, last_seen, avatar)
        by_chat[chat_id].append(Member(user, role, unread_count, last_read_id, muted))
    for chat in page:
        chat.members_list = by_chat[chat.pk]  # type: ignore[attr-defined]
    return page


def members_of(chat: Chat) -> list[Member]:
    """The members attach_members set on the chat."""
    members: list[Member] = chat.members_list  # type: ignore[attr-defined]
    return members


def chat_detail(*, chat_id: int, user: User) -> Chat | None:
    chat = chats_for(user).filter(pk=chat_id).first()
    if chat is None:
        return None
    return attach_members([chat])[0]


def chat_with_members_or_none(chat_id: int) -> Chat | None:
    """A chat with its members and last message (two queries), for rendering its events."""
    chat = Chat.objects.select_related(*LAST_MESSAGE_RELATED).filter(pk=chat_id).first()
    return attach_members([chat])[0] if chat is not None else None


def member_ids(chat_id: int) -> list[int]:
    return list(ChatUser.objects.filter(chat_id=chat_id).values_list("user_id", flat=True))


def chat_ids_for(user_id: int) -> list[int]:
    return list(ChatUser.objects.filter(user_id=user_id).values_list("chat_id", flat=True))


def message_queryset() -> QuerySet[Message]:
    return Message.objects.select_related(*MESSAGE_RELATED)


def reactions_beyond_shown(viewer_id: int, rendered: Iterable[dict[str, Any]]) -> dict[int, frozenset[str]]:
    """For rendered Messages: the emoji the viewer reacted with where the reactors named stop short
    of the count (over services.REACTORS_SHOWN), by message id. No query unless some emoji has more
    reactors than are named; then one."""
    crowded = [m["id"] for m in rendered if any(r["count"] > len(r["user_ids"]) for r in m.get("reactions") or ())]
    if not crowded:
        return {}
    found: dict[int, set[str]] = {}
    for message_id, emoji in Reaction.objects.filter(message_id__in=crowded, user_id=viewer_id).values_list(
        "message_id", "emoji"
    ):
        found.setdefault(message_id, set()).add(emoji)
    return {message_id: frozenset(emoji) for message_id, emoji in found.items()}


def users_shown(messages: Iterable[Message]) -> list[User]:
    """Every user the messages' renderings show: their senders and the senders they quote."""
    users = []
    for message in messages:
        users.append(message.sender)
        if message.reply_to is not None:
            users.append(message.reply_to.sender)
    return users


@dataclass
class MessagePage:
    results: list[Message]
    has_more: bool


def message_page(*, chat_id: int, before: int | None = None, since: int | None = None, limit: int = 50) -> MessagePage:
    """History newest first (keyset: id < before, never OFFSET), or catch-up ascending by version.

    Two queries: the page's ids, walked on the (chat, id) or (chat, version) index alone, then
    those rows with their senders and attachments. In one joined query MariaDB may start from a
    small users table and sort the whole chat (measured: 212 ms for the newest page of a
    100,000-message chat, against under 10 ms this way).
    """
    keys = Message.objects.filter(chat_id=chat_id)
    if since is not None:
        keys = keys.filter(version__gt=since).order_by("version")
    else:
        if before is not None:
            keys = keys.filter(id__lt=before)
        keys = keys.order_by("-id")
    ids = list(keys.values_list("id", flat=True)[: limit + 1])
    page_ids = ids[:limit]
    rows = message_queryset().in_bulk(page_ids)
    return MessagePage(results=[rows[i] for i in page_ids], has_more=len(ids) > limit)


def message_search(
    *, user: User, query: str, chat_id: int | None = None, before: int | None = None, limit: int = 50
) -> MessagePage:
    """Messages of the user's chats (or of `chat_id` alone: the caller checked the membership) whose
    text or file name holds `query` (folded: chats.search.fold), newest first, keyset by id < before.

    The ids come from the search index (chats.search), then the rows as the history reads them:
    a fixed number of queries whatever the page, the chats or the matches.
    """
    chat_ids = [chat_id] if chat_id is not None else chat_ids_for(user.pk)
    ids = search.matching_ids(query=query, chat_ids=chat_ids, before=before, limit=limit + 1)
    page_ids = ids[:limit]
    # deleted=False: never a deleted message, even if an index row outlived it.
    rows = message_queryset().filter(deleted=False).in_bulk(page_ids)
    return MessagePage(results=[rows[i] for i in page_ids if i in rows], has_more=len(ids) > limit)


def mentions_page(*, user: User, before: int | None = None, limit: int = 50) -> MessagePage:
    """Messages that mention the user, in chats they are still in, newest first (keyset on the
    message id). Two queries, as message_page: the ids on (user, -message), then the rows."""
    still_member = ChatUser.objects.filter(chat_id=OuterRef("chat_id"), user=user)
    keys = Mention.objects.filter(user=user).filter(Exists(still_member))
    if before is not None:
        keys = keys.filter(message_id__lt=before)
    ids = list(keys.order_by("-message_id").values_list("message_id", flat=True)[: limit + 1])
    page_ids = ids[:limit]
    rows = message_queryset().in_bulk(page_ids)
    return MessagePage(results=[rows[i] for i in page_ids if i in rows], has_more=len(ids) > limit)


def pinned_messages(chat_id: int) -> QuerySet[Message]:
    """The chat's pinned messages (paged most recently pinned first, on message_pins_idx)."""
    return message_queryset().filter(chat_id=chat_id, pinned_at__isnull=False)


def media_page_queryset(chat_id: int, kind: str = Attachment.Kind.IMAGE) -> QuerySet[Message]:
    """Messages of a chat that carry an attachment of this kind (image or file), newest first."""
    return (
        # attachment__isnull: a range of the (chat, attachment) index, before the join that reads the kind.
        Message.objects.filter(chat_id=chat_id, deleted=False, attachment__isnull=False, attachment__kind=kind)
        .select_related("sender", "attachment__blob")
        .order_by("-id")
    )


def media_feed(*, user: User, kind: str, before: int | None = None, limit: int = 30) -> MessagePage:
    """Messages carrying an attachment of this kind in every chat the user is in, newest first
    (keyset: id < before); one query, whatever the number of chats."""
    messages = Message.objects.filter(
        chat_id__in=ChatUser.objects.filter(user=user).values("chat_id"),
        deleted=False,
        attachment__isnull=False,  # a range of the (chat, attachment) index per chat, as the gallery
        attachment__kind=kind,
    )
    if before is not None:
        messages = messages.filter(id__lt=before)
    rows = list(messages.select_related("sender", "attachment__blob").order_by("-id")[: limit + 1])
    return MessagePage(results=rows[:limit], has_more=len(rows) > limit)


def users_in_chats(chats: Iterable[Chat]) -> list[User | MemberUser]:
    users: list[User | MemberUser] = []
    for chat in chats:
        users.extend(m.user for m in members_of(chat))
        if chat.last_message is not None:
            users.extend(users_shown([chat.last_message]))
    return users


def users_sharing_a_chat(viewer_id: int, user_ids: Iterable[int]) -> set[int]:
    """Which of these users are members of a chat the viewer is a member of; one query."""
    ids = list(user_ids)
    if not ids:
        return set()
    viewer_chats = ChatUser.objects.filter(user_id=viewer_id).values("chat_id")
    return set(ChatUser.objects.filter(chat_id__in=viewer_chats, user_id__in=ids).values_list("user_id", flat=True))


def attachment_for_viewer(*, attachment_id: int, user: User) -> Attachment | None:
    """The attachment with its blob if `user` may fetch it, else None (answered as 404); one query.

    Its uploader may, and so may every member of a chat in which a message that is not
    deleted carries it. The media app asks through media.access (registered in ChatsConfig.ready).
    """
    shared_with_user = Message.objects.filter(attachment=OuterRef("pk"), deleted=False, chat__memberships__user=user)
    return (
        Attachment.objects.select_related("blob")
        .filter(pk=attachment_id)
        .filter(Q(uploader=user) | Exists(shared_with_user))
        .first()
    )


def messages_carrying(attachment: int | OuterRef) -> QuerySet[Message]:
    """Every message that points at the attachment, deleted or not: what keeps it from cleanup."""
    # In a Q: django-stubs checks filter(attachment=...) against the field and refuses the union.
    return Message.objects.filter(Q(attachment=attachment))
