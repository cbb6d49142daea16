"""The Redis layer sends the commands of one moment together (chats.realtime.adapter.BatchedShard), in order."""

import asyncio
import contextlib
import os
import uuid
from unittest import mock

import pytest
from django.conf import settings

from chats.realtime.adapter import BatchedRedisPubSubChannelLayer, watch_reconnects
from tests.own_redis import REDIS_SERVER, OwnRedis
from tests.test_health import unused_port

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)"),
]


def make_layer(url: str | None = None) -> BatchedRedisPubSubChannelLayer:
    host = {"address": url or settings.REDIS_URL, "max_connections": 50}
    return BatchedRedisPubSubChannelLayer(hosts=[host], prefix=f"batched{uuid.uuid4().hex[:8]}")


async def receive_all(layer, channel: str, count: int) -> list[dict]:
    return [await asyncio.wait_for(layer.receive(channel), 2) for _ in range(count)]


async def test_groups_joined_together_are_subscribed_with_two_commands_and_all_receive():
    # given
    layer = make_layer()
    channel = await layer.new_channel()
    shard = layer._get_layer()._shards[0]
    subscribe = mock.AsyncMock(wraps=shard._pubsub.subscribe)
    # when: 50 groups joined at once (the first is sent at once, the 49 asked meanwhile together)
    with mock.patch.object(shard._pubsub, "subscribe", subscribe):
        await asyncio.gather(*(layer.group_add(f"chat.{number}", channel) for number in range(50)))
    for number in range(50):
        await layer.group_send(f"chat.{number}", {"type": "relay", "number": number})
    received = await receive_all(layer, channel, 50)
    await layer.flush()
    # then
    assert [len(call.args) for call in subscribe.await_args_list] == [1, 49]
    assert [message["number"] for message in received] == list(range(50))


async def test_concurrent_publishes_leave_in_the_order_asked():
    # given
    layer = make_layer()
    channel = await layer.new_channel()
    await layer.group_add("chat.1", channel)
    # when
    await asyncio.gather(*(layer.group_send("chat.1", {"type": "relay", "number": number}) for number in range(200)))
    received = await receive_all(layer, channel, 200)
    await layer.flush()
    # then
    assert [message["number"] for message in received] == list(range(200))


async def test_subscribe_unsubscribe_subscribe_of_a_group_in_one_moment_ends_subscribed():
    # given
    layer = make_layer()
    channel = await layer.new_channel()
    # when: join, leave, join again without waiting in between
    await asyncio.gather(
        layer.group_add("chat.7", channel), layer.group_discard("chat.7", channel), layer.group_add("chat.7", channel)
    )
    await layer.group_send("chat.7", {"type": "relay", "number": 7})
    received = await receive_all(layer, channel, 1)
    # and: leave, then nothing more arrives
    await layer.group_discard("chat.7", channel)
    await layer.group_send("chat.7", {"type": "relay", "number": 8})
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.3)
    await layer.flush()
    # then
    assert [message["number"] for message in received] == [7]


async def test_every_caller_hears_of_an_unreachable_redis():
    # given
    layer = make_layer(f"redis://127.0.0.1:{unused_port()}/0")
    # when
    results = await asyncio.wait_for(
        asyncio.gather(
            *(layer.group_send(f"chat.{number}", {"type": "relay"}) for number in range(5)),
            layer.new_channel(),
            return_exceptions=True,
        ),
        timeout=10,
    )
    await layer.flush()
    # then
    assert len(results) == 6
    assert all(isinstance(result, Exception) for result in results), results


async def test_callers_waiting_when_the_layer_is_flushed_get_an_error_not_a_hang():
    # given: publishes waiting behind one in flight
    layer = make_layer()
    shard = layer._get_layer()._shards[0]
    stalled = asyncio.Event()

    async def stall(self):
        await stalled.wait()

    with mock.patch("redis.asyncio.client.Pipeline.execute", stall):
        first = asyncio.ensure_future(layer.group_send("chat.1", {"type": "relay"}))
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(layer.group_send("chat.1", {"type": "relay"})) for _ in range(2)]
        await asyncio.sleep(0.05)
        # when
        await shard.flush()
        stalled.set()  # the one in flight is its caller's own: it ends as its Redis call does
        results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 2)
        await asyncio.wait_for(first, 2)
    # then
    assert all(isinstance(result, ConnectionError) for result in results), results


@pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server to start a Redis of the test's own")
async def test_a_pubsub_connection_made_again_after_redis_restarts_is_reported_and_subscribed_again(tmp_path):
    # given: a layer on a Redis of the test's own, a group joined, the hub's callback registered
    own = OwnRedis(tmp_path)
    await asyncio.to_thread(own.start)
    layer = make_layer(own.url)
    try:
        channel = await layer.new_channel()
        await layer.group_add("chat.1", channel)
        reconnects: list[float] = []
        assert watch_reconnects(layer, lambda: reconnects.append(asyncio.get_running_loop().time()))
        # when: Redis dies and starts again (empty: it knows no subscriptions)
        await asyncio.to_thread(own.kill)
        await asyncio.sleep(0.5)
        assert reconnects == []
        await asyncio.to_thread(own.start)
        for _ in range(100):
            if reconnects:
                break
            await asyncio.sleep(0.05)
        # then: reported once made again, and the group is subscribed again by redis-py itself
        assert len(reconnects) == 1
        await layer.group_send("chat.1", {"type": "relay", "number": 1})
        assert [message["number"] for message in await receive_all(layer, channel, 1)] == [1]
    finally:
        with contextlib.suppress(Exception):
            await layer.flush()
        own.kill()
