"""REST shapes of chats and messages. Input serializers validate; output serializers render.

Output serializers read only what the selectors prefetched: context["user"] is the viewer,
context["online_ids"] the set of online user ids for the page (see selectors.presence_context).
"""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts import presence
from accounts.models import User
from accounts.serializers import PublicUserSerializer, public_user_data
from chats import search
from chats.models import Chat, ChatUser, Message
from chats.selectors import Member, MemberUser, members_of
from media.models import Attachment
from media.serializers import AttachmentSerializer, attachment_data
from messenger.rendering import current_zone, datetime_text

# The largest id or version a row can have (a signed 64-bit column). A number past it names nothing,
# and SQLite cannot even bind it: input is refused at the edge rather than overflowing in a query.
MAX_ID = 2**63 - 1


def _online(user_id: int, online_ids: set[int] | None, visible_ids: set[int] | None = None) -> bool | None:
    """Whether the user is online; None (presence hidden) outside `visible_ids` when given: a sender
    who shares no chat with the viewer any more (accounts.selectors.presence_context)."""
    if visible_ids is not None and user_id not in visible_ids:
        return None
    if online_ids is None:
        return user_id in presence.online_ids([user_id])
    return user_id in online_ids


# How much of the text a reply quotes from the message it answers.
QUOTE_LENGTH = 200


def reply_data(original: Message, *, online_ids: set[int] | None, visible_ids: set[int] | None) -> dict[str, Any]:
    """ReplySerializer's output: the answered message as it is now (its current text; nothing once deleted)."""
    attachment = None if original.deleted else original.attachment
    return {
        "id": original.pk,
        "sender": public_user_data(original.sender, is_online=_online(original.sender_id, online_ids, visible_ids)),
        "content": "" if original.deleted else original.content[:QUOTE_LENGTH],
        "attachment": attachment_data(attachment) if attachment is not None else None,
        "deleted": original.deleted,
    }


def message_data(
    message: Message, *, online_ids: set[int] | None, visible_ids: set[int] | None = None
) -> dict[str, Any]:
    """MessageSerializer's output, built directly (see messenger.rendering).

    Reads the message's sender, attachment and the message it replies to with theirs, all joined in
    by the selectors (selectors.MESSAGE_RELATED).
    """
    attachment = None if message.deleted else message.attachment
    original = message.reply_to if message.reply_to_id is not None else None
    return {
        "id": message.pk,
        "chat_id": message.chat_id,
        "sender": public_user_data(message.sender, is_online=_online(message.sender_id, online_ids, visible_ids)),
        "content": message.content,
        "attachment": attachment_data(attachment) if attachment is not None else None,
        "attachment_url": attachment.url if attachment is not None else None,
        "is_read": message.is_read,
        "client_id": message.client_id,
        "created_at": datetime_text(message.created_at),
        "edited_at": datetime_text(message.edited_at),
        "deleted": message.deleted,
        "version": message.version,
        "kind": message.kind,
        "system": message.system,
        "reply_to": reply_data(original, online_ids=online_ids, visible_ids=visible_ids) if original else None,
        "forwarded_from": forwarded_data(message),
        "reactions": [] if message.deleted else message.reactions,
        "pinned": message.pinned_at is not None,
        "mentions": [] if message.deleted else message.mentions,
        "link_preview": None if message.deleted else message.link_preview,
    }


