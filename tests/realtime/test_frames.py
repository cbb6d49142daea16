"""Client frames: message.send, typing, read, ping -- good input, bad input, the socket stays open."""

import json

import pytest
from asgiref.sync import sync_to_async

from chats.models import Message
from chats.realtime import adapter
from tests.factories import UserFactory, direct_between, group_with, message_in

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def messages_of(chat):
    return list(Message.objects.filter(chat=chat).order_by("id").values_list("content", "client_id"))


async def test_message_send_is_stored_and_acked_with_the_message(connect, user, chat):
    # given
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    # when
    await socket.send({"type": "message.send", "content": "hi 👋", "client_id": "c-1"})
    # then
    ack = await socket.receive_type("message.ack")
    assert ack["client_id"] == "c-1"
    assert ack["message"]["content"] == "hi 👋"
    assert ack["message"]["chat_id"] == chat.id
    assert await messages_of(chat) == [("hi 👋", "c-1")]


async def test_message_send_on_the_all_chats_socket_names_its_chat(connect, user, chat):
    # given
    socket = await connect(user, "/ws/")
    # when
    await socket.send({"type": "message.send", "chat_id": chat.id, "content": "hello", "client_id": "c-1"})
    # then
    ack = await socket.receive_type("message.ack")
    assert ack["message"]["chat_id"] == chat.id


async def test_message_send_with_a_repeated_client_id_acks_the_first_message_and_stores_nothing(connect, user, chat):
    # given
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    await socket.send({"type": "message.send", "content": "first", "client_id": "same"})
    first = await socket.receive_type("message.ack")
    # when
    await socket.send({"type": "message.send", "content": "second", "client_id": "same"})
    # then
    again = await socket.receive_type("message.ack")
    assert again["message"]["id"] == first["message"]["id"]
    assert again["message"]["content"] == "first"
    assert await messages_of(chat) == [("first", "same")]


async def test_message_send_with_a_client_id_used_in_another_chat_stores_a_new_message(connect, user, other_user, chat):
    # given: a send to another chat with this client_id
    other = await sync_to_async(direct_between)(user, other_user)
    socket = await connect(user, "/ws/")
    await socket.send({"type": "message.send", "chat_id": other.id, "content": "to bob", "client_id": "same"})
    first = await socket.receive_type("message.ack")
    # when
    await socket.send({"type": "message.send", "chat_id": chat.id, "content": "to the group", "client_id": "same"})
    # then
    ack = await socket.receive_type("message.ack")
    assert ack["message"]["id"] != first["message"]["id"]
    assert (ack["message"]["chat_id"], ack["message"]["content"]) == (chat.id, "to the group")
    assert await messages_of(chat) == [("to the group", "same")]


async def test_message_send_without_client_id_is_an_error_and_the_socket_stays_open(connect, user, chat):
    # given
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    # when
    await socket.send({"type": "message.send", "content": "hello"})
    # then
    error = await socket.receive_type("error")
    assert error["type"] == "error" and error["code"] == "invalid"
    assert await socket.is_open()
    assert await messages_of(chat) == []


async def test_message_send_with_blank_content_is_invalid_and_names_the_client_id(connect, user, chat):
    # given
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    # when
    await socket.send({"type": "message.send", "content": "   ", "client_id": "c-9"})
    # then
    error = await socket.receive_type("error")
    assert (error["type"], error["code"], error["client_id"]) == ("error", "invalid", "c-9")
    assert await socket.is_open()


async def test_message_send_longer_than_the_limit_is_invalid(connect, user, chat, settings):
    # given
    settings.MESSAGE_MAX_LENGTH = 10
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    # when
    await socket.send({"type": "message.send", "content": "x" * 11, "client_id": "c-1"})
    # then
    error = await socket.receive_type("error")
    assert error["code"] == "invalid"
    assert await messages_of(chat) == []


async def test_message_send_to_a_chat_of_others_is_not_found(connect, user, other_user):
    # given
    stranger = await sync_to_async(UserFactory.create)()
    others_chat = await sync_to_async(group_with)(other_user, stranger)
    socket = await connect(user, "/ws/")
    # when
    await socket.send({"type": "message.send", "chat_id": others_chat.id, "content": "hi", "client_id": "c-1"})
    # then
    error = await socket.receive_type("error")
    assert error["code"] == "not_found"
    assert await messages_of(others_chat) == []


