"""Seed the bench database with the ORM (bulk_create, no management command) and mint access tokens.

Run by run.py as a subprocess with the messenger's settings and the bench's DATABASE_URL:

    DJANGO_SETTINGS_MODULE=messenger.settings python -m bench.seed --scenarios fanout,idle --out seed.json

Rows are written directly, not through the services: the bench measures serving, not seeding,
and 100,000 messages through message_create would take minutes. The rows are what the services
would have left behind (chat versions, message versions, read positions, direct keys).
"""

import argparse
import json
import os
from datetime import timedelta
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messenger.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from accounts.models import User  # noqa: E402
from chats.models import Chat, ChatUser, Message  # noqa: E402
from chats.services import chats_refresh_last_message  # noqa: E402

FANOUT_MEMBERS = 100
MULTI_CHATS = 100
MULTI_CHAT_SIZE = 10
IDLE_SOCKETS = 5000
REST_CHATS = 200
REST_SMALL_CHATS = 10
BIG_GROUP_MEMBERS = 1000  # the owner and 999 members
BIG_GROUP_SMALL = 100  # the same owner and the first 99 members: a group a tenth the size
BIG_GROUP_SPARES = 60  # users added (then removed again) one at a time

Role = ChatUser.Role


def token(user: User) -> str:
    return str(AccessToken.for_user(user))


def users(prefix: str, count: int) -> list[User]:
    # "!" is an unusable password: these accounts are reached with minted tokens only.
    rows = [
        User(username=f"{prefix}{i}", email=f"{prefix}{i}@bench.invalid", password="!", display_name=f"{prefix} {i}")
        for i in range(count)
    ]
    User.objects.bulk_create(rows, batch_size=2000)
    return list(User.objects.filter(username__startswith=prefix).order_by("id"))


def group(title: str, owner: User, members: list[User]) -> Chat:
    chat = Chat.objects.create(is_group=True, title=title)
    ChatUser.objects.bulk_create(
        [ChatUser(chat=chat, user=owner, role=Role.OWNER)] + [ChatUser(chat=chat, user=u) for u in members]
    )
    return chat


def seed_fanout() -> dict[str, Any]:
    people = users("bfan", FANOUT_MEMBERS + 1)
    sender, members = people[0], people[1:]
    chat = group("fan-out", sender, members)
    return {
        "chat_id": chat.pk,
        "sender": token(sender),
        "members": [token(u) for u in members],
    }


def seed_multichat() -> dict[str, Any]:
    people = users("bmc", MULTI_CHATS * MULTI_CHAT_SIZE)
    chats = []
    for index in range(MULTI_CHATS):
        block = people[index * MULTI_CHAT_SIZE : (index + 1) * MULTI_CHAT_SIZE]
        chat = group(f"multi {index}", block[0], block[1:])
        chats.append(
            {
                "chat_id": chat.pk,
                "sender": token(block[0]),
                "sender_id": block[0].pk,  # bench.db_floor sends as them, in SQL
                "members": [token(u) for u in block[1:]],
            }
        )
    return {"chats": chats}


def seed_biggroup() -> dict[str, Any]:
    """A group of 1,000 (owner first), a group of 100 of the same users, and spare users to add."""
    people = users("bbig", BIG_GROUP_MEMBERS + BIG_GROUP_SPARES)
    members, spares = people[:BIG_GROUP_MEMBERS], people[BIG_GROUP_MEMBERS:]
    owner = members[0]
    big = group("big group", owner, members[1:])
    small = group("small group", owner, members[1:BIG_GROUP_SMALL])
    return {
        "chat_id": big.pk,
        "small_chat_id": small.pk,
        "small_members": BIG_GROUP_SMALL,  # the first of "members"
        "owner": token(owner),
        "members": [token(u) for u in members],
        "spare_ids": [u.pk for u in spares],
        "spares": [token(u) for u in spares],
    }


def seed_idle(count: int, prefix: str = "bidle") -> dict[str, Any]:
    """Every idle user in one direct chat with another: presence on connect reaches one peer, as in life."""
    people = users(prefix, count)
    pairs = [(people[i], people[i + 1]) for i in range(0, count - 1, 2)]
    keys = [f"{a.pk}:{b.pk}" for a, b in pairs]
    Chat.objects.bulk_create([Chat(is_group=False, direct_key=key) for key in keys], batch_size=2000)
    chat_ids: dict[str | None, int] = {}
    for start in range(0, len(keys), 5000):
        chat_ids.update(Chat.objects.filter(direct_key__in=keys[start : start + 5000]).values_list("direct_key", "id"))
    ChatUser.objects.bulk_create(
        [ChatUser(chat_id=chat_ids[f"{a.pk}:{b.pk}"], user=u) for a, b in pairs for u in (a, b)], batch_size=5000
    )
    return {"tokens": [token(u) for u in people]}


