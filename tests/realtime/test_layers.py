"""The embedded default's channel layer sweeps for expiry once a second, not on every event."""

import asyncio
from unittest import mock

from channels.layers import InMemoryChannelLayer

from chats import layers
from chats.layers import SweepingInMemoryChannelLayer


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_many_events_in_a_second_cost_one_sweep_of_the_groups():
    # given: a hub's channel in 5,000 groups
    layer = SweepingInMemoryChannelLayer(capacity=10_000)
    clock = Clock()

    async def scenario() -> tuple[int, int]:
        channel = await layer.new_channel()
        for group in range(5_000):
            await layer.group_add(f"chat.{group}", channel)
        sweeps = mock.Mock(wraps=InMemoryChannelLayer._clean_expired)
        with (
            mock.patch.object(InMemoryChannelLayer, "_clean_expired", lambda self: sweeps(self)),
            mock.patch.object(layers.time, "monotonic", clock),
        ):
            # when: 200 events and their receipts within a second
            for number in range(200):
                await layer.group_send(f"chat.{number}", {"type": "relay", "number": number})
                assert (await layer.receive(channel))["number"] == number
            within_a_second = sweeps.call_count
            clock.now += layers.SWEEP_INTERVAL_SECONDS
            await layer.group_send("chat.1", {"type": "relay"})
            await layer.receive(channel)
        return within_a_second, sweeps.call_count

    within_a_second, after_the_interval = asyncio.run(scenario())
    # then
    assert within_a_second == 1
    assert after_the_interval == 2


def test_expired_memberships_and_messages_still_go():
    # given: a membership older than group_expiry, and a message older than expiry
    layer = SweepingInMemoryChannelLayer(expiry=60, group_expiry=100)
    clock = Clock()

    async def scenario() -> tuple[dict, bool]:
        with mock.patch("channels.layers.time.time", clock), mock.patch.object(layers.time, "monotonic", clock):
            await layer.group_add("chat.1", "hub.inmemory!a")
            await layer.send("hub.inmemory!b", {"type": "relay"})
            clock.now += 101
            # when: the next event after the interval sweeps
            await layer.group_send("chat.2", {"type": "relay"})
        return layer.groups, "hub.inmemory!b" in layer.channels

    groups, message_kept = asyncio.run(scenario())
    # then
    assert groups.get("chat.1", {}) == {}
    assert not message_kept
