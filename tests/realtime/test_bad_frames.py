"""One socket's bad frames never touch anyone else: every other send is acked and stored, no socket
is closed; and the same input over REST is a 400 (one set of rules for both paths)."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from chats.models import Message
from tests.factories import UserFactory, group_with

pytestmark = pytest.mark.django_db(transaction=True)

HUGE = 2**70
DEEP = "[" * 40 + "]" * 40
VERY_DEEP = "[" * 20_000 + "]" * 20_000  # past the interpreter's recursion limit, within the frame limit


def bad_frames(chat_id: int) -> list[str]:
    """Raw frame texts (json.dumps would escape what a sloppy client sends as is)."""
    return [
        f'{{"type":"message.send","chat_id":{chat_id},"content":"x\\ud800","client_id":"lone-surrogate"}}',
        f'{{"type":"message.send","chat_id":{chat_id},"content":"a\\u0000b","client_id":"nul"}}',
        f'{{"type":"message.send","chat_id":{HUGE},"content":"huge chat","client_id":"huge-chat"}}',
        f'{{"type":"message.send","chat_id":{chat_id},"content":"x","attachment_id":{HUGE},"client_id":"huge-att"}}',
        f'{{"type":"message.send","chat_id":{chat_id},"content":{DEEP},"client_id":"deep"}}',
        f'{{"type":"message.send","chat_id":{chat_id},"content":{VERY_DEEP},"client_id":"very-deep"}}',
        f'{{"type":"message.send","chat_id":{chat_id},"content":"x","client_id":"surrogate\\udfff"}}',
        f'{{"type":"read","chat_id":{chat_id},"message_id":{HUGE}}}',
        f'{{"type":"typing","chat_id":{HUGE}}}',
        "[" * 5000,
    ]


@sync_to_async
def stored(chat):
    return sorted(Message.objects.filter(chat=chat).values_list("client_id", flat=True))


async def test_bad_frames_of_one_socket_leave_every_other_send_acked_and_stored(connect, user, other_user, chat):
    # given: a third member sending bad frames, two members sending good ones, all at once
    mallory = await sync_to_async(UserFactory.create)()
    await sync_to_async(chat.memberships.create)(user=mallory)
    bad = await connect(mallory, "/ws/")
    senders = [await connect(user, "/ws/"), await connect(other_user, f"/ws/chat/{chat.id}/")]
    good_ids = [f"good-{n}-{i}" for n in range(2) for i in range(10)]

    async def send_good(n: int) -> list[dict]:
        socket = senders[n]
        for i in range(10):
            await socket.send(
                {"type": "message.send", "chat_id": chat.id, "content": f"ok {i}", "client_id": f"good-{n}-{i}"}
            )
        return [await socket.receive_type("message.ack") for _ in range(10)]

    async def send_bad() -> list[dict]:
        texts = bad_frames(chat.id)
        for text in texts:
            await bad.send_text(text)
        return [await bad.receive_type("error") for _ in texts]

    # when
    acks_a, acks_b, errors = await asyncio.gather(send_good(0), send_good(1), send_bad())
    # then: every good send acked in frame order and stored; every bad frame answered `invalid`
    assert [a["client_id"] for a in acks_a + acks_b] == good_ids
    assert all(a["message"]["chat_id"] == chat.id for a in acks_a + acks_b)
    assert await stored(chat) == sorted(good_ids)
    assert [e["code"] for e in errors] == ["invalid"] * len(errors)
    # (a frame too deep to parse at all names no client_id: there is none to read)
    assert [e.get("client_id") for e in errors[:6]] == ["lone-surrogate", "nul", "huge-chat", "huge-att", "deep", None]
    # and no socket was closed
    for socket in [bad, *senders]:
        assert await socket.is_open()


@pytest.mark.parametrize(
    "body",
    [
        '{"content":"x\\ud800"}',
        '{"content":"a\\u0000b"}',
        f'{{"content":"x","attachment_id":{HUGE}}}',
        f'{{"content":{DEEP}}}',
        f'{{"content":{VERY_DEEP}}}',
        '{"content":"x","client_id":"surrogate\\udfff"}',
    ],
    ids=["lone-surrogate", "nul", "huge-id", "deep", "very-deep", "surrogate-client-id"],
)
def test_the_same_input_over_rest_is_a_400_and_stores_nothing(api_client, chat, unchanged, body):
    # when
    with unchanged():
        r = api_client.post(f"/api/chats/{chat.id}/messages", body, content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert r.json()


async def test_a_frame_nested_deeper_than_32_levels_is_invalid_and_the_socket_stays_open(connect, user, chat):
    # given
    socket = await connect(user, "/ws/")
    # when
    await socket.send_text(json.dumps({"type": "ping", "extra": json.loads(DEEP)}))
    # then
    error = await socket.receive_type("error")
    assert (error["code"], "32" in error["detail"]) == ("invalid", True)
    assert await socket.is_open()


async def test_sends_of_other_sockets_in_other_chats_are_untouched_by_a_refused_send(connect, user, other_user, chat):
    # given: a send the service refuses (not a member) between two good ones of another user
    elsewhere = await sync_to_async(group_with)(other_user, await sync_to_async(UserFactory.create)())
    good = await connect(other_user, "/ws/")
    bad = await connect(user, "/ws/")
    # when
    await good.send({"type": "message.send", "chat_id": chat.id, "content": "1", "client_id": "g1"})
    await bad.send({"type": "message.send", "chat_id": elsewhere.id, "content": "no", "client_id": "b1"})
    await good.send({"type": "message.send", "chat_id": elsewhere.id, "content": "2", "client_id": "g2"})
    # then
    assert (await bad.receive_type("error"))["code"] == "not_found"
    assert [(await good.receive_type("message.ack"))["client_id"] for _ in range(2)] == ["g1", "g2"]
    assert await bad.is_open() and await good.is_open()
