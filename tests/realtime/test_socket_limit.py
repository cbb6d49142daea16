"""At most WEBSOCKET_MAX_PER_USER sockets per user, /ws/ and /ws/chat/<id>/ together: one more
closes the user's oldest with 4429 (chats.realtime.limits)."""

import time

import pytest
from django.conf import settings as django_settings

from accounts import presence as presence_store
from chats.realtime.envelopes import envelope, publish, user_group
from chats.realtime.hub import get_hub
from chats.realtime.limits import EVICTED, _sockets_key
from chats.realtime.sessions import session_group

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_21st_socket_closes_the_user_s_oldest_with_4429(connect, user, chat):
    # given 20 sockets of the user, the first on its chat
    sockets = [await connect(user, f"/ws/chat/{chat.id}/")]
    sockets += [await connect(user, "/ws/") for _ in range(19)]
    assert await sockets[-1].is_open()
    # when
    newest = await connect(user, "/ws/")
    # then
    assert await sockets[0].closed_with() == 4429
    assert all([await socket.is_open() for socket in sockets[1:]])
    assert await newest.is_open()


async def test_other_users_sockets_do_not_count(connect, user, other_user, settings):
    # given
    settings.WEBSOCKET_MAX_PER_USER = 2
    theirs = [await connect(other_user), await connect(other_user)]
    # when
    mine = [await connect(user), await connect(user)]
    # then
    assert all([await socket.is_open() for socket in theirs + mine])


async def test_a_closed_socket_no_longer_counts(connect, user, settings):
    # given
    settings.WEBSOCKET_MAX_PER_USER = 2
    first = await connect(user)
    second = await connect(user)
    await second.communicator.disconnect()
    # when
    third = await connect(user)
    # then
    assert await first.is_open()
    assert await third.is_open()


async def test_an_eviction_heard_from_another_process_closes_the_socket_it_names(connect, user, chat):
    # given a socket of each kind
    sockets = [await connect(user), await connect(user, f"/ws/chat/{chat.id}/")]
    assert all([await socket.is_open() for socket in sockets])
    keys = [socket.socket_key for socket in get_hub().limits.sockets.values()]
    # when another process's new socket evicts them
    await publish(
        [
            envelope(group, EVICTED, "", user_id=user.pk, sockets=keys)
            for group in (user_group(user.pk), session_group(user.pk))
        ]
    )
    # then
    assert [await socket.closed_with() for socket in sockets] == [4429, 4429]


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="the shared count needs REDIS_URL")
async def test_sockets_of_a_hub_no_longer_alive_do_not_count(connect, user, settings):
    # given the user's socket, and 2 newer ones on a process that crashed (its hub key gone)
    settings.WEBSOCKET_MAX_PER_USER = 2
    mine = [await connect(user)]
    client = presence_store._redis_async()
    await client.zadd(_sockets_key(user.pk), {"crashed|1": time.time() + 10, "crashed|2": time.time() + 20})
    # when
    mine.append(await connect(user))
    # then
    assert all([await socket.is_open() for socket in mine])
    assert await client.zcard(_sockets_key(user.pk)) == 2
