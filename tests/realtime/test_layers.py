"""The embedded default's channel layer sweeps for expiry once a second, not on every event."""

import asyncio
from unittest import mock

from channels.layers import InMemoryChannelLayer

from chats.realtime import adapter as layers
from chats.realtime.adapter import Batches, SweepingInMemoryChannelLayer


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


def test_a_lone_item_is_sent_by_its_caller_and_those_asked_meanwhile_go_together_in_order():
    # given: a send that takes a while
    sent: list[tuple[list[int], object]] = []
    gate = asyncio.Event()

    async def send(items: list[int]) -> None:
        sent.append((items, asyncio.current_task()))
        await gate.wait()

    async def scenario() -> asyncio.Task:
        batches = Batches(send)
        first = asyncio.ensure_future(batches.put(1))
        await asyncio.sleep(0)
        # when: three more are asked while the first is being sent
        others = [asyncio.ensure_future(batches.put(number)) for number in (2, 3, 4)]
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(first, *others)
        return first

    first = asyncio.run(scenario())
    # then
    assert [items for items, _ in sent] == [[1], [2, 3, 4]]
    assert sent[0][1] is first  # no task in between for the lone one


def test_a_failed_batch_raises_in_each_of_its_callers_and_the_next_goes_on():
    # given
    calls: list[list[str]] = []
    gate = asyncio.Event()

    async def send(items: list[str]) -> None:
        calls.append(items)
        await gate.wait()
        if "bad" in items:
            raise ConnectionError("redis went away")

    async def scenario() -> list[object]:
        batches = Batches(send)
        first = asyncio.ensure_future(batches.put("first"))
        await asyncio.sleep(0)
        failing = [asyncio.ensure_future(batches.put(item)) for item in ("bad", "also")]
        await asyncio.sleep(0)
        gate.set()
        results: list[object] = await asyncio.gather(first, *failing, return_exceptions=True)
        # when: a later item
        await batches.put("later")
        return results

    results = asyncio.run(scenario())
    # then
    assert results[0] is None
    assert all(isinstance(result, ConnectionError) for result in results[1:])
    assert calls == [["first"], ["bad", "also"], ["later"]]
