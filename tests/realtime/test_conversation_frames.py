"""The v1.1 conversation features over a socket: message.send takes what POST .../messages takes."""

import pytest
from asgiref.sync import sync_to_async

from tests.factories import message_in

pytestmark = pytest.mark.django_db(transaction=True)


async def test_message_send_may_reply_to_a_message_of_the_chat(connect, user, other_user, chat):
    # given
    original = await message_in_async(chat, other_user, "question")
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    # when
    await socket.send({"type": "message.send", "content": "answer", "client_id": "r-1", "reply_to_id": original.id})
    # then
    ack = await socket.receive_type("message.ack")
    assert ack["message"]["reply_to"]["id"] == original.id
    assert ack["message"]["reply_to"]["content"] == "question"


async def test_message_send_replying_to_another_chat_s_message_is_an_invalid_error(connect, user, other_user, chat):
    # given
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    # when
    await socket.send({"type": "message.send", "content": "answer", "client_id": "r-2", "reply_to_id": 987654})
    # then
    error = await socket.receive_type("error")
    assert (error["code"], error["client_id"]) == ("invalid", "r-2")
    assert "reply_to_id" in error["detail"]


async def message_in_async(chat, sender, content):
    return await sync_to_async(message_in)(chat, sender, content)


async def test_message_send_may_forward_a_message_of_another_chat(connect, user, other_user, chat):
    # given
    from tests.factories import group_with

    elsewhere = await sync_to_async(group_with)(other_user, user, owner=other_user)
    original = await message_in_async(elsewhere, other_user, "pass it on")
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    # when
    await socket.send({"type": "message.send", "client_id": "f-1", "forward_of_id": original.id})
    # then
    ack = await socket.receive_type("message.ack")
    assert ack["message"]["content"] == "pass it on"
    assert ack["message"]["forwarded_from"]["sender"]["id"] == other_user.id
