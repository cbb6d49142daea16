from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from accounts.models import User


class Chat(models.Model):
    """A conversation: direct (exactly two members) or a group.

    `version` counts every change to the chat's messages; it is taken under a row lock
    on the chat (see services.message_create), so clients can catch up with ?since=.
    """

    is_group = models.BooleanField(default=False)
    title = models.CharField(max_length=128, null=True, blank=True)
    version = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    # "<lower user id>:<higher user id>" for direct chats: the unique index makes a second
    # direct chat for the same pair impossible, even when two requests race.
    direct_key = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    # The newest message, kept by services.message_create under the chat's row lock. The chat list
    # reads it instead of a per-chat subquery, which MariaDB evaluates for every chat of the user
    # before sorting them (24 ms for a user in 200 chats, against under 1 ms for the column).
    last_message = models.ForeignKey(
        "Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    members: "models.ManyToManyField[User, ChatUser]" = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ChatUser", related_name="chats"
    )

    class Meta:
        indexes = [models.Index(fields=["-last_activity_at", "-id"], name="chat_activity_idx")]

    def __str__(self) -> str:
        if self.is_group:
            return self.title or f"Group {self.pk}"
        return f"Direct chat {self.pk}"


class ChatUser(models.Model):
    """A user's membership of a chat, with their role and read position."""

    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.MEMBER)
    last_read_id = models.PositiveBigIntegerField(default=0)
    # Kept up to date by the write services so that the chat list never counts rows per chat.
    unread_count = models.PositiveIntegerField(default=0)
    # The member muted the chat for themself (their clients stay quiet about it; nothing else changes).
    muted = models.BooleanField(default=False)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chat", "user"], name="chatuser_chat_user_unique")]
        indexes = [models.Index(fields=["user", "chat"], name="chatuser_user_chat_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.chat_id} ({self.role})"

    @property
    def is_manager(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.ADMIN}


class Message(models.Model):
    """A message of a chat: text (with an attachment or not), or a system message recording a
    change to the chat (`kind` "system", `system` saying what: see services.system_message_record)."""

    class Kind(models.TextChoices):
        TEXT = "text"
        SYSTEM = "system"

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="messages")
    content = models.TextField(blank=True)
    attachment = models.ForeignKey(
        "media.Attachment", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    is_read = models.BooleanField(default=False)
    client_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False)
    version = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TEXT)
    # {action, actor_id, user_id?, title?, message_id?, role?} on a system message; null on text.
    system = models.JSONField(null=True, blank=True)
    # The message this one answers, in the same chat; shown as it is now (edited, or deleted).
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # A forward's original author and time (the first author's, through a forward of a forward); never
    # the original's chat. The sender is null once that account is gone.
    forwarded_sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    forwarded_created_at = models.DateTimeField(null=True, blank=True)
    # [{emoji, count, user_ids}] as every member sees it: kept by services.message_react from the
    # Reaction rows under the chat's lock, so that no read of a message counts its reactions.
    reactions = models.JSONField(default=list, blank=True)
    # When it was pinned (GET /api/chats/{id}/pins: most recently pinned first); null: not pinned.
    pinned_at = models.DateTimeField(null=True, blank=True)
    # The ids of the chat's members named as @username in `content`, as parsed on create and edit
    # (services._mentioned); the Mention rows are the same, for GET /api/mentions.
    mentions = models.JSONField(default=list, blank=True)
    # {url, title, description, image_url, site_name} of the first http(s) URL in `content`, stored
    # after the commit by services.message_link_preview_set once its page was fetched (chats.previews).
    link_preview = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            # A client id names one send of a sender to one chat: reused in another chat it is another
            # message. NULL client ids never collide, on SQLite and MySQL alike.
            models.UniqueConstraint(
                fields=["sender", "chat", "client_id"], name="message_sender_chat_client_id_unique"
            ),
            models.UniqueConstraint(fields=["chat", "version"], name="message_chat_version_unique"),
        ]
        indexes = [
            models.Index(fields=["chat", "-id"], name="message_history_idx"),
            models.Index(fields=["chat", "attachment"], name="message_media_idx"),
            models.Index(fields=["chat", "-pinned_at", "-id"], name="message_pins_idx"),
        ]

    def __str__(self) -> str:
        return f"Message {self.pk} in chat {self.chat_id}"


class Mention(models.Model):
    """A member named as @username in a message: what GET /api/mentions reads, newest first."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="mention_rows")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The message's chat: GET /api/mentions keeps to the chats the caller is (still) in without a join.
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="mention_message_user_unique")]
        indexes = [models.Index(fields=["user", "-message"], name="mention_user_message_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.message_id}"


class Reaction(models.Model):
    """One user's emoji on one message (Message.reactions sums them up)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reaction_rows")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=64)
    # The emoji's code points in hex ("1f44d-1f3fd"): compared and kept unique by this, because
    # MariaDB's utf8mb4_unicode_ci collation holds every emoji equal to every other.
    key = models.CharField(max_length=256, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user", "key"], name="reaction_message_user_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user_id} on {self.message_id}"

    @staticmethod
    def key_of(emoji: str) -> str:
        return "-".join(f"{ord(char):x}" for char in emoji)


class LinkPreview(models.Model):
    """One URL's preview as last fetched, for every message that names it (chats.previews.jobs):
    a second message with the URL fetches nothing while `fetched_at` is within LINK_PREVIEW_CACHE_SECONDS."""

    # The URL's SHA-256: MariaDB cannot index a URL of any length in utf8mb4.
    url_hash = models.CharField(max_length=64, unique=True)
    url = models.TextField()
    # Null: the page had nothing to show, or could not (or may not) be fetched; that is cached too.
    data = models.JSONField(null=True, blank=True)
    fetched_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.url
