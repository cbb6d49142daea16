"""Many sockets of one user closed together (a flood closed 4429): everything they held is let go of
-- their groups, their count in the user's socket limit, the user's presence once the last one
goes -- and no close makes a Redis round trip of its own (chats.realtime.limits)."""

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings

from accounts import presence as presence_store
from chats.realtime.envelopes import chat_group
from chats.realtime.hub import get_hub
from chats.realtime.limits import SocketLimit, _sockets_key
from chats.realtime.sessions import session_group
from chats.realtime.tasks import settle
from tests.factories import group_with

pytestmark = pytest.mark.django_db(transaction=True)

SOCKETS = 30
needs_redis = pytest.mark.skipif(not django_settings.REDIS_URL, reason="the shared count needs REDIS_URL")


@pytest.fixture
async def flood_sockets(connect, user, settings):
    """The user's SOCKETS sockets, each on a group of its own, and one more, kept, on another."""
    settings.WEBSOCKET_MAX_PER_USER = SOCKETS + 10
    chats = await sync_to_async(lambda: [group_with(user, title=f"flood {n}") for n in range(SOCKETS + 1)])()
    sockets = [await connect(user, f"/ws/chat/{chat.id}/") for chat in chats[:SOCKETS]]
    kept = await connect(user, f"/ws/chat/{chats[SOCKETS].id}/")
    return chats[:SOCKETS], sockets, kept


def _pipelines_only(monkeypatch: Any, *, forbidden: str, why: str) -> tuple[Any, list[Any]]:
    """The shared Redis client with its pipelines counted and `forbidden` (a command sent on its own) refused."""
    client = presence_store._redis_async()
    pipelines: list[Any] = []
    make_pipeline = client.pipeline

    def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipelines.append(args)
        return make_pipeline(*args, **kwargs)

    async def refused(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(why)

    monkeypatch.setattr(client, "pipeline", counted_pipeline)
    monkeypatch.setattr(client, forbidden, refused)
    return client, pipelines


async def _close_together(user_id: int, code: int = 4429) -> None:
    """Close all but the newest socket of the user on this hub at once, as the flood control does."""
    hub = get_hub()
    closing = list(hub.limits.by_user[user_id].values())[:-1]
    await asyncio.gather(*[socket.close(code) for socket in closing])


async def _removals_done() -> None:
    remover = get_hub().limits._remover
    if remover is not None:
        await settle([remover])


async def test_sockets_closed_together_leave_their_groups_and_their_count(flood_sockets, user):
    # given
    chats, sockets, kept = flood_sockets
    hub = get_hub()
    # when
    await _close_together(user.pk)
    await _removals_done()
    # then
    assert [await socket.closed_with() for socket in sockets] == [4429] * SOCKETS
    assert not any(chat_group(chat.id) in hub.groups for chat in chats)
    [left] = hub.listeners
    assert left.chat_id is not None
    assert set(hub.groups) == left.groups == {session_group(user.pk), chat_group(left.chat_id)}
    assert list(hub.limits.by_user[user.pk].values()) == [*hub.listeners]
    assert len(hub.limits.sockets) == 1
    assert hub.user_sockets == {user.pk: 1}
    assert await kept.is_open()


@needs_redis
async def test_sockets_closed_together_are_uncounted_in_the_shared_set(flood_sockets, user):
    # given
    _, _, kept = flood_sockets
    client = presence_store._redis_async()
    assert await client.zcard(_sockets_key(user.pk)) == SOCKETS + 1
    # when
    await _close_together(user.pk)
    await _removals_done()
    # then
    assert await client.zrange(_sockets_key(user.pk), 0, -1) == [key.encode() for key in get_hub().limits.sockets]
    assert await kept.is_open()


@needs_redis
async def test_closes_make_no_redis_round_trip_each_but_one_pipeline(flood_sockets, user, monkeypatch):
    # given
    client, pipelines = _pipelines_only(monkeypatch, forbidden="zrem", why="a close removed its own member")
    # when
    await _close_together(user.pk)
    await _removals_done()
    # then
    assert len(pipelines) == 1
    assert await client.zcard(_sockets_key(user.pk)) == 1


@needs_redis
async def test_an_open_removes_the_user_s_queued_closes_before_it_counts(connect, user, settings, monkeypatch):
    # given 2 sockets at a limit of 2, the removal of the second's member still queued when a third opens
    settings.WEBSOCKET_MAX_PER_USER = 2

    async def held(self: SocketLimit) -> None:
        await asyncio.Event().wait()  # the worker never sends: only the open can remove it

    monkeypatch.setattr(SocketLimit, "_remove_closed", held)
    first = await connect(user)
    second = await connect(user)
    await second.communicator.disconnect()
    limits = get_hub().limits
    try:
        assert list(limits.removals) == [user.pk]
        # when
        third = await connect(user)
        # then the closed one did not count: nobody was evicted
        assert await first.is_open()
        assert await third.is_open()
        assert limits.removals == {}
        assert await presence_store._redis_async().zcard(_sockets_key(user.pk)) == 2
    finally:
        monkeypatch.undo()  # before the teardown's closes start a worker of their own
        assert limits._remover is not None
        limits._remover.cancel()


@needs_redis
async def test_the_hub_s_stop_sends_the_removals_still_queued(flood_sockets, user):
    # given
    await _close_together(user.pk)
    # when
    await get_hub().stop()
    # then the stopped hub's sockets stop counting, the closed ones removed first
    client = presence_store._redis_async()
    assert await client.zcard(_sockets_key(user.pk)) == 1  # the kept one, left to the hub key's expiry


async def test_the_last_of_many_sockets_closing_takes_the_user_offline(flood_sockets, user):
    # given
    _, _, kept = flood_sockets
    await _close_together(user.pk)
    # when
    await kept.communicator.disconnect()
    await settle(get_hub().transitions.pending_work())
    await _removals_done()
    # then
    hub = get_hub()
    assert hub.user_sockets == {}
    assert hub.limits.sockets == {} and hub.limits.by_user == {}
    assert hub.groups == {}
    assert await sync_to_async(presence_store.online_ids)([user.pk]) == set()
    if django_settings.REDIS_URL:
        assert await presence_store._redis_async().zcard(_sockets_key(user.pk)) == 0


@needs_redis
async def test_sockets_opening_together_are_counted_in_one_pipeline(user, settings, monkeypatch):
    # given
    settings.WEBSOCKET_MAX_PER_USER = 3
    client, pipelines = _pipelines_only(monkeypatch, forbidden="eval", why="an open counted itself")
    limits = SocketLimit()
    closed: list[str] = []

    def socket(n: int) -> Any:
        async def close(code: int) -> None:
            closed.append(f"{n}:{code}")
            limits.closed(sockets[n])

        return SimpleNamespace(user_id=user.pk, socket_key=limits.new_key(), close=close)

    sockets = [socket(n) for n in range(5)]
    # when
    await asyncio.gather(*[limits.opened(one) for one in sockets])
    await limits.stop()
    # then: one pipeline counted the five; the two oldest past the limit of 3 were closed
    assert len(pipelines) == 2  # the opens, then the removal of the two closed
    assert sorted(closed) == ["0:4429", "1:4429"]
    assert await client.zcard(_sockets_key(user.pk)) == 3
