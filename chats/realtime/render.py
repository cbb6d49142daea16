"""Turning a committed transaction's events into frames: one renderer per event type, each part once.

`render_entries` reads what the events name as it was committed -- the messages in one query (none
for a new message: the service hands its row over, sender and attachment loaded), each full chat
in two, the presence of everyone shown in one lookup -- and renders each thing once:

- a message event's Message is rendered once and encoded once; the REST answer and the socket's
  `message.ack` reuse it (Entry.message, Entry.message_text);
- a chat's shared part (members, last message, title) is encoded once per event; a member's
  `chat.created` is that text with their own `my_role`, `unread_count` and `last_read_id` spliced
  in, so a 1,000-member group costs one rendering, not 1,000;
- a rename, a role change, a member coming or going is a small delta to the chat's group
  (`chat.updated` with the changed fields, `member.updated`, `member.added` with the member,
  `member.removed`), the same bytes for every socket: O(members) to deliver, never O(members²);
- a changed profile (`user.updated` with the PublicUser) is rendered and encoded once and sent, the
  same text, to each of the user's chats and to the user's own group (one query finds the chats),
  with one nonce: each process's router delivers it once to each of its sockets in any of those
  groups. O(chats) to publish, O(sockets) to deliver, whatever the size of the chats: never a
  rendering, a query or an envelope per member.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from accounts import presence
from accounts.models import User
from accounts.serializers import public_user_data
from chats import selectors
from chats.models import Chat, Message
from chats.realtime import events
from chats.realtime.envelopes import Envelope, chat_group, encode, envelope, user_group
from chats.realtime.outbox import Entry
from chats.selectors import Member
from chats.serializers import chat_shared_data, message_data


@dataclass
class Committed:
    """What the events of one transaction name, read once after the commit."""

    messages: dict[int, Message] = field(default_factory=dict)
    chats: dict[int, Chat] = field(default_factory=dict)
    titles: dict[int, tuple[bool, str | None]] = field(default_factory=dict)
    online_ids: set[int] = field(default_factory=set)
    users: dict[int, User] = field(default_factory=dict)
    user_chats: dict[int, list[int]] = field(default_factory=dict)


def read_committed(entries: list[Entry]) -> Committed:
    recorded = [entry.event for entry in entries]
    message_ids = [e.message_id for e in recorded if isinstance(e, events.MessageCreated | events.MessageUpdated)]
    whole = [e.chat_id for e in recorded if isinstance(e, events.ChatCreated | events.MemberAdded)]
    full_chats = list(dict.fromkeys(whole))
    renamed = [e.chat_id for e in recorded if isinstance(e, events.ChatRenamed)]
    committed = Committed()
    held = {entry.event.message_id: entry.row for entry in entries if isinstance(entry.row, Message)}  # type: ignore[union-attr]
    committed.messages = dict(held)
    missing = [message_id for message_id in message_ids if message_id not in held]
    if missing:
        committed.messages.update(selectors.message_queryset().in_bulk(missing))
    for chat_id in full_chats:
        chat = selectors.chat_with_members_or_none(chat_id)
        if chat is not None:
            committed.chats[chat_id] = chat
    if renamed:
        rows = Chat.objects.filter(pk__in=renamed).values_list("id", "is_group", "title")
        committed.titles = {chat_id: (is_group, title) for chat_id, is_group, title in rows}
    updated = list(dict.fromkeys(e.user_id for e in recorded if isinstance(e, events.UserUpdated)))
    if updated:
        public = ("id", "username", "display_name", "last_seen", "avatar_sha256")
        committed.users = User.objects.only(*public).in_bulk(updated)
        committed.user_chats = {user_id: selectors.chat_ids_for(user_id) for user_id in committed.users}
    shown = [user.pk for user in selectors.users_shown(committed.messages.values())]
    shown += list(committed.users)
    shown += [user.pk for user in selectors.users_in_chats(committed.chats.values())]
    committed.online_ids = presence.online_ids(shown)
    return committed


def render_entries(entries: list[Entry]) -> list[Envelope]:
    """The envelopes of a committed transaction's events, in the order they were recorded."""
    committed = read_committed(entries)
    envelopes: list[Envelope] = []
    for entry in entries:
        envelopes += RENDERERS[type(entry.event)](entry, committed)
    return envelopes


