"""A socket whose groups cannot be subscribed (the channel layer refuses) is closed 4503 and forgotten;
sockets waiting on the same subscription are refused too, and the next connect tries afresh."""

import asyncio

import pytest
from channels.layers import get_channel_layer

from chats.realtime.consumer import CLOSE_UNAVAILABLE
from chats.realtime.hub import get_hub

pytestmark = pytest.mark.django_db(transaction=True)


async def test_sockets_waiting_on_a_failed_subscription_are_closed_and_the_next_connect_succeeds(
    connect, user, other_user, chat, monkeypatch
):
    # given: the layer's subscriptions fail, slowly enough that both sockets wait on the same one
    layer = get_channel_layer()
    real_group_add = layer.group_add

    async def failing_group_add(group: str, channel: str) -> None:
        await asyncio.sleep(0.05)
        raise ConnectionError("layer down")

    monkeypatch.setattr(layer, "group_add", failing_group_add)
    # when
    first, second = await asyncio.gather(connect(user), connect(other_user))
    # then: both refused with 4503, and the hub holds nothing of them
    assert [await first.closed_with(), await second.closed_with()] == [CLOSE_UNAVAILABLE, CLOSE_UNAVAILABLE]
    hub = get_hub()
    assert not hub.listeners
    assert not hub.groups
    # when the layer is back
    monkeypatch.setattr(layer, "group_add", real_group_add)
    again = await connect(user)
    # then
    assert again.accepted and await again.is_open()
