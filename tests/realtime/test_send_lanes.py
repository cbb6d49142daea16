"""The sockets' sends, stored by chat (chats.realtime.sends): a batch a transaction, a failing send alone,
chats side by side, one chat's sends in order."""

import asyncio
import json
from typing import Any

import pytest
from django.db import OperationalError, connection

from accounts import presence
from chats import services
from chats.models import Message
from chats.realtime import sends
from tests.factories import UserFactory, group_with

pytestmark = pytest.mark.django_db(transaction=True)


def send(client_id: str, content: str = "hello") -> dict[str, Any]:
    return {"content": content, "client_id": client_id}


def decoded(replies: list[str]) -> list[tuple[str, str, str]]:
    frames = [json.loads(reply) for reply in replies]
    return [(f["type"], f.get("client_id"), f.get("code") or f["message"]["content"]) for f in frames]


def stored(chat) -> list[str | None]:
    return list(Message.objects.filter(chat=chat).order_by("id").values_list("client_id", flat=True))


def test_sends_of_several_senders_commit_once_and_are_answered_in_order(user, other_user, chat, monkeypatch):
    # given
    commits: list[int] = []
    real_commit = connection.commit

    def counted_commit() -> None:
        commits.append(1)
        real_commit()

    monkeypatch.setattr(connection, "commit", counted_commit)
    batch = [(user, send("u0", "a")), (other_user, send("o0", "b")), (user, send("u1", "c"))]
    # when
    envelopes, replies = sends.store_sends(chat.id, batch)
    # then
    assert decoded(replies) == [("message.ack", "u0", "a"), ("message.ack", "o0", "b"), ("message.ack", "u1", "c")]
    assert stored(chat) == ["u0", "o0", "u1"]
    assert len(commits) == 1
    created = [json.loads(e["text"]) for _, e in envelopes if e["event"] == "message.created"]
    assert [(c["message"]["content"], c["version"]) for c in created] == [("a", 1), ("b", 2), ("c", 3)]


def test_the_ack_is_the_message_as_its_event_showed_it(user, chat):
    # when
    envelopes, replies = sends.store_sends(chat.id, [(user, send("u0"))])
    # then: the same rendering, byte for byte
    ((_, created),) = envelopes
    assert json.loads(replies[0])["message"] == json.loads(created["text"])["message"]


def test_one_presence_lookup_for_a_whole_batch(user, other_user, chat, monkeypatch):
    # given
    lookups: list[list[int]] = []
    real = presence.online_ids

    def counted(ids: Any) -> set[int]:
        lookups.append(list(ids))
        return real(lookups[-1])

    monkeypatch.setattr(presence, "online_ids", counted)
    # when
    sends.store_sends(chat.id, [(user, send("u0")), (other_user, send("o0")), (user, send("u1"))])
    # then
    assert len(lookups) == 1


def test_a_send_that_fails_unexpectedly_fails_alone(user, other_user, chat, monkeypatch):
    # given: the middle send fails as a driver does on text it cannot encode (not a DatabaseError)
    real = services.message_create

    def failing(**kwargs: Any) -> Any:
        if kwargs["content"] == "boom":
            raise UnicodeEncodeError("utf-8", "x\ud800", 1, 2, "surrogates not allowed")
        return real(**kwargs)

    monkeypatch.setattr(services, "message_create", failing)
    batch = [(user, send("u0")), (other_user, send("o0", "boom")), (user, send("u1"))]
    # when
    _, replies = sends.store_sends(chat.id, batch)
    # then
    assert [(kind, client_id) for kind, client_id, _ in decoded(replies)] == [
        ("message.ack", "u0"),
        ("error", "o0"),
        ("message.ack", "u1"),
    ]
    assert stored(chat) == ["u0", "u1"]


def test_a_refused_send_rolls_back_alone(user, other_user, chat):
    # given: the middle one is too long
    batch = [(user, send("u0")), (other_user, send("o0", "x" * 5000)), (user, send("u1"))]
    # when
    _, replies = sends.store_sends(chat.id, batch)
    # then
    assert decoded(replies)[1][:3] == ("error", "o0", "invalid")
    assert stored(chat) == ["u0", "u1"]


