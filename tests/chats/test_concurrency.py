"""Concurrent writers with real threads and real transactions: versions never collide, a pair never
gets two direct chats, a client_id never makes two messages.

On MariaDB these race for the chat's row lock and the unique indexes; on SQLite (the embedded
default: WAL, BEGIN IMMEDIATE, and a test database in a file of its own, see messenger/settings.py)
the writers queue for the database's one write lock. Either way the outcome must be the same.
"""

import os
import threading
from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from chats.models import Chat, ChatUser, Message
from tests.concurrency import run_together
from tests.factories import UserFactory, group_with

pytestmark = pytest.mark.django_db(transaction=True)

# These two watch MariaDB's process list for a request waiting on the chat's row lock.
needs_mariadb = [
    pytest.mark.mysql,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL"), reason="watches MariaDB's PROCESSLIST for the waiting request"
    ),
]


def client_with_token(user) -> APIClient:
    client = APIClient()
    # The token is built here, in the test's thread: the workers only send requests.
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def test_twenty_concurrent_sends_take_twenty_distinct_increasing_versions():
    # given
    senders = [UserFactory.create() for _ in range(5)]
    chat = group_with(*senders)
    clients = [client_with_token(senders[i % 5]) for i in range(20)]

    def send(index: int) -> tuple[int, dict[str, Any]]:
        r = clients[index].post(f"/api/chats/{chat.id}/messages", {"content": f"m{index}"}, format="json")
        return r.status_code, r.json()

    # when
    results = run_together(20, send)
    # then
    assert [status for status, _ in results] == [201] * 20, results
    rows = list(Message.objects.filter(chat=chat).order_by("id").values_list("id", "version"))
    assert len(rows) == 20
    assert sorted(version for _, version in rows) == list(range(1, 21))
    assert [version for _, version in rows] == list(range(1, 21)), "ids and versions are ordered alike"
    assert Chat.objects.get(pk=chat.pk).version == 20


def test_concurrent_sends_keep_unread_counts_exact():
    # given
    writer, reader = UserFactory.create(), UserFactory.create()
    chat = group_with(writer, reader)
    client = client_with_token(writer)

    # when
    run_together(10, lambda i: client.post(f"/api/chats/{chat.id}/messages", {"content": f"m{i}"}, format="json"))
    # then
    assert ChatUser.objects.get(chat=chat, user=reader).unread_count == 10


def test_two_concurrent_creations_of_the_same_direct_chat_make_one_chat():
    # given
    a, b = UserFactory.create(), UserFactory.create()
    clients = [client_with_token(a), client_with_token(b)]
    others = [b.id, a.id]

    def create(index: int) -> tuple[int, int]:
        r = clients[index].post("/api/chats", {"is_group": False, "member_ids": [others[index]]}, format="json")
        return r.status_code, r.json()["id"]

    # when
    results = run_together(2, create)
    # then
    assert sorted(status for status, _ in results) == [200, 201], results
    assert len({chat_id for _, chat_id in results}) == 1
    assert Chat.objects.filter(is_group=False).count() == 1
    assert ChatUser.objects.filter(chat_id=results[0][1]).count() == 2


def test_many_concurrent_creations_of_the_same_direct_chat_make_one_chat():
    # given
    a, b = UserFactory.create(), UserFactory.create()
    clients = [client_with_token(a if i % 2 else b) for i in range(8)]

    def create(index: int) -> tuple[int, int]:
        other = b.id if index % 2 else a.id
        r = clients[index].post("/api/chats", {"is_group": False, "member_ids": [other]}, format="json")
        return r.status_code, r.json()["id"]

    # when
    results = run_together(8, create)
    # then
    assert sorted(status for status, _ in results) == [200] * 7 + [201], results
    assert Chat.objects.filter(is_group=False).count() == 1


def test_concurrent_retries_with_one_client_id_make_one_message():
    # given
    sender, other = UserFactory.create(), UserFactory.create()
    chat = group_with(sender, other)
    clients = [client_with_token(sender) for _ in range(6)]

    def send(index: int) -> tuple[int, int]:
        r = clients[index].post(
            f"/api/chats/{chat.id}/messages", {"content": "once", "client_id": "same-key"}, format="json"
        )
        return r.status_code, r.json()["id"]

    # when
    results = run_together(6, send)
    # then
    assert sorted(status for status, _ in results) == [200] * 5 + [201], results
    assert len({message_id for _, message_id in results}) == 1
    assert Message.objects.filter(chat=chat).count() == 1
    assert Chat.objects.get(pk=chat.pk).version == 1


