"""Presence: online while any socket is open (any process), announced on the first and the last."""

import asyncio
import os
import time

import pytest
from asgiref.sync import sync_to_async

from accounts import presence
from accounts.models import User
from chats.realtime.hub import get_hub
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_users_first_socket_announces_them_online_to_their_chats(connect, user, other_user, chat):
    # given
    watcher = await connect(other_user, "/ws/")
    # when
    await connect(user, f"/ws/chat/{chat.id}/")
    # then
    event = await watcher.receive_type("presence")
    assert (event["user_id"], event["is_online"]) == (user.id, True)
    assert "last_seen" in event


async def test_a_second_socket_of_an_online_user_announces_nothing(connect, user, other_user, chat):
    # given
    watcher = await connect(other_user, "/ws/")
    await connect(user, "/ws/")
    await watcher.receive_type("presence")
    # when
    await connect(user, f"/ws/chat/{chat.id}/")
    # then
    assert "presence" not in await watcher.received_types()


async def test_the_last_socket_closing_announces_offline_and_stamps_last_seen(connect, rest, user, other_user, chat):
    # given
    watcher = await connect(other_user, "/ws/")
    first = await connect(user, "/ws/")
    second = await connect(user, f"/ws/chat/{chat.id}/")
    await watcher.receive_type("presence")
    # when
    await first.communicator.disconnect()
    await second.communicator.disconnect()
    # then
    event = await watcher.receive_type("presence")
    assert (event["user_id"], event["is_online"]) == (user.id, False)
    stored = await User.objects.aget(pk=user.pk)
    assert stored.last_seen is not None
    assert event["last_seen"].replace("+00:00", "Z").startswith(stored.last_seen.isoformat()[:19])
    seen = await rest(other_user, "get", f"/api/users/{user.id}")
    assert seen.json()["is_online"] is False


async def test_a_user_with_an_open_socket_is_online_over_rest(connect, rest, user, other_user, chat):
    # given
    watcher = await connect(other_user, "/ws/")
    await connect(user, "/ws/")
    await watcher.receive_type("presence")  # the claim is written before it is announced
    # when
    r = await rest(other_user, "get", f"/api/users/{user.id}")
    # then
    assert r.json()["is_online"] is True


async def test_the_heartbeat_renews_the_claims_of_users_with_open_sockets(connect, user, other_user, chat):
    # given
    watcher = await connect(other_user, "/ws/")
    await connect(user, "/ws/")
    await watcher.receive_type("presence")
    await presence.process_offline(user.id)  # as if the claim had expired
    # (as other processes see it: this one knows the user has a socket here)
    assert user.id not in await sync_to_async(presence._online_elsewhere)([user.id])
    # when
    await get_hub().heartbeat()
    # then
    assert user.id in await sync_to_async(presence._online_elsewhere)([user.id])


async def test_a_heartbeat_for_many_users_renews_every_claim_a_chunk_at_a_time_letting_the_loop_run(monkeypatch):
    # given: more users than a chunk, and a socket's work waiting on the loop
    monkeypatch.setattr(presence, "HEARTBEAT_CHUNK", 50)
    user_ids = list(range(900_001, 900_121))  # three chunks
    served_meanwhile: list[bool] = []
    heartbeat_done = False

    async def other_work() -> None:
        served_meanwhile.append(not heartbeat_done)

    chunks: list[int] = []
    client = presence._redis_async()
    if client is not None:  # with Redis: one script call a chunk, instead of two commands a user
        real_eval = client.eval

        async def counted_eval(script, key_count, *keys_and_args):
            chunks.append(key_count)
            return await real_eval(script, key_count, *keys_and_args)

        monkeypatch.setattr(client, "eval", counted_eval)
    # when
    task = asyncio.get_running_loop().create_task(other_work())
    await presence.heartbeat(user_ids)
    heartbeat_done = True
    await task
    # then: every claim is renewed, and the loop served the other work before the heartbeat ended
    assert await sync_to_async(presence.online_ids)(user_ids) == set(user_ids)
    assert served_meanwhile == [True]
    assert chunks == ([50, 50, 20] if client is not None else [])
    for user_id in user_ids:
        await presence.process_offline(user_id)


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="per-process claims are shared through Redis (REDIS_URL)")
async def test_a_crashed_processs_expired_claim_does_not_keep_a_user_online(user):
    # given: another process claimed the user, then stopped renewing (crashed)
    await sync_to_async(presence._redis().zadd)(presence._key(user.id), {"crashed-process": time.time() - 1})
    online_ids = sync_to_async(presence.online_ids)
    # then
    assert await online_ids([user.id]) == set()
    # and a live process's claim still counts, and its release finds nobody else
    assert await presence.process_online(user.id) is True
    assert await online_ids([user.id]) == {user.id}
    assert await presence.process_offline(user.id) is True


async def test_a_user_with_a_socket_on_this_process_is_online_without_asking_the_shared_store(
    connect, user, monkeypatch
):
    # given
    socket = await connect(user, "/ws/")

    def elsewhere(ids):
        raise AssertionError(f"asked the shared store about {ids}")

    monkeypatch.setattr(presence, "_online_elsewhere", elsewhere)
    # then
    assert await sync_to_async(presence.online_ids)([user.id]) == {user.id}
    # and once the socket is gone, the shared store is asked again
    await socket.communicator.disconnect()
    await asyncio.sleep(0.05)
    with pytest.raises(AssertionError):
        await sync_to_async(presence.online_ids)([user.id])


async def test_presence_reaches_only_users_who_share_a_chat(connect, user, other_user, chat):
    # given: a stranger shares no chat with user; other_user does
    stranger = await sync_to_async(UserFactory.create)(username="stranger")
    outsider = await connect(stranger, "/ws/")
    watcher = await connect(other_user, "/ws/")
    # when
    await connect(user, "/ws/")
    # then
    assert (await watcher.receive_type("presence"))["user_id"] == user.id
    assert "presence" not in await outsider.received_types()