def viewer_first(data: dict[str, Any], viewer_id: int, hidden: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A rendered Message as `viewer_id` sees it: their id first among the reactors of each emoji
    they reacted with. A Message is rendered once for every member (its `reactions` name the first
    reactors); each REST answer puts its caller first here, and a client puts itself first in what a
    socket brings. `hidden`: emoji the viewer reacted with beyond the reactors named
    (selectors.reactions_beyond_shown). Returns a new dict; the shared rendering is left alone."""
    reactions = data.get("reactions")
    if not reactions:
        return data
    mine = []
    for reaction in reactions:
        user_ids = reaction["user_ids"]
        if viewer_id in user_ids:
            user_ids = [viewer_id, *(user_id for user_id in user_ids if user_id != viewer_id)]
        elif reaction["emoji"] in hidden:
            user_ids = [viewer_id, *user_ids[: len(user_ids) - 1]]
        mine.append({**reaction, "user_ids": user_ids})
    return {**data, "reactions": mine}


def forwarded_data(message: Message) -> dict[str, Any] | None:
    """ForwardedFromSerializer's output: who wrote a forward's original, and when (never where).

    The author's presence is never shown: they may share no chat with the viewers of the copy."""
    if message.forwarded_created_at is None:
        return None
    author = message.forwarded_sender if message.forwarded_sender_id is not None else None
    return {
        "sender": public_user_data(author, is_online=None) if author is not None else None,
        "created_at": datetime_text(message.forwarded_created_at),
    }


def chat_shared_data(chat: Chat, *, online_ids: set[int] | None) -> dict[str, Any]:
    """The part of a Chat that every member sees alike (chat_data adds the viewer's own fields).

    Reads only what the selectors loaded: the members (selectors.attach_members) and
    chat.last_message with its sender and attachment (select_related).
    """
    zone = current_zone()
    members = [
        {"user": public_user_data(m.user, is_online=_online(m.user_id, online_ids), zone=zone), "role": m.role}
        for m in members_of(chat)
    ]
    last = chat.last_message
    return {
        "id": chat.pk,
        "is_group": chat.is_group,
        "title": chat.title,
        "members": members,
        "last_message": message_data(last, online_ids=online_ids) if last is not None else None,
        "version": chat.version,
        "created_at": datetime_text(chat.created_at),
    }


def chat_data(chat: Chat, *, viewer: User | MemberUser, online_ids: set[int] | None) -> dict[str, Any]:
    """ChatSerializer's output for one viewer, built directly (see messenger.rendering)."""
    mine: Member | None = next((m for m in members_of(chat) if m.user_id == viewer.pk), None)
    shared = chat_shared_data(chat, online_ids=online_ids)
    if shared["last_message"] is not None:
        shared["last_message"] = viewer_first(shared["last_message"], viewer.pk)
    return {
        **shared,
        "my_role": mine.role if mine else None,
        "unread_count": mine.unread_count if mine else 0,
        "last_read_id": mine.last_read_id if mine else 0,
        "muted": mine.muted if mine else False,
    }


def media_item_data(
    message: Message, *, online_ids: set[int] | None, visible_ids: set[int] | None = None
) -> dict[str, Any]:
    """MediaItemSerializer's output, built directly (see messenger.rendering)."""
    attachment = message.attachment
    return {
        "message_id": message.pk,
        "chat_id": message.chat_id,
        "sender": public_user_data(message.sender, is_online=_online(message.sender_id, online_ids, visible_ids)),
        "attachment": attachment_data(attachment) if attachment is not None else None,
    }


class MemberSerializer(serializers.ModelSerializer[ChatUser]):
    user = PublicUserSerializer(read_only=True)

    class Meta:
        model = ChatUser
        fields = ["user", "role"]
        read_only_fields = fields


SYSTEM_ACTIONS = [
    "chat.created",
    "chat.renamed",
    "member.added",
    "member.removed",
    "member.left",
    "role.changed",
    "message.pinned",
]


class SystemEventSerializer(serializers.Serializer[Any]):
    """What a system message records: `actor_id` did `action` (to `user_id`, naming `title`, ...)."""

    action = serializers.ChoiceField(choices=SYSTEM_ACTIONS)
    actor_id = serializers.IntegerField()
    user_id = serializers.IntegerField(required=False, help_text="member.added/removed/left, role.changed")
    title = serializers.CharField(required=False, help_text="chat.created, chat.renamed: the new title")
    message_id = serializers.IntegerField(required=False, help_text="message.pinned: the pinned message")
    role = serializers.ChoiceField(
        choices=ChatUser.Role.choices, required=False, help_text="role.changed: the member's new role"
    )


class ReplySerializer(serializers.Serializer[Any]):
    """The message a reply answers, as it is now."""

    id = serializers.IntegerField()
    sender = PublicUserSerializer()
    content = serializers.CharField(help_text="Its current text, at most the first 200 characters; empty once deleted")
    attachment = AttachmentSerializer(allow_null=True)
    deleted = serializers.BooleanField()


class ForwardedFromSerializer(serializers.Serializer[Any]):
    """A forward's original: its author (null once that account is gone; presence never shown) and time."""

    sender = PublicUserSerializer(allow_null=True)
    created_at = serializers.DateTimeField()


class ReactionSerializer(serializers.Serializer[Any]):
    emoji = serializers.CharField()
    count = serializers.IntegerField(help_text="How many members reacted with it")
    user_ids = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Up to 50 reactors, oldest first; in a REST answer the caller first when they reacted "
        "(a socket's frame is the same for every member: a client puts its own id first)",
    )