def test_concurrent_deletes_of_one_message_take_one_version_and_lower_unread_counts_once():
    # given
    sender, reader, admin = UserFactory.create(), UserFactory.create(), UserFactory.create()
    chat = group_with(sender, reader, admin)
    ChatUser.objects.filter(chat=chat, user=admin).update(role=ChatUser.Role.ADMIN)
    sender_client = client_with_token(sender)
    for n in range(3):
        sender_client.post(f"/api/chats/{chat.id}/messages", {"content": f"m{n}"}, format="json")
    target = Message.objects.filter(chat=chat).order_by("id").first()
    assert target is not None
    clients = [client_with_token(sender if i % 2 else admin) for i in range(8)]

    # when
    results = run_together(8, lambda i: clients[i].delete(f"/api/chats/{chat.id}/messages/{target.id}").status_code)
    # then
    assert results == [204] * 8
    assert Chat.objects.get(pk=chat.pk).version == 4
    assert ChatUser.objects.get(chat=chat, user=reader).unread_count == 2


def test_an_edit_racing_a_delete_never_leaves_text_in_a_deleted_message():
    # given
    sender, other = UserFactory.create(), UserFactory.create()
    chat = group_with(sender, other)
    clients = [client_with_token(sender) for _ in range(10)]
    for round_ in range(5):
        message = clients[0].post(f"/api/chats/{chat.id}/messages", {"content": "x"}, format="json").json()
        path = f"/api/chats/{chat.id}/messages/{message['id']}"

        def act(index: int, path: str = path, round_: int = round_) -> int:
            if index == 0:
                return clients[index].delete(path).status_code
            return clients[index].patch(path, {"content": f"edit {round_}.{index}"}, format="json").status_code

        # when
        statuses = run_together(10, act)
        # then
        stored = Message.objects.get(pk=message["id"])
        assert stored.deleted is True
        assert stored.content == "", f"round {round_}: a deleted message holds {stored.content!r}"
        assert statuses[0] == 204
        assert set(statuses[1:]) <= {200, 400}
    versions = list(Message.objects.filter(chat=chat).values_list("version", flat=True))
    assert len(versions) == len(set(versions))


def wait_until_a_transaction_waits_for_a_lock() -> None:
    """Block until another connection is running the chat's SELECT ... FOR UPDATE (it waits for our lock)."""
    from django.db import connections

    with connections["default"].cursor() as cursor:
        for _ in range(2000):
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                "WHERE ID <> CONNECTION_ID() AND INFO LIKE 'SELECT %%chats_chat%% FOR UPDATE'"
            )
            if cursor.fetchone()[0]:
                return
            threading.Event().wait(0.005)
    raise AssertionError("the other request never waited for the chat's lock")


@needs_mariadb[0]
@needs_mariadb[1]
def test_a_member_removed_while_sending_does_not_get_the_message_in():
    # given: the owner holds the chat's lock while removing the member, whose send waits for it
    owner, member = UserFactory.create(), UserFactory.create()
    chat = group_with(owner, member)
    member_client = client_with_token(member)
    removal_started = threading.Event()

    def act(index: int) -> int:
        if index == 0:
            from chats import services

            with transaction.atomic():
                services._lock_chat(chat.id)
                removal_started.set()
                wait_until_a_transaction_waits_for_a_lock()
                ChatUser.objects.filter(chat=chat, user=member).delete()
            return 204
        removal_started.wait(timeout=30)
        return member_client.post(f"/api/chats/{chat.id}/messages", {"content": "too late"}, format="json").status_code

    # when
    statuses = run_together(2, act)
    # then
    assert statuses == [204, 404]
    assert not Message.objects.filter(chat=chat).exists()
    assert Chat.objects.get(pk=chat.pk).version == 0


@needs_mariadb[0]
@needs_mariadb[1]
def test_a_member_removed_while_marking_read_gets_404_not_500():
    # given
    owner, member = UserFactory.create(), UserFactory.create()
    chat = group_with(owner, member)
    message = client_with_token(owner).post(f"/api/chats/{chat.id}/messages", {"content": "hi"}, format="json").json()
    member_client = client_with_token(member)
    removal_started = threading.Event()

    def act(index: int) -> int:
        if index == 0:
            from chats import services

            with transaction.atomic():
                services._lock_chat(chat.id)
                removal_started.set()
                wait_until_a_transaction_waits_for_a_lock()
                ChatUser.objects.filter(chat=chat, user=member).delete()
            return 204
        removal_started.wait(timeout=30)
        return member_client.post(
            f"/api/chats/{chat.id}/read", {"message_id": message["id"]}, format="json"
        ).status_code

    # when
    statuses = run_together(2, act)
    # then
    assert statuses == [204, 404]