async def test_message_send_without_chat_id_on_the_all_chats_socket_is_invalid(connect, user, chat):
    # given
    socket = await connect(user, "/ws/")
    # when
    await socket.send({"type": "message.send", "content": "hi", "client_id": "c-1"})
    # then
    error = await socket.receive_type("error")
    assert error["code"] == "invalid"
    assert await socket.is_open()


async def test_message_send_naming_another_chat_on_a_chat_socket_is_invalid(connect, user, chat):
    # given
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    # when
    await socket.send({"type": "message.send", "chat_id": chat.id + 1, "content": "hi", "client_id": "c-1"})
    # then
    assert (await socket.receive_type("error"))["code"] == "invalid"


async def test_typing_reaches_the_other_members_with_the_typists_public_user(connect, user, other_user, chat):
    # given
    typist = await connect(user, f"/ws/chat/{chat.id}/")
    listener = await connect(other_user, "/ws/")
    # when
    await typist.send({"type": "typing"})
    # then
    event = await listener.receive_type("typing")
    assert event["chat_id"] == chat.id
    assert event["user"]["id"] == user.id
    assert set(event["user"]) == {"id", "username", "display_name", "is_online", "last_seen", "avatar_url"}


async def test_typing_does_not_echo_to_the_typists_own_sockets(connect, user, chat):
    # given
    typist = await connect(user, f"/ws/chat/{chat.id}/")
    other_tab = await connect(user, "/ws/")
    # when
    await typist.send({"type": "typing"})
    # then
    assert "typing" not in await other_tab.received_types()


async def test_typing_is_throttled_per_user_and_chat(connect, user, other_user, chat):
    # given
    typist = await connect(user, "/ws/")
    listener = await connect(other_user, f"/ws/chat/{chat.id}/")
    # when
    for _ in range(3):
        await typist.send({"type": "typing", "chat_id": chat.id})
    await typist.is_open()
    # then
    assert (await listener.received_types()).count("typing") == 1


async def test_typing_in_a_chat_of_others_is_not_found(connect, user, other_user):
    # given
    stranger = await sync_to_async(UserFactory.create)()
    others_chat = await sync_to_async(group_with)(other_user, stranger)
    socket = await connect(user, "/ws/")
    # when
    await socket.send({"type": "typing", "chat_id": others_chat.id})
    # then
    assert (await socket.receive_type("error"))["code"] == "not_found"


async def test_typing_without_chat_id_on_the_all_chats_socket_is_invalid(connect, user, chat):
    # given
    socket = await connect(user, "/ws/")
    # when
    await socket.send({"type": "typing"})
    # then
    assert (await socket.receive_type("error"))["code"] == "invalid"


async def test_read_moves_the_read_position_and_announces_chat_read(connect, user, other_user, chat):
    # given
    message = await sync_to_async(message_in)(chat, other_user, "hello")
    reader = await connect(user, f"/ws/chat/{chat.id}/")
    sender = await connect(other_user, "/ws/")
    # when
    await reader.send({"type": "read", "message_id": message.id})
    # then
    event = await sender.receive_type("chat.read")
    assert event == {"type": "chat.read", "chat_id": chat.id, "user_id": user.id, "last_read_id": message.id}


async def test_read_of_a_message_of_another_chat_is_invalid(connect, user, other_user, chat):
    # given
    elsewhere = await sync_to_async(group_with)(user, other_user)
    message = await sync_to_async(message_in)(elsewhere, other_user)
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    # when
    await socket.send({"type": "read", "message_id": message.id})
    # then
    assert (await socket.receive_type("error"))["code"] == "invalid"


async def test_read_without_message_id_is_invalid(connect, user, chat):
    # given
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    # when
    await socket.send({"type": "read", "message_id": "12"})
    # then
    assert (await socket.receive_type("error"))["code"] == "invalid"
    assert await socket.is_open()


