"""What a service says happened: small typed events made of ids, recorded in the transaction's outbox.

An event names what changed, never how a client sees it: chats.realtime.render turns the events
of a committed transaction into frames, reading the rows as they were committed. Every change to
a chat's messages carries the chat's `version` it took under the chat's row lock.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MessageChange:
    """A change to a chat's messages: it took the chat's next `version`."""

    chat_id: int
    message_id: int
    version: int


@dataclass(frozen=True, slots=True)
class MessageCreated(MessageChange):
    pass


@dataclass(frozen=True, slots=True)
class MessageUpdated(MessageChange):
    pass


@dataclass(frozen=True, slots=True)
class MessageDeleted(MessageChange):
    pass


@dataclass(frozen=True, slots=True)
class ChatRead:
    chat_id: int
    user_id: int
    last_read_id: int


@dataclass(frozen=True, slots=True)
class ChatCreated:
    """A chat every member learns of (a new group or direct chat)."""

    chat_id: int


@dataclass(frozen=True, slots=True)
class ChatRenamed:
    chat_id: int


@dataclass(frozen=True, slots=True)
class ChatMuted:
    """A member muted or unmuted a chat for themself: their own sockets hear of it, no one else's."""

    chat_id: int
    user_id: int
    muted: bool


@dataclass(frozen=True, slots=True)
class MemberAdded:
    chat_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    chat_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class MemberRoleChanged:
    chat_id: int
    user_id: int
    role: str


@dataclass(frozen=True, slots=True)
class UserUpdated:
    """What others see of a user changed (display name, avatar): everyone sharing a chat with them hears it."""

    user_id: int


Event = (
    MessageCreated
    | MessageUpdated
    | MessageDeleted
    | ChatRead
    | ChatCreated
    | ChatRenamed
    | ChatMuted
    | MemberAdded
    | MemberRemoved
    | MemberRoleChanged
    | UserUpdated
)