def seed_rest(history: int) -> dict[str, Any]:
    """One user in 200 group chats (each with a last message), one of them 100,000 messages long."""
    owner, small, peer_a, peer_b = users("brest", 4)
    now = timezone.now()
    Chat.objects.bulk_create(
        [
            Chat(is_group=True, title=f"rest {i}", version=1, last_activity_at=now - timedelta(minutes=i))
            for i in range(REST_CHATS)
        ]
    )
    chats = list(Chat.objects.filter(title__startswith="rest ").order_by("id"))
    memberships: list[ChatUser] = []
    for index, chat in enumerate(chats):
        memberships += [
            ChatUser(chat=chat, user=owner, role=Role.OWNER, unread_count=1),
            ChatUser(chat=chat, user=peer_a),
            ChatUser(chat=chat, user=peer_b),
        ]
        if index < REST_SMALL_CHATS:
            memberships.append(ChatUser(chat=chat, user=small, unread_count=1))
    ChatUser.objects.bulk_create(memberships, batch_size=5000)
    Message.objects.bulk_create(
        [Message(chat=chat, sender=peer_a, content=f"last message of {chat.title}", version=1) for chat in chats[1:]],
        batch_size=5000,
    )
    history_chat = chats[0]
    start = now - timedelta(seconds=history)
    batch: list[Message] = []
    # Every fourth row between the history's belongs to another chat, as when many chats are
    # active at once: a page that walks the primary key instead of (chat, id) shows up.
    others = chats[1:]
    other_versions = dict.fromkeys((c.pk for c in others), 1)
    for version in range(1, history + 1):
        sender = peer_a if version % 3 else peer_b
        batch.append(
            Message(
                chat=history_chat,
                sender=sender,
                content=f"history message {version}: the quick brown fox jumps over the lazy dog",
                created_at=start + timedelta(seconds=version),
                version=version,
            )
        )
        if version % 3 == 0:
            other = others[version % len(others)]
            other_versions[other.pk] += 1
            batch.append(
                Message(chat=other, sender=peer_b, content=f"elsewhere {version}", version=other_versions[other.pk])
            )
        if len(batch) >= 5000:
            Message.objects.bulk_create(batch)
            batch = []
    if batch:
        Message.objects.bulk_create(batch)
    Chat.objects.filter(pk=history_chat.pk).update(version=history, last_activity_at=now)
    for chat_id, version in other_versions.items():
        Chat.objects.filter(pk=chat_id).update(version=version)
    chats_refresh_last_message([c.pk for c in chats])
    page = 50
    ids = Message.objects.filter(chat=history_chat).order_by("id").values_list("id", flat=True)
    deep_before = ids[page]  # the oldest page: `page` messages left below it, history - page above
    return {
        "user": token(owner),
        "small_user": token(small),
        "chat_count": REST_CHATS,
        "small_chat_count": REST_SMALL_CHATS,
        "history_chat_id": history_chat.pk,
        "history_size": history,
        "page": page,
        "deep_before_id": deep_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Seed the bench database.")
    parser.add_argument("--scenarios", required=True, help="comma-separated: fanout,multichat,idle,rest,biggroup")
    parser.add_argument("--history", type=int, default=100_000, help="messages in the REST history chat")
    parser.add_argument("--idle", type=int, default=IDLE_SOCKETS, help="idle users (one socket each)")
    parser.add_argument("--crowd", type=int, default=100_000, help="the crowd's idle users (one socket each)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    wanted = set(args.scenarios.split(","))
    seeded: dict[str, Any] = {}
    with transaction.atomic():
        if wanted & {"fanout", "soak"}:
            seeded["fanout"] = seed_fanout()
        if wanted & {"multichat", "soak", "crowd"}:
            seeded["multichat"] = seed_multichat()
        if wanted & {"idle", "soak"}:
            seeded["idle"] = seed_idle(args.idle)
        if "crowd" in wanted:
            seeded["crowd"] = seed_idle(args.crowd, prefix="bcrowd")
        if "biggroup" in wanted:
            seeded["biggroup"] = seed_biggroup()
    if wanted & {"rest", "soak"}:
        with transaction.atomic():
            seeded["rest"] = seed_rest(args.history)
    if connection.vendor == "mysql":
        # After a bulk load InnoDB's statistics lag behind (recomputed in the background): measured
        # right away, the planner may start a history page from accounts_user. Refresh them, as a
        # DBA would after an import.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE TABLE accounts_user, chats_chat, chats_chatuser, chats_message")
            cursor.fetchall()
    with open(args.out, "w") as out:
        json.dump(seeded, out)


if __name__ == "__main__":
    main()
