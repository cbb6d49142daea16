"""The sockets' sends, stored in batches (chats.realtime.sends): a batch a transaction, a failing send alone,
chats side by side, one chat's sends in order."""

import asyncio
import json
from types import SimpleNamespace
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


def on(chat, batch: list[tuple[Any, dict[str, Any]]]) -> list[tuple[int, Any, dict[str, Any]]]:
    return [(chat.id, user, data) for user, data in batch]


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
    envelopes, replies = sends.store_sends(on(chat, batch))
    # then
    assert decoded(replies) == [("message.ack", "u0", "a"), ("message.ack", "o0", "b"), ("message.ack", "u1", "c")]
    assert stored(chat) == ["u0", "o0", "u1"]
    assert len(commits) == 1
    created = [json.loads(e["text"]) for _, e in envelopes if e["event"] == "message.created"]
    assert [(c["message"]["content"], c["version"]) for c in created] == [("a", 1), ("b", 2), ("c", 3)]


def test_the_ack_is_the_message_as_its_event_showed_it(user, chat):
    # when
    envelopes, replies = sends.store_sends(on(chat, [(user, send("u0"))]))
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
    sends.store_sends(on(chat, [(user, send("u0")), (other_user, send("o0")), (user, send("u1"))]))
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
    _, replies = sends.store_sends(on(chat, batch))
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
    _, replies = sends.store_sends(on(chat, batch))
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
    _, replies = sends.store_sends(on(chat, batch))
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
    _, replies = sends.store_sends(on(chat, [(user, send("u0")), (other_user, send("o0"))]))
    # then
    assert decoded(replies)[0] == ("error", "u0", "unavailable")
    assert decoded(replies)[1][0] == "message.ack"


async def test_sends_to_different_chats_run_side_by_side_and_one_chats_stay_in_order(monkeypatch):
    # given: storing a batch holding chat 1 blocks until released
    release = asyncio.Event()
    batches: list[list[tuple[int, str]]] = []

    async def fake_store(batch: list[Any]) -> tuple[list[Any], list[str]]:
        batches.append([(chat_id, data["client_id"]) for chat_id, _, data in batch])
        if any(chat_id == 1 for chat_id, _, _ in batch):
            await release.wait()
        return [], [data["client_id"] for _, _, data in batch]

    monkeypatch.setattr(sends, "_store_in_thread", fake_store)
    batcher = sends.SendBatches(asyncio.get_running_loop())
    user: Any = SimpleNamespace(pk=1)  # a sender: the queue is kept per sender
    other_user: Any = SimpleNamespace(pk=2)  # (a user's own sends are stored one batch at a time)
    # when
    first = batcher.submit(user, 1, send("a1"))
    await asyncio.sleep(0)
    second = batcher.submit(user, 1, send("a2"))  # chat 1 is held: waits for the first batch
    other = batcher.submit(other_user, 2, send("b1"))  # chat 2 is free: a batch of its own at once
    # then: chat 2 is answered while chat 1 is still being stored
    assert await asyncio.wait_for(other, 1) == "b1"
    assert not first.done() and not second.done()
    release.set()
    assert [await first, await second] == ["a1", "a2"]
    assert batches == [[(1, "a1")], [(2, "b1")], [(1, "a2")]]


async def test_sends_that_wait_are_taken_together_many_chats_a_batch(monkeypatch):
    # given: every batch slot busy for a moment
    release = asyncio.Event()
    batches: list[list[tuple[int, str]]] = []

    async def fake_store(batch: list[Any]) -> tuple[list[Any], list[str]]:
        batches.append([(chat_id, data["client_id"]) for chat_id, _, data in batch])
        await release.wait()
        return [], ["ok"] * len(batch)

    monkeypatch.setattr(sends, "_store_in_thread", fake_store)
    batcher = sends.SendBatches(asyncio.get_running_loop())
    busy = [batcher.submit(SimpleNamespace(pk=2 + n), 100 + n, send(f"busy{n}")) for n in range(sends.PARALLEL_BATCHES)]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    # when: sends to ten chats queue meanwhile
    waiting = [batcher.submit(SimpleNamespace(pk=1), chat, send(f"c{chat}")) for chat in range(10)]  # type: ignore[arg-type]
    release.set()
    # then: at most PARALLEL_BATCHES at once; the ten went as one batch
    assert await asyncio.gather(*busy, *waiting) == ["ok"] * (sends.PARALLEL_BATCHES + 10)
    assert len(batches) == sends.PARALLEL_BATCHES + 1
    assert [client_id for _, client_id in batches[-1]] == [f"c{chat}" for chat in range(10)]


def test_a_batch_locks_its_chats_in_ascending_order_and_answers_in_the_order_given(user, other_user, chat):
    # given: sends to two chats, the higher chat's first
    second = group_with(user, other_user, title="second")
    batch = [(second.id, user, send("s0")), (chat.id, user, send("c0")), (second.id, other_user, send("s1"))]
    # when
    envelopes, replies = sends.store_sends(batch)
    # then: the replies in the order given; the chats stored in id order, each chat's sends in order
    assert [client_id for _, client_id, _ in decoded(replies)] == ["s0", "c0", "s1"]
    created = [json.loads(e["text"]) for _, e in envelopes if e["event"] == "message.created"]
    assert [event["message"]["client_id"] for event in created] == ["c0", "s0", "s1"]
    assert stored(second) == ["s0", "s1"]


def test_a_repeated_client_id_is_acked_with_the_first_message(user, chat):
    # given
    sends.store_sends(on(chat, [(user, send("same", "first"))]))
    # when
    envelopes, replies = sends.store_sends(on(chat, [(user, send("same", "second"))]))
    # then
    assert decoded(replies) == [("message.ack", "same", "first")]
    assert envelopes == []
    assert stored(chat) == ["same"]


def test_a_group_of_strangers_is_not_a_place_to_send(user, chat):
    # given
    strangers = group_with(UserFactory.create(), UserFactory.create())
    # when
    _, replies = sends.store_sends(on(strangers, [(user, send("x"))]))
    # then
    assert decoded(replies)[0][:3] == ("error", "x", "not_found")


async def test_a_batch_whose_worker_hop_fails_answers_each_send_unavailable_and_later_sends_go_on(monkeypatch):
    # given: the first hop fails outright (no thread, no database), the next works
    calls = {"n": 0}

    async def flaky_store(batch: list[Any]) -> tuple[list[Any], list[str]]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError(2006, "MySQL server has gone away")
        return [], ["ok"] * len(batch)

    monkeypatch.setattr(sends, "_store_in_thread", flaky_store)
    batcher = sends.SendBatches(asyncio.get_running_loop())
    # when
    failed = await batcher.submit(SimpleNamespace(pk=1), 1, send("a1"))  # type: ignore[arg-type]
    later = await batcher.submit(SimpleNamespace(pk=1), 1, send("a2"))  # type: ignore[arg-type]
    # then
    assert json.loads(failed) == {
        "type": "error",
        "code": "unavailable",
        "detail": json.loads(failed)["detail"],
        "client_id": "a1",
    }
    assert later == "ok"