def test_when_the_batch_transaction_fails_every_send_is_stored_alone_once(user, other_user, chat, monkeypatch):
    # given: the database fails the batch once (a deadlock rolls back everything before it)
    real = services.message_create
    calls = {"n": 0}

    def flaky(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OperationalError(1213, "Deadlock found when trying to get lock")
        return real(**kwargs)

    monkeypatch.setattr(services, "message_create", flaky)
    batch = [(user, send("u0")), (other_user, send("o0")), (user, send("u1"))]
    # when
    _, replies = sends.store_sends(chat.id, batch)
    # then
    assert [kind for kind, _, _ in decoded(replies)] == ["message.ack"] * 3
    assert stored(chat) == ["u0", "o0", "u1"]
    assert list(Message.objects.order_by("id").values_list("version", flat=True)) == [1, 2, 3]


def test_a_send_that_keeps_failing_on_the_database_gets_unavailable_and_the_others_their_acks(
    user, other_user, chat, monkeypatch
):
    # given
    real = services.message_create

    def failing_for_user(**kwargs: Any) -> Any:
        if kwargs["sender"] == user:
            raise OperationalError(2006, "MySQL server has gone away")
        return real(**kwargs)

    monkeypatch.setattr(services, "message_create", failing_for_user)
    # when
    _, replies = sends.store_sends(chat.id, [(user, send("u0")), (other_user, send("o0"))])
    # then
    assert decoded(replies)[0] == ("error", "u0", "unavailable")
    assert decoded(replies)[1][0] == "message.ack"


async def test_sends_to_different_chats_run_side_by_side_and_one_chats_stay_in_order(monkeypatch):
    # given: storing chat 1 blocks until released; chat 2 is free
    release = asyncio.Event()
    order: list[tuple[int, list[str]]] = []

    async def fake_store(chat_id: int, batch: list[Any]) -> tuple[list[Any], list[str]]:
        order.append((chat_id, [data["client_id"] for _, data in batch]))
        if chat_id == 1:
            await release.wait()
        return [], [data["client_id"] for _, data in batch]

    monkeypatch.setattr(sends, "_store_in_thread", fake_store)
    lanes = sends.SendLanes(asyncio.get_running_loop())
    user: Any = object()
    # when
    first = lanes.submit(user, 1, send("a1"))
    await asyncio.sleep(0)
    second = lanes.submit(user, 1, send("a2"))
    other = lanes.submit(user, 2, send("b1"))
    # then: chat 2 is answered while chat 1 is still being stored
    assert await asyncio.wait_for(other, 1) == "b1"
    assert not first.done() and not second.done()
    release.set()
    assert [await first, await second] == ["a1", "a2"]
    assert order == [(1, ["a1"]), (2, ["b1"]), (1, ["a2"])]


async def test_at_most_parallel_chats_lanes_store_at_once(monkeypatch):
    # given
    running = {"now": 0, "most": 0}

    async def fake_store(chat_id: int, batch: list[Any]) -> tuple[list[Any], list[str]]:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(0.01)
        running["now"] -= 1
        return [], ["ok"] * len(batch)

    monkeypatch.setattr(sends, "_store_in_thread", fake_store)
    lanes = sends.SendLanes(asyncio.get_running_loop())
    # when
    replies = await asyncio.gather(*(lanes.submit(object(), chat, send(f"c{chat}")) for chat in range(20)))  # type: ignore[arg-type]
    # then
    assert replies == ["ok"] * 20
    assert running["most"] == sends.PARALLEL_CHATS


def test_a_repeated_client_id_is_acked_with_the_first_message(user, chat):
    # given
    sends.store_sends(chat.id, [(user, send("same", "first"))])
    # when
    envelopes, replies = sends.store_sends(chat.id, [(user, send("same", "second"))])
    # then
    assert decoded(replies) == [("message.ack", "same", "first")]
    assert envelopes == []
    assert stored(chat) == ["same"]


def test_a_group_of_strangers_is_not_a_place_to_send(user, chat):
    # given
    strangers = group_with(UserFactory.create(), UserFactory.create())
    # when
    _, replies = sends.store_sends(strangers.id, [(user, send("x"))])
    # then
    assert decoded(replies)[0][:3] == ("error", "x", "not_found")