def message_payloads(message_ids: list[int]) -> dict[int, tuple[dict[str, Any], str]]:
    """Messages rendered outside an event (a repeated client_id's first message): (Message, its JSON)."""
    messages = selectors.message_queryset().in_bulk(message_ids)
    online_ids = presence.online_ids(user.pk for user in selectors.users_shown(messages.values()))
    out = {}
    for message_id, message in messages.items():
        payload = message_data(message, online_ids=online_ids)
        out[message_id] = (payload, encode(payload))
    return out


# Message changes ------------------------------------------------------------------------------


def _message_change(kind: str) -> Callable[[Entry, Committed], list[Envelope]]:
    def render(entry: Entry, committed: Committed) -> list[Envelope]:
        event = entry.event
        assert isinstance(event, events.MessageCreated | events.MessageUpdated)
        message = committed.messages.get(event.message_id)
        if message is None:
            return []  # gone since (its sender's account was deleted)
        entry.message = message_data(message, online_ids=committed.online_ids)
        entry.message_text = encode(entry.message)
        text = f'{{"type":"{kind}","chat_id":{event.chat_id},"version":{event.version},"message":{entry.message_text}}}'
        return [envelope(chat_group(event.chat_id), kind, text, chat_id=event.chat_id, version=event.version)]

    return render


def _message_deleted(entry: Entry, committed: Committed) -> list[Envelope]:
    event = entry.event
    assert isinstance(event, events.MessageDeleted)
    frame = {"type": "message.deleted", "chat_id": event.chat_id, "message_id": event.message_id}
    frame["version"] = event.version
    return [
        envelope(
            chat_group(event.chat_id), "message.deleted", encode(frame), chat_id=event.chat_id, version=event.version
        )
    ]


def _chat_read(entry: Entry, committed: Committed) -> list[Envelope]:
    event = entry.event
    assert isinstance(event, events.ChatRead)
    frame = {"type": "chat.read", "chat_id": event.chat_id, "user_id": event.user_id}
    frame["last_read_id"] = event.last_read_id
    return [envelope(chat_group(event.chat_id), "chat.read", encode(frame), chat_id=event.chat_id)]


# Chats and members ------------------------------------------------------------------------------


def chat_created_for(entry: Entry, chat: Chat, members: list[Member], online_ids: set[int]) -> list[Envelope]:
    """`chat.created` to each of `members`' user groups: the shared part encoded once, theirs spliced in.

    The shared part stays with the entry: the REST answer of the change reuses it.
    """
    entry.chat, entry.chat_shared = chat, chat_shared_data(chat, online_ids=online_ids)
    head = '{"type":"chat.created","chat":' + encode(entry.chat_shared)[:-1]  # the shared object, still open
    envelopes = []
    for member in members:
        own = (
            f',"my_role":{json.dumps(member.role)},"unread_count":{member.unread_count},'
            f'"last_read_id":{member.last_read_id},"muted":{json.dumps(member.muted)}}}}}'
        )
        group = user_group(member.user_id)
        envelopes.append(envelope(group, "chat.created", head + own, chat_id=chat.pk, chat_version=chat.version))
    return envelopes


def _chat_created(entry: Entry, committed: Committed) -> list[Envelope]:
    event = entry.event
    assert isinstance(event, events.ChatCreated)
    chat = committed.chats.get(event.chat_id)
    if chat is None:
        return []
    return chat_created_for(entry, chat, selectors.members_of(chat), committed.online_ids)