class LinkPreviewSerializer(serializers.Serializer[Any]):
    """What the page of a message's first http(s) URL says about itself (Open Graph, else <title>),
    fetched by the server after the message was stored (LINK_PREVIEWS)."""

    url = serializers.URLField(help_text="The URL as the message names it")
    title = serializers.CharField(allow_null=True, help_text="og:title, else the page's <title>")
    description = serializers.CharField(allow_null=True, help_text="og:description, else the description meta")
    image_url = serializers.URLField(
        allow_null=True,
        help_text="og:image as the page names it (on the page's server: a client that loads it tells that "
        "server the viewer's address; the app's client does not show it)",
    )
    site_name = serializers.CharField(allow_null=True, help_text="og:site_name")


class MessageSerializer(serializers.ModelSerializer[Message]):
    chat_id = serializers.IntegerField(read_only=True)
    sender = PublicUserSerializer(read_only=True)
    attachment = serializers.SerializerMethodField()
    attachment_url = serializers.SerializerMethodField()
    kind = serializers.ChoiceField(choices=Message.Kind.choices, read_only=True)
    system = serializers.SerializerMethodField(help_text="What a system message records; null on text messages")
    reply_to = serializers.SerializerMethodField(help_text="The message this one answers, as it is now; or null")
    forwarded_from = serializers.SerializerMethodField(help_text="A forward's original author and time; or null")
    reactions = ReactionSerializer(many=True, read_only=True, help_text="Ordered by first use")
    pinned = serializers.SerializerMethodField()
    mentions = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="Ids of the chat's members named as @username in content (case-insensitive)",
    )
    link_preview = LinkPreviewSerializer(
        read_only=True,
        allow_null=True,
        help_text="The first http(s) URL's page, once fetched (a `message.updated` brings it); null before, "
        "when the page had nothing to show, when it may not be fetched, and with LINK_PREVIEWS=false",
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "chat_id",
            "sender",
            "content",
            "attachment",
            "attachment_url",
            "is_read",
            "client_id",
            "created_at",
            "edited_at",
            "deleted",
            "version",
            "kind",
            "system",
            "reply_to",
            "forwarded_from",
            "reactions",
            "pinned",
            "mentions",
            "link_preview",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.BooleanField())
    def get_pinned(self, message: Message) -> bool:
        return message.pinned_at is not None

    @extend_schema_field(ForwardedFromSerializer(allow_null=True))
    def get_forwarded_from(self, message: Message) -> dict[str, Any] | None:
        return forwarded_data(message)

    @extend_schema_field(ReplySerializer(allow_null=True))
    def get_reply_to(self, message: Message) -> dict[str, Any] | None:
        original = message.reply_to
        return reply_data(original, online_ids=self.context.get("online_ids"), visible_ids=None) if original else None

    @extend_schema_field(SystemEventSerializer(allow_null=True))
    def get_system(self, message: Message) -> dict[str, Any] | None:
        return message.system

    @extend_schema_field(AttachmentSerializer(allow_null=True))
    def get_attachment(self, message: Message) -> dict[str, Any] | None:
        if message.deleted or message.attachment is None:
            return None
        return dict(AttachmentSerializer(message.attachment, context=self.context).data)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_attachment_url(self, message: Message) -> str | None:
        if message.deleted or message.attachment is None:
            return None
        return message.attachment.url

    def to_representation(self, message: Message) -> dict[str, Any]:
        return message_data(message, online_ids=self.context.get("online_ids"))


