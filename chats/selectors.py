"""Reads beyond a one-liner: each is a fixed number of queries, whatever the data's size."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import F, OuterRef, Prefetch, QuerySet, Subquery

from accounts import presence
from accounts.models import User
from chats.models import Chat, ChatUser, Message


def _memberships() -> Prefetch:
    return Prefetch("memberships", queryset=ChatUser.objects.select_related("user").order_by("id"))


def chats_for(user: User) -> QuerySet[Chat]:
    """The user's chats, most recent activity first, with members and last message id."""
    last_id = Message.objects.filter(chat=OuterRef("pk")).order_by("-id").values("id")[:1]
    return (
        Chat.objects.filter(memberships__user=user)
        .annotate(last_message_id=Subquery(last_id))
        .prefetch_related(_memberships())
        .order_by(F("last_activity_at").desc(), F("id").desc())
    )


def attach_last_messages(chats: Iterable[Chat]) -> list[Chat]:
    """Set chat.last_message for a page of chats from chats_for, in one query."""
    page = list(chats)
    ids = [c.last_message_id for c in page if getattr(c, "last_message_id", None)]  # type: ignore[attr-defined]
    by_id = {m.pk: m for m in message_queryset().filter(pk__in=ids)}
    for chat in page:
        chat.last_message = by_id.get(getattr(chat, "last_message_id", None) or 0)  # type: ignore[attr-defined]
    return page


def chat_detail(*, chat_id: int, user: User) -> Chat | None:
    chat = chats_for(user).filter(pk=chat_id).first()
    if chat is None:
        return None
    return attach_last_messages([chat])[0]


def chat_with_members(chat_id: int) -> Chat:
    """A chat with all memberships prefetched, for rendering it to each member in turn."""
    chat = Chat.objects.prefetch_related(_memberships()).get(pk=chat_id)
    chat.last_message = message_queryset().filter(chat=chat).order_by("-id").first()  # type: ignore[attr-defined]
    return chat


def member_ids(chat_id: int) -> list[int]:
    return list(ChatUser.objects.filter(chat_id=chat_id).values_list("user_id", flat=True))


def chat_ids_for(user_id: int) -> list[int]:
    return list(ChatUser.objects.filter(user_id=user_id).values_list("chat_id", flat=True))


def message_queryset() -> QuerySet[Message]:
    return Message.objects.select_related("sender", "attachment__blob")


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


def media_page_queryset(chat_id: int) -> QuerySet[Message]:
    """Messages of a chat that carry an image attachment, newest first."""
    return (
        Message.objects.filter(chat_id=chat_id, deleted=False, attachment__isnull=False)
        .select_related("sender", "attachment__blob")
        .order_by("-id")
    )


def presence_context(users: Iterable[User]) -> dict[str, set[int]]:
    """One presence lookup for a whole page of users, for the serializers' context."""
    return {"online_ids": presence.online_ids(u.pk for u in users)}


def users_in_chats(chats: Iterable[Chat]) -> list[User]:
    users: list[User] = []
    for chat in chats:
        users.extend(m.user for m in chat.memberships.all())
        last = getattr(chat, "last_message", None)
        if last is not None:
            users.append(last.sender)
    return users


def user_search(*, query: str, exclude: User | None = None) -> QuerySet[User]:
    """Users whose username or display name contains the query; prefix matches first."""
    from django.db.models import Case, IntegerField, Q, Value, When

    term = query.strip()
    queryset = User.objects.filter(is_active=True).filter(Q(username__icontains=term) | Q(display_name__icontains=term))
    if exclude is not None:
        queryset = queryset.exclude(pk=exclude.pk)
    return queryset.annotate(
        rank=Case(
            When(username__istartswith=term, then=Value(0)),
            When(display_name__istartswith=term, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
    ).order_by("rank", "username", "id")
