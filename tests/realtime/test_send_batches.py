"""A socket's queued sends are stored in one transaction (socket_work.message_send_many).

Called directly, in a worker-thread-like sync context: `done` is what the consumer hands each
reply to, in frame order, after the commit.
"""

import json
from typing import Any

import pytest
from django.db import OperationalError

from chats import events, services, socket_work
from chats.models import Message
from tests.factories import UserFactory, group_with

pytestmark = pytest.mark.django_db(transaction=True)


def send(chat_id: int, client_id: str, content: str = "hello") -> dict[str, Any]:
    return {"chat_id": chat_id, "content": content, "client_id": client_id, "attachment_id": None}


def test_a_batch_commits_once_before_any_reply(user, chat):
    # given
    requests = [send(chat.id, f"c{i}", f"m{i}") for i in range(5)]
    stored_at_each_reply: list[int] = []
    replies: list[dict[str, Any]] = []

    def done(envelopes, reply):
        stored_at_each_reply.append(Message.objects.filter(chat=chat).count())
        replies.append(reply)

    # when
    socket_work.message_send_many(user=user, requests=requests, done=done)
    # then: the first reply already sees every message committed
    assert stored_at_each_reply == [5] * 5
    assert [r["client_id"] for r in replies] == [f"c{i}" for i in range(5)]
    assert all(r["type"] == "message.ack" for r in replies)


def test_a_refused_send_in_a_batch_rolls_back_alone(user, other_user, chat):
    # given: the middle one names a chat the sender is not in
    elsewhere = group_with(other_user, UserFactory.create())
    requests = [send(chat.id, "c0"), send(elsewhere.id, "c1"), send(chat.id, "c2")]
    replies: list[dict[str, Any]] = []
    # when
    socket_work.message_send_many(user=user, requests=requests, done=lambda envelopes, reply: replies.append(reply))
    # then
    assert [(r["type"], r["client_id"]) for r in replies] == [
        ("message.ack", "c0"),
        ("error", "c1"),
        ("message.ack", "c2"),
    ]
    assert replies[1]["code"] == "not_found"
    assert list(Message.objects.order_by("id").values_list("client_id", flat=True)) == ["c0", "c2"]
    assert not Message.objects.filter(chat=elsewhere).exists()


def test_events_of_a_batch_are_published_in_frame_order(user, chat):
    # given
    requests = [send(chat.id, f"c{i}", f"m{i}") for i in range(3)]
    published: list[tuple[str, dict[str, Any]]] = []
    # when
    socket_work.message_send_many(
        user=user, requests=requests, done=lambda envelopes, reply: published.extend(envelopes)
    )
    # then
    created = [json.loads(envelope["text"]) for _, envelope in published if envelope["event"] == "message.created"]
    assert [event["message"]["content"] for event in created] == ["m0", "m1", "m2"]


def test_when_the_shared_transaction_fails_the_sends_are_stored_one_by_one(user, chat, monkeypatch):
    # given: the database fails the batch's third statement of a send once (as a deadlock would)
    real = services.message_create
    calls = {"n": 0}

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OperationalError(1213, "Deadlock found when trying to get lock")
        return real(**kwargs)

    monkeypatch.setattr(services, "message_create", flaky)
    requests = [send(chat.id, f"c{i}", f"m{i}") for i in range(4)]
    replies: list[dict[str, Any]] = []
    # when
    socket_work.message_send_many(user=user, requests=requests, done=lambda envelopes, reply: replies.append(reply))
    # then: nothing of the failed attempt stands, everything is stored once and acknowledged in order
    assert [(r["type"], r["client_id"]) for r in replies] == [("message.ack", f"c{i}") for i in range(4)]
    assert list(Message.objects.order_by("id").values_list("client_id", flat=True)) == [f"c{i}" for i in range(4)]
    assert [r["message"]["version"] for r in replies] == [1, 2, 3, 4]


def test_a_socket_sender_is_shown_online_without_a_presence_lookup(user, chat, monkeypatch):
    # given: a sender on an open socket is online by definition; asking Redis would be a round trip per message
    def no_lookup(user_ids):
        raise AssertionError("presence was looked up")

    monkeypatch.setattr(events.presence_store, "online_ids", no_lookup)
    replies: list[dict[str, Any]] = []
    # when
    socket_work.message_send_many(
        user=user, requests=[send(chat.id, "c0")], done=lambda e, reply: replies.append(reply)
    )
    # then
    assert replies[0]["message"]["sender"]["is_online"] is True
