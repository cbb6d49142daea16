"""A hub's stop ends its tasks whatever they are doing when it comes (the hang in CI's teardowns).

CI hung twice in the teardown of a test_resync.py test: the layer watch went on probing after the
hub's stop had cancelled it and its router ("2 probes in a row did not come back", then "still
unreachable" every 30 s), and the stop waited for the watch forever. Python 3.11's
asyncio.wait_for returns the result of what it waits for when that is done by the time a cancel
reaches it, and the cancel is lost: a stop that came just as the watch was woken, or just as its
probe came back, left the watch looping. These tests make the cancel come at those moments.

And a stop cancelled from outside (the tests' teardown bound) ends: it used to swallow its own
cancel while it waited for its tasks (`contextlib.suppress(BaseException)`), and go on waiting.
"""

import asyncio

import pytest

from accounts.models import User
from chats.realtime import sends
from chats.realtime.hub import Hub, get_hub, stop_hub

# Far more than any stop takes; a stop that has not ended by then never will (the watch loops).
STOP_BOUND_SECONDS = 10


async def started_hub() -> Hub:
    hub = get_hub()
    await hub.start()
    assert hub.subscriptions.channel is not None
    return hub


async def stop_ends(hub: Hub) -> bool:
    """Stop the hub; whether the stop ended (if not, its tasks are cancelled again so that the test ends)."""
    stop = asyncio.ensure_future(stop_hub())
    done, _ = await asyncio.wait({stop}, timeout=STOP_BOUND_SECONDS)
    if stop not in done:
        for task in hub._tasks:
            task.cancel()
        await asyncio.wait({stop}, timeout=STOP_BOUND_SECONDS)
    return stop in done and all(task.done() for task in hub._tasks)


@pytest.mark.parametrize("loop_passes", [0, 1, 2])
async def test_a_stop_that_comes_as_the_watch_is_woken_ends_it(loop_passes):
    # given: a running hub whose watch is woken (a failed publish does so) just before the stop
    hub = await started_hub()
    hub.watch._wake.set()
    for _ in range(loop_passes):
        await asyncio.sleep(0)
    # when / then: the stop cancels the watch and ends
    assert await stop_ends(hub)


async def test_a_stop_that_comes_as_a_probe_comes_back_ends_the_watch():
    # given: a running hub with a probe on its way back
    hub = await started_hub()
    on_way: list[str] = []
    hub.router.on_probe = on_way.append
    hub.watch._wake.set()  # probe now
    for _ in range(200):
        if on_way:
            break
        await asyncio.sleep(0.01)
    assert on_way and on_way[0] in hub.watch._probes
    # when: the probe is back and the hub stops in the same pass of the loop
    hub.watch.probe_arrived(on_way[0])
    # then
    assert await stop_ends(hub)


async def test_a_stop_cancelled_from_outside_ends_though_a_batch_of_sends_is_still_being_stored(monkeypatch):
    # given: a batch of sends whose storing does not end (a database that does not answer)
    hub = await started_hub()
    release = asyncio.Event()

    async def stalled_store(batch: list[sends.Send]) -> tuple[list[sends.Envelope], list[str]]:
        await release.wait()
        return [], ['{"type":"error"}' for _ in batch]

    monkeypatch.setattr(sends, "_store_in_thread", stalled_store)
    reply = hub.sends.submit(User(pk=1, username="alice"), 1, {"client_id": "c1"})
    stop = asyncio.ensure_future(stop_hub())
    await asyncio.sleep(0)
    assert not stop.done()  # waiting for the batch
    # when: the stop is cancelled (the tests' teardown bound does so)
    stop.cancel()
    # then: it ends, cancelled; the batch is not cancelled with it, and its sender is answered
    done, _ = await asyncio.wait({stop}, timeout=STOP_BOUND_SECONDS)
    release.set()
    assert stop in done and stop.cancelled()
    assert await reply == '{"type":"error"}'
    await hub.stop()
