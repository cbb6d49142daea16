"""factory_boy factories: tests build their own data; fixtures/ is for demos only."""

from typing import Any

import factory
from django.utils import timezone

from accounts.models import User
from chats.models import Chat, ChatUser, Message

DEFAULT_PASSWORD = "Correct-Horse-42"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    display_name = factory.Faker("name")

    @factory.post_generation
    def password(user: User, create: bool, extracted: str | None, **kwargs: Any) -> None:
        # factory_boy passes the built User, not the factory, as the first argument.
        user.set_password(extracted or DEFAULT_PASSWORD)
        if create:
            user.save(update_fields=["password"])


class ChatFactory(factory.django.DjangoModelFactory[Chat]):
    class Meta:
        model = Chat

    is_group = True
    title = factory.Sequence(lambda n: f"Group {n}")


class ChatUserFactory(factory.django.DjangoModelFactory[ChatUser]):
    class Meta:
        model = ChatUser

    chat = factory.SubFactory(ChatFactory)
    user = factory.SubFactory(UserFactory)
    role = ChatUser.Role.MEMBER


def group_with(*members: User, owner: User | None = None, title: str = "Team") -> Chat:
    """A group with the given owner (first member if not given); the rest are plain members."""
    owner = owner or members[0]
    chat = ChatFactory.create(title=title)
    ChatUserFactory.create(chat=chat, user=owner, role=ChatUser.Role.OWNER)
    for user in members:
        if user != owner:
            ChatUserFactory.create(chat=chat, user=user)
    return chat


def message_in(chat: Chat, sender: User, content: str = "hello") -> Message:
    """Insert a message directly (taking the chat's next version), without events."""
    chat.version += 1
    chat.last_activity_at = timezone.now()
    message = Message.objects.create(chat=chat, sender=sender, content=content, version=chat.version)
    chat.last_message = message
    chat.save(update_fields=["version", "last_activity_at", "last_message"])
    return message


def direct_between(a: User, b: User) -> Chat:
    """The direct chat of a pair, built as services.chat_create would (same direct_key)."""
    low, high = sorted((a.pk, b.pk))
    chat = ChatFactory.create(is_group=False, title=None, direct_key=f"{low}:{high}")
    ChatUserFactory.create(chat=chat, user=a)
    ChatUserFactory.create(chat=chat, user=b)
    return chat


# The fields of Me (PublicUser + the caller's own email, its confirmation state and date_joined).
ME_FIELDS = frozenset(
    {
        "id",
        "username",
        "display_name",
        "is_online",
        "last_seen",
        "avatar_url",
        "email",
        "email_verified",
        "pending_email",
        "date_joined",
    }
)