class ChatSerializer(serializers.ModelSerializer[Chat]):
    """A chat as context["user"] sees it (my_role, unread_count, last_read_id are theirs)."""

    members = serializers.SerializerMethodField()
    my_role = serializers.SerializerMethodField()
    last_message = serializers.SerializerMethodField()
    unread_count = serializers.SerializerMethodField()
    last_read_id = serializers.SerializerMethodField()
    muted = serializers.SerializerMethodField(help_text="The caller muted this chat (for themself)")

    class Meta:
        model = Chat
        fields = [
            "id",
            "is_group",
            "title",
            "members",
            "my_role",
            "last_message",
            "unread_count",
            "last_read_id",
            "version",
            "created_at",
            "muted",
        ]
        read_only_fields = fields

    def _mine(self, chat: Chat) -> Member | None:
        viewer = self.context["user"]
        for membership in members_of(chat):
            if membership.user_id == viewer.pk:
                return membership
        return None

    # The method fields below are what DRF's generic rendering calls (the schema and the tests
    # that hold chat_data to it); responses are rendered by chat_data.
    @extend_schema_field(MemberSerializer(many=True))
    def get_members(self, chat: Chat) -> list[dict[str, Any]]:
        members: Any = MemberSerializer(many=True, context=self.context)
        return list(members.to_representation(members_of(chat)))

    @extend_schema_field(serializers.ChoiceField(choices=ChatUser.Role.choices, allow_null=True))
    def get_my_role(self, chat: Chat) -> str | None:
        mine = self._mine(chat)
        return mine.role if mine else None

    @extend_schema_field(MessageSerializer(allow_null=True))
    def get_last_message(self, chat: Chat) -> dict[str, Any] | None:
        message = chat.last_message
        if message is None:
            return None
        return dict(MessageSerializer(context=self.context).to_representation(message))

    @extend_schema_field(serializers.IntegerField())
    def get_unread_count(self, chat: Chat) -> int:
        mine = self._mine(chat)
        return mine.unread_count if mine else 0

    @extend_schema_field(serializers.IntegerField())
    def get_last_read_id(self, chat: Chat) -> int:
        mine = self._mine(chat)
        return mine.last_read_id if mine else 0

    @extend_schema_field(serializers.BooleanField())
    def get_muted(self, chat: Chat) -> bool:
        mine = self._mine(chat)
        return mine.muted if mine else False

    def to_representation(self, chat: Chat) -> dict[str, Any]:
        return chat_data(chat, viewer=self.context["user"], online_ids=self.context.get("online_ids"))


# Input shapes -------------------------------------------------------------------------


class ChatCreateSerializer(serializers.Serializer[Any]):
    is_group = serializers.BooleanField()
    title = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=1000)
    member_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        allow_empty=True,
        max_length=settings.GROUP_MAX_MEMBERS,
    )


class ChatUpdateSerializer(serializers.Serializer[Any]):
    """PATCH /api/chats/{id}: a new title (group owner/admin), `muted` (any member, for themself), or both."""

    title = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    muted = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError({"title": ["Give a title, muted, or both."]})
        return attrs


class MemberAddSerializer(serializers.Serializer[Any]):
    user_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)


# The roles an owner can give; ownership itself never changes hands through PATCH.
ASSIGNABLE_ROLES = [(value, label) for value, label in ChatUser.Role.choices if value != ChatUser.Role.OWNER]


class MemberRoleSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=ASSIGNABLE_ROLES)


class MessageCreateSerializer(serializers.Serializer[Any]):
    content = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=100_000)
    attachment_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID)
    client_id = serializers.CharField(required=False, allow_null=True, max_length=64)
    reply_to_id = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_ID, help_text="A message of the same chat"
    )
    forward_of_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_ID,
        help_text="Forward this message (one of any chat of the caller): its text and attachment are copied; "
        "content and attachment_id must be left out",
    )


class MessageSendSerializer(MessageCreateSerializer):
    """`message.send` over a socket: the REST body's fields and rules, plus its chat (implied on
    /ws/chat/<id>/) and a required client_id (the `message.ack` names it)."""

    chat_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    client_id = serializers.CharField(max_length=64)


class ChatFrameSerializer(serializers.Serializer[Any]):
    """A `typing` frame: its chat (implied on /ws/chat/<id>/)."""

    chat_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


class MessageEditSerializer(serializers.Serializer[Any]):
    content = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000)


class ReadSerializer(serializers.Serializer[Any]):
    message_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class PinSerializer(serializers.Serializer[Any]):
    message_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class ReadFrameSerializer(ReadSerializer):
    """A `read` frame: POST /api/chats/{id}/read's body, plus its chat."""

    chat_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


class ReadResultSerializer(serializers.Serializer[Any]):
    last_read_id = serializers.IntegerField()
    unread_count = serializers.IntegerField()


class MessagePageQuerySerializer(serializers.Serializer[Any]):
    before = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    since = serializers.IntegerField(required=False, min_value=0, max_value=MAX_ID)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=settings.MESSAGE_PAGE_MAX, default=50)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "before" in attrs and "since" in attrs:
            raise serializers.ValidationError({"since": ["Use either before or since, not both."]})
        return attrs


class MessageSearchQuerySerializer(serializers.Serializer[Any]):
    """GET /api/search/messages: `q` is validated and folded here (chats.search.fold)."""

    q = serializers.CharField(max_length=search.MAX_QUERY_LENGTH, trim_whitespace=True)
    chat_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    before = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=settings.MESSAGE_PAGE_MAX, default=50)

    def validate_q(self, value: str) -> str:
        folded = search.fold(value)
        # The index holds trigrams: fewer characters than a trigram can match nothing precisely.
        if len(value) < search.MIN_QUERY_LENGTH or len(folded) < search.MIN_QUERY_LENGTH:
            raise serializers.ValidationError(f"Type at least {search.MIN_QUERY_LENGTH} characters to search.")
        return folded


class MentionPageQuerySerializer(serializers.Serializer[Any]):
    before = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=settings.MESSAGE_PAGE_MAX, default=50)


class MessagePageSerializer(serializers.Serializer[Any]):
    results = MessageSerializer(many=True)
    has_more = serializers.BooleanField()


class MediaItemSerializer(serializers.ModelSerializer[Message]):
    message_id = serializers.IntegerField(source="id", read_only=True)
    chat_id = serializers.IntegerField(read_only=True)
    sender = PublicUserSerializer(read_only=True)
    attachment = AttachmentSerializer(read_only=True)

    class Meta:
        model = Message
        fields = ["message_id", "chat_id", "sender", "attachment"]
        read_only_fields = fields

    def to_representation(self, message: Message) -> dict[str, Any]:
        return media_item_data(message, online_ids=self.context.get("online_ids"))


class MediaQuerySerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=Attachment.Kind.choices, default=Attachment.Kind.IMAGE)


class MediaFeedQuerySerializer(MediaQuerySerializer):
    before = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=settings.MESSAGE_PAGE_MAX, default=30)


class MediaPageSerializer(serializers.Serializer[Any]):
    results = MediaItemSerializer(many=True)
    next = serializers.URLField(allow_null=True)
