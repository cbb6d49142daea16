"""Fairness between users (chats.realtime.sends): a batch is filled round-robin over each chat's
senders, so one user's queued flood does not sit ahead of another's send; and a user's sends over
all their sockets are rate-limited (`UserRates`). Orders only: no timing is asserted."""

import asyncio
from types import SimpleNamespace

import pytest

from chats.realtime import sends

pytestmark = pytest.mark.django_db(transaction=True)

FLOODER = SimpleNamespace(pk=1)
QUIET = SimpleNamespace(pk=2)


def queued(batches: sends.SendBatches, user, chat_id: int, n: int) -> None:
    for i in range(n):
        future = batches.loop.create_future()
        batches._queued.setdefault(chat_id, sends.OrderedDict()).setdefault(user.pk, sends.deque()).append(
            (user, {"client_id": f"{user.pk}-{chat_id}-{i}"}, future)
        )


def taken(batch) -> list[str]:
    return [data["client_id"] for _, (_, data, _) in batch]


async def test_another_user_s_send_is_in_the_first_batch_behind_a_thousand_of_one_user_s():
    # given 1,000 sends of one user queued before another's, on the same chat
    batches = sends.SendBatches(asyncio.get_running_loop())
    queued(batches, FLOODER, 7, 1000)
    queued(batches, QUIET, 7, 1)
    # when
    batch = batches._take()
    # then
    assert taken(batch)[:3] == ["1-7-0", "2-7-0", "1-7-1"]
    assert [cid for cid in taken(batch) if cid.startswith("1-")] == [
        f"1-7-{i}" for i in range(sends.USER_SENDS_IN_FLIGHT)
    ]


async def test_a_flood_over_many_chats_takes_a_batch_s_room_in_turn_with_another_chat_s_send():
    # given one user's sends queued on 3 chats, then another user's on a 4th
    batches = sends.SendBatches(asyncio.get_running_loop())
    for chat_id in (1, 2, 3):
        queued(batches, FLOODER, chat_id, 100)
    queued(batches, QUIET, 4, 1)
    # when
    batch = batches._take()
    # then: the first round takes one of each chat; no more of the flooder's than may be in flight
    assert taken(batch)[:4] == ["1-1-0", "1-2-0", "1-3-0", "2-4-0"]
    assert len(batch) == sends.USER_SENDS_IN_FLIGHT + 1


async def test_a_chat_that_gave_sends_goes_to_the_back_of_the_line():
    # given
    batches = sends.SendBatches(asyncio.get_running_loop())
    queued(batches, FLOODER, 1, 200)
    queued(batches, QUIET, 2, 1)
    batches._take()
    batches._held.clear()
    # then
    assert list(batches._queued) == [1]  # chat 2 was emptied, chat 1 left with its rest
    assert len(batches._queued[1][FLOODER.pk]) == 200 - sends.USER_SENDS_IN_FLIGHT


async def test_a_user_s_burst_over_many_chats_is_stored_a_few_at_a_time_and_another_s_send_is_not_behind_it(
    monkeypatch,
):
    # given the flooder's 100 sends, one per chat, while their batches are being stored (held until released)
    release = asyncio.Event()
    stored: list[list[str]] = []

    async def fake_store(batch):
        stored.append([data["client_id"] for _, _, data in batch])
        if any(user.pk == FLOODER.pk for _, user, _ in batch):
            await release.wait()
        return [], ["ok"] * len(batch)

    monkeypatch.setattr(sends, "_store_in_thread", fake_store)
    batches = sends.SendBatches(asyncio.get_running_loop())
    flood = [batches.submit(FLOODER, chat_id, {"client_id": f"f{chat_id}"}) for chat_id in range(100)]  # type: ignore[arg-type]
    await asyncio.sleep(0)
    # when another user sends meanwhile
    quiet = batches.submit(QUIET, 1000, {"client_id": "q"})  # type: ignore[arg-type]
    # then it is stored in a batch of its own, at once: the flooder holds one batch, not every slot
    assert await quiet == "ok"
    assert stored == [["f0"], ["q"]]
    release.set()
    assert await asyncio.gather(*flood) == ["ok"] * 100
    assert [len(batch) for batch in stored[2:]] == [sends.USER_SENDS_IN_FLIGHT] * (99 // sends.USER_SENDS_IN_FLIGHT) + (
        [99 % sends.USER_SENDS_IN_FLIGHT] if 99 % sends.USER_SENDS_IN_FLIGHT else []
    )
    assert batches._busy == set()


def test_a_user_s_sends_over_the_rate_are_refused_across_their_sockets(settings):
    # given
    settings.WEBSOCKET_SENDS_PER_SECOND_PER_USER = 5
    rates = sends.UserRates()
    # when the burst (twice the rate) is spent
    answers = [rates.allow(FLOODER.pk) for _ in range(11)]
    # then
    assert answers == [True] * 10 + [False]
    assert rates.allow(QUIET.pk)


async def test_a_user_s_sends_over_the_rate_on_any_of_their_sockets_get_rate_limited(connect, user, chat, settings):
    # given two sockets of the user, the user's rate 1 a second (burst 2)
    settings.WEBSOCKET_SENDS_PER_SECOND_PER_USER = 1
    first, second = await connect(user), await connect(user)
    answers = []
    # when
    for n, socket in enumerate([first, second, first]):
        await socket.send({"type": "message.send", "chat_id": chat.id, "content": "hi", "client_id": f"c{n}"})
        while (answer := await socket.receive())["type"] not in ("message.ack", "error"):
            pass
        answers.append((answer["type"], answer.get("code"), answer["client_id"]))
    # then
    assert answers == [("message.ack", None, "c0"), ("message.ack", None, "c1"), ("error", "rate_limited", "c2")]


async def test_a_socket_whose_sends_the_user_s_rate_keeps_refusing_is_closed_4429(connect, user, chat, settings):
    # given
    settings.WEBSOCKET_SENDS_PER_SECOND_PER_USER = 1
    settings.WEBSOCKET_FLOOD_CLOSE_AFTER = 3
    socket = await connect(user)
    # when
    for n in range(8):
        await socket.send({"type": "message.send", "chat_id": chat.id, "content": "hi", "client_id": f"c{n}"})
    # then
    assert await socket.closed_with() == 4429