async def test_ping_gets_pong(connect, user):
    # given
    socket = await connect(user, "/ws/")
    # when
    await socket.send({"type": "ping"})
    # then
    assert await socket.receive() == {"type": "pong"}


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '"ping"', '{"no_type": 1}', '{"type": "dance"}'])
async def test_a_bad_frame_gets_invalid_and_the_socket_stays_open(connect, user, text):
    # given
    socket = await connect(user, "/ws/")
    # when
    await socket.send_text(text)
    # then
    error = await socket.receive_type("error")
    assert (error["type"], error["code"]) == ("error", "invalid")
    assert error["detail"]
    assert await socket.is_open()


async def test_a_binary_frame_is_invalid(connect, user):
    # given
    socket = await connect(user, "/ws/")
    # when
    await socket.communicator.send_to(bytes_data=b"\x00\x01")
    # then
    assert (await socket.receive_type("error"))["code"] == "invalid"
    assert await socket.is_open()


async def test_a_frame_over_the_size_limit_is_too_large_and_the_socket_stays_open(connect, user, chat, settings):
    # given
    settings.WEBSOCKET_MAX_FRAME_BYTES = 1024
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    # when
    await socket.send_text(json.dumps({"type": "message.send", "content": "é" * 600, "client_id": "big"}))
    # then
    error = await socket.receive_type("error")
    assert error["code"] == "too_large"
    assert await socket.is_open()
    assert await messages_of(chat) == []


async def test_flooding_is_rate_limited_then_closed_4429(connect, user, settings):
    # given
    settings.WEBSOCKET_RATE_PER_SECOND = 1
    settings.WEBSOCKET_RATE_BURST = 3
    settings.WEBSOCKET_FLOOD_CLOSE_AFTER = 5
    socket = await connect(user, "/ws/")
    # when
    for _ in range(12):
        await socket.send({"type": "ping"})
    # then
    replies = [await socket.receive() for _ in range(3)]
    assert replies == [{"type": "pong"}] * 3
    assert (await socket.receive_type("error"))["code"] == "rate_limited"
    assert await socket.closed_with() == 4429


async def test_sends_queued_back_to_back_are_stored_in_frame_order_with_replies_in_order(connect, user, chat):
    # given
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    frames = [{"type": "message.send", "content": f"m{i}", "client_id": f"c{i}"} for i in range(6)]
    frames[3] = {"type": "message.send", "content": "   ", "client_id": "c3"}  # refused in the middle
    # when: all frames are queued before the server handles the first
    for frame in frames:
        await socket.send(frame)
    # then
    replies: list[dict] = []
    while len(replies) < 6:
        frame = await socket.receive()
        if frame["type"] in {"message.ack", "error"}:
            replies.append(frame)
    assert [(r["type"], r["client_id"]) for r in replies] == [
        ("message.ack", "c0"),
        ("message.ack", "c1"),
        ("message.ack", "c2"),
        ("error", "c3"),
        ("message.ack", "c4"),
        ("message.ack", "c5"),
    ]
    versions = [r["message"]["version"] for r in replies if r["type"] == "message.ack"]
    assert versions == sorted(versions)
    assert await messages_of(chat) == [(f"m{i}", f"c{i}") for i in (0, 1, 2, 4, 5)]


async def test_the_servers_shutdown_message_answers_the_frames_before_it_then_closes_with_1001(connect, user, chat):
    # given: sends received, then the server's shutdown message behind them (messenger.paced_server)
    socket = await connect(user, f"/ws/chat/{chat.id}/")
    for n in range(5):
        await socket.send({"type": "message.send", "content": f"m{n}", "client_id": f"c-{n}"})
    await socket.communicator.send_input({"type": adapter.SERVER_SHUTDOWN})
    await socket.send({"type": "message.send", "content": "late", "client_id": "c-late"})
    # when / then: every send before it acked, in order, then the close with 1001 (going away)
    acks = [(await socket.receive_type("message.ack"))["client_id"] for _ in range(5)]
    assert acks == [f"c-{n}" for n in range(5)]
    assert await socket.closed_with() == 1001
    # and a frame that came after it is not taken (the client sends it again after reconnecting)
    assert [content for content, _ in await messages_of(chat)] == [f"m{n}" for n in range(5)]
