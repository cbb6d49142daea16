"""The sockets' queued sends are stored in one transaction (socket_work.store_sends).

Called directly, as the hub's worker-thread hop calls it: a batch holds, for each socket with
sends waiting, its user and its requests; the answer is the events to publish and each socket's
replies in frame order.
"""

import json
from typing import Any

import pytest
from django.db import OperationalError, connection

from chats import events, services, socket_work
from chats.models import Message
from tests.factories import UserFactory, group_with

pytestmark = pytest.mark.django_db(transaction=True)


def send(chat_id: int, client_id: str, content: str = "hello") -> dict[str, Any]:
    return {"chat_id": chat_id, "content": content, "client_id": client_id, "attachment_id": None}


def kinds(replies: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    assert replies is not None
    return [(reply["type"], reply["client_id"]) for reply in replies]


def test_sends_of_several_sockets_commit_once_and_answer_each_socket_in_frame_order(
    user, other_user, chat, monkeypatch
):
    # given: two sockets (two senders) with sends waiting
    batch = [
        (user, [send(chat.id, "u0", "a"), send(chat.id, "u1", "b")]),
        (other_user, [send(chat.id, "o0", "c")]),
    ]
    commits: list[int] = []
    real_commit = connection.commit

    def counted_commit() -> None:
        commits.append(1)
        real_commit()

    monkeypatch.setattr(connection, "commit", counted_commit)
    # when
    envelopes, replies = socket_work.store_sends(batch)
    # then
    assert [kinds(r) for r in replies] == [[("message.ack", "u0"), ("message.ack", "u1")], [("message.ack", "o0")]]
    assert list(Message.objects.order_by("id").values_list("client_id", flat=True)) == ["u0", "u1", "o0"]
    assert len(commits) == 1  # one transaction for the three
    created = [json.loads(e["text"]) for _, e in envelopes if e["event"] == "message.created"]
    assert [event["message"]["content"] for event in created] == ["a", "b", "c"]


def test_a_refused_send_in_a_batch_rolls_back_alone(user, other_user, chat):
    # given: the middle one names a chat the sender is not in
    elsewhere = group_with(other_user, UserFactory.create())
    batch = [(user, [send(chat.id, "c0"), send(elsewhere.id, "c1"), send(chat.id, "c2")])]
    # when
    _, replies = socket_work.store_sends(batch)
    # then
    assert kinds(replies[0]) == [("message.ack", "c0"), ("error", "c1"), ("message.ack", "c2")]
    assert replies[0][1]["code"] == "not_found"  # type: ignore[index]
    assert list(Message.objects.order_by("id").values_list("client_id", flat=True)) == ["c0", "c2"]
    assert not Message.objects.filter(chat=elsewhere).exists()


def test_when_the_shared_transaction_fails_the_sends_are_stored_one_by_one(user, other_user, chat, monkeypatch):
    # given: the database fails the third send once (as a deadlock between two batches would)
    real = services.message_create
    calls = {"n": 0}

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OperationalError(1213, "Deadlock found when trying to get lock")
        return real(**kwargs)

    monkeypatch.setattr(services, "message_create", flaky)
    batch = [(user, [send(chat.id, "u0"), send(chat.id, "u1")]), (other_user, [send(chat.id, "o0")])]
    # when
    envelopes, replies = socket_work.store_sends(batch)
    # then: nothing of the failed attempt stands; everything is stored once and acknowledged in order
    assert [kinds(r) for r in replies] == [[("message.ack", "u0"), ("message.ack", "u1")], [("message.ack", "o0")]]
    assert list(Message.objects.order_by("id").values_list("client_id", flat=True)) == ["u0", "u1", "o0"]
    assert [r["message"]["version"] for socket in replies for r in socket or []] == [1, 2, 3]
    assert len([e for _, e in envelopes if e["event"] == "message.created"]) == 3


def test_a_socket_whose_send_fails_on_the_database_gets_none_and_the_others_their_replies(
    user, other_user, chat, monkeypatch
):
    # given: one sender's message fails on the database, alone and again
    real = services.message_create

    def failing_for_user(**kwargs):
        if kwargs["sender"] == user:
            raise OperationalError(2006, "MySQL server has gone away")
        return real(**kwargs)

    monkeypatch.setattr(services, "message_create", failing_for_user)
    batch = [(user, [send(chat.id, "u0")]), (other_user, [send(chat.id, "o0")])]
    # when
    _, replies = socket_work.store_sends(batch)
    # then: that socket is closed by the consumer (None); the other is answered
    assert replies[0] is None
    assert kinds(replies[1]) == [("message.ack", "o0")]


def test_a_socket_sender_is_shown_online_without_a_presence_lookup(user, chat, monkeypatch):
    # given: a sender on an open socket is online by definition; asking Redis would be a round trip per message
    def no_lookup(user_ids):
        raise AssertionError("presence was looked up")

    monkeypatch.setattr(events.presence_store, "online_ids", no_lookup)
    # when
    _, replies = socket_work.store_sends([(user, [send(chat.id, "c0")])])
    # then
    assert replies[0][0]["message"]["sender"]["is_online"] is True  # type: ignore[index]