def _member_added(entry: Entry, committed: Committed) -> list[Envelope]:
    """The newcomer gets the whole chat (which subscribes their sockets); the chat hears who came."""
    event = entry.event
    assert isinstance(event, events.MemberAdded)
    chat = committed.chats.get(event.chat_id)
    member = next((m for m in selectors.members_of(chat) if m.user_id == event.user_id), None) if chat else None
    if chat is None or member is None:
        return []  # removed again since
    user = public_user_data(member.user, is_online=member.user_id in committed.online_ids)
    frame = {"type": "member.added", "chat_id": event.chat_id, "user_id": event.user_id}
    frame["member"] = {"user": user, "role": member.role}
    added = envelope(chat_group(event.chat_id), "member.added", encode(frame), chat_id=event.chat_id)
    return [*chat_created_for(entry, chat, [member], committed.online_ids), added]


def _chat_renamed(entry: Entry, committed: Committed) -> list[Envelope]:
    event = entry.event
    assert isinstance(event, events.ChatRenamed)
    if event.chat_id not in committed.titles:
        return []
    is_group, title = committed.titles[event.chat_id]
    frame = {"type": "chat.updated", "chat": {"id": event.chat_id, "is_group": is_group, "title": title}}
    return [envelope(chat_group(event.chat_id), "chat.updated", encode(frame), chat_id=event.chat_id)]


def _chat_muted(entry: Entry, committed: Committed) -> list[Envelope]:
    """To the member's own group only: their other sockets follow; the chat's frame is theirs alone."""
    event = entry.event
    assert isinstance(event, events.ChatMuted)
    frame = {"type": "chat.updated", "chat": {"id": event.chat_id, "muted": event.muted}}
    return [envelope(user_group(event.user_id), "chat.updated", encode(frame), chat_id=event.chat_id)]


def _member_removed(entry: Entry, committed: Committed) -> list[Envelope]:
    """To the chat, and to the removed user's own group (their sockets leave the chat's group)."""
    event = entry.event
    assert isinstance(event, events.MemberRemoved)
    text = encode({"type": "member.removed", "chat_id": event.chat_id, "user_id": event.user_id})
    routing = {"chat_id": event.chat_id, "user_id": event.user_id}
    return [
        envelope(chat_group(event.chat_id), "member.removed", text, **routing),
        envelope(user_group(event.user_id), "member.removed", text, **routing),
    ]


def _member_role_changed(entry: Entry, committed: Committed) -> list[Envelope]:
    event = entry.event
    assert isinstance(event, events.MemberRoleChanged)
    frame = {"type": "member.updated", "chat_id": event.chat_id, "user_id": event.user_id, "role": event.role}
    return [envelope(chat_group(event.chat_id), "member.updated", encode(frame), chat_id=event.chat_id)]


def _user_updated(entry: Entry, committed: Committed) -> list[Envelope]:
    """One rendering, one text, to the user's chats and own group: once to each socket in any of them."""
    event = entry.event
    assert isinstance(event, events.UserUpdated)
    user = committed.users.get(event.user_id)
    if user is None:
        return []  # deleted since
    text = encode({"type": "user.updated", "user": public_user_data(user, is_online=user.pk in committed.online_ids)})
    routing = {"user_id": user.pk, "nonce": uuid.uuid4().hex}  # the router's once-per-socket key
    groups = [user_group(user.pk), *(chat_group(chat_id) for chat_id in committed.user_chats[user.pk])]
    return [envelope(group, "user.updated", text, **routing) for group in groups]


RENDERERS: dict[type, Callable[[Entry, Committed], list[Envelope]]] = {
    events.MessageCreated: _message_change("message.created"),
    events.MessageUpdated: _message_change("message.updated"),
    events.MessageDeleted: _message_deleted,
    events.ChatRead: _chat_read,
    events.ChatCreated: _chat_created,
    events.ChatRenamed: _chat_renamed,
    events.ChatMuted: _chat_muted,
    events.MemberAdded: _member_added,
    events.MemberRemoved: _member_removed,
    events.MemberRoleChanged: _member_role_changed,
    events.UserUpdated: _user_updated,
}
