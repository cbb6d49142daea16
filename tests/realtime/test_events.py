"""Server events: what REST and socket writes announce, to whom, and what removal stops."""

import pytest
from asgiref.sync import sync_to_async

from tests.factories import UserFactory, message_in

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_message_posted_over_rest_reaches_the_chat_socket_and_the_all_chats_socket(
    connect, rest, user, other_user, chat
):
    # given
    one_chat = await connect(other_user, f"/ws/chat/{chat.id}/")
    all_chats = await connect(other_user, "/ws/")
    # when
    r = await rest(user, "post", f"/api/chats/{chat.id}/messages", {"content": "over REST"})
    # then
    assert r.status_code == 201, r.content
    for socket in (one_chat, all_chats):
        event = await socket.receive_type("message.created")
        assert event["chat_id"] == chat.id
        assert event["version"] == r.json()["version"]
        assert event["message"] == r.json() | {"sender": event["message"]["sender"]}
        assert event["message"]["sender"]["id"] == user.id


async def test_a_message_sent_over_the_socket_is_in_rest_history_and_reaches_the_other_member(
    connect, rest, user, other_user, chat
):
    # given
    sender = await connect(user, f"/ws/chat/{chat.id}/")
    listener = await connect(other_user, "/ws/")
    # when
    await sender.send({"type": "message.send", "content": "over the socket", "client_id": "c-1"})
    ack = await sender.receive_type("message.ack")
    # then
    created = await listener.receive_type("message.created")
    assert created["message"]["id"] == ack["message"]["id"]
    history = await rest(other_user, "get", f"/api/chats/{chat.id}/messages")
    assert [m["content"] for m in history.json()["results"]] == ["over the socket"]


async def test_every_open_socket_of_a_member_receives_the_event(connect, rest, user, other_user, chat):
    # given
    tabs = [await connect(other_user, "/ws/") for _ in range(3)]
    # when
    await rest(user, "post", f"/api/chats/{chat.id}/messages", {"content": "to every tab"})
    # then
    for tab in tabs:
        assert (await tab.receive_type("message.created"))["message"]["content"] == "to every tab"


async def test_edit_and_delete_reach_the_socket_with_their_versions(connect, rest, user, other_user, chat):
    # given
    message = await sync_to_async(message_in)(chat, user, "draft")
    socket = await connect(other_user, f"/ws/chat/{chat.id}/")
    # when
    edited = await rest(user, "patch", f"/api/chats/{chat.id}/messages/{message.id}", {"content": "final"})
    deleted = await rest(user, "delete", f"/api/chats/{chat.id}/messages/{message.id}")
    # then
    assert edited.status_code == 200, edited.content
    assert deleted.status_code == 204, deleted.content
    updated = await socket.receive_type("message.updated")
    assert (updated["message"]["content"], updated["version"]) == ("final", edited.json()["version"])
    gone = await socket.receive_type("message.deleted")
    assert gone == {"type": "message.deleted", "chat_id": chat.id, "message_id": message.id, "version": 3}


async def test_renaming_a_group_reaches_members_as_a_chat_updated_delta(connect, rest, user, other_user, chat):
    # given
    socket = await connect(other_user, "/ws/")
    chat_socket = await connect(other_user, f"/ws/chat/{chat.id}/")
    # when
    r = await rest(user, "patch", f"/api/chats/{chat.id}", {"title": "Renamed"})
    # then: the changed fields only, the same frame for every member (not the whole chat once per member)
    assert r.status_code == 200, r.content
    delta = {"type": "chat.updated", "chat": {"id": chat.id, "is_group": True, "title": "Renamed"}}
    assert await socket.receive_type("chat.updated") == delta
    assert await chat_socket.receive_type("chat.updated") == delta


async def test_a_role_change_reaches_members_as_member_updated(connect, rest, user, other_user, chat):
    # given
    socket = await connect(other_user, "/ws/")
    # when
    r = await rest(user, "patch", f"/api/chats/{chat.id}/members/{other_user.id}", {"role": "admin"})
    # then
    assert r.status_code == 200, r.content
    assert await socket.receive_type("member.updated") == {
        "type": "member.updated",
        "chat_id": chat.id,
        "user_id": other_user.id,
        "role": "admin",
    }


async def test_a_new_group_reaches_its_members_and_their_sockets_follow_it(connect, rest, user, other_user):
    # given
    socket = await connect(other_user, "/ws/")
    created = await rest(user, "post", "/api/chats", {"is_group": True, "title": "New", "member_ids": [other_user.id]})
    assert created.status_code == 201, created.content
    chat_id = created.json()["id"]
    event = await socket.receive_type("chat.created")
    assert event["chat"]["id"] == chat_id
    # when
    await rest(user, "post", f"/api/chats/{chat_id}/messages", {"content": "first words"})
    # then
    assert (await socket.receive_type("message.created"))["chat_id"] == chat_id


async def test_an_added_member_hears_of_the_chat_then_of_its_messages(connect, rest, user, other_user, chat):
    # given
    newcomer = await sync_to_async(UserFactory.create)()
    newcomer_socket = await connect(newcomer, "/ws/")
    member_socket = await connect(other_user, f"/ws/chat/{chat.id}/")
    # when
    added = await rest(user, "post", f"/api/chats/{chat.id}/members", {"user_id": newcomer.id})
    await rest(user, "post", f"/api/chats/{chat.id}/messages", {"content": "welcome"})
    # then
    assert added.status_code == 201, added.content
    assert (await newcomer_socket.receive_type("chat.created"))["chat"]["id"] == chat.id
    # the system message that records the addition, then the message sent after it
    assert (await newcomer_socket.receive_type("message.created"))["message"]["system"]["action"] == "member.added"
    assert (await newcomer_socket.receive_type("message.created"))["message"]["content"] == "welcome"
    added_event = await member_socket.receive_type("member.added")
    assert added_event == {
        "type": "member.added",
        "chat_id": chat.id,
        "user_id": newcomer.id,
        "member": {"user": added_event["member"]["user"], "role": "member"},
    }
    assert (added_event["member"]["user"]["id"], added_event["member"]["user"]["username"]) == (
        newcomer.id,
        newcomer.username,
    )


async def test_a_removed_member_chat_socket_is_closed_4403(connect, rest, user, other_user, chat):
    # given
    socket = await connect(other_user, f"/ws/chat/{chat.id}/")
    # when
    r = await rest(user, "delete", f"/api/chats/{chat.id}/members/{other_user.id}")
    # then
    assert r.status_code == 204, r.content
    assert await socket.receive_type("member.removed") == {
        "type": "member.removed",
        "chat_id": chat.id,
        "user_id": other_user.id,
    }
    assert await socket.closed_with() == 4403


async def test_a_removed_member_all_chats_socket_hears_nothing_more_of_the_chat(connect, rest, user, other_user, chat):
    # given
    socket = await connect(other_user, "/ws/")
    await rest(user, "delete", f"/api/chats/{chat.id}/members/{other_user.id}")
    assert (await socket.receive_type("member.removed"))["user_id"] == other_user.id
    # when
    await rest(user, "post", f"/api/chats/{chat.id}/messages", {"content": "after you left"})
    await rest(user, "patch", f"/api/chats/{chat.id}", {"title": "Without you"})
    # then
    received = await socket.received_types()
    assert "message.created" not in received
    assert "member.removed" not in received  # heard once, not again through the user's group
    assert await socket.is_open()


async def test_the_remaining_members_hear_of_the_removal(connect, rest, user, other_user, chat):
    # given
    socket = await connect(user, "/ws/")
    # when
    await rest(user, "delete", f"/api/chats/{chat.id}/members/{other_user.id}")
    # then
    event = await socket.receive_type("member.removed")
    assert event["user_id"] == other_user.id
    assert await socket.is_open()


async def test_a_chat_socket_of_a_member_who_leaves_is_closed_4403(connect, rest, user, other_user, chat):
    # given
    socket = await connect(other_user, f"/ws/chat/{chat.id}/")
    # when
    r = await rest(other_user, "delete", f"/api/chats/{chat.id}/members/{other_user.id}")
    # then
    assert r.status_code == 204, r.content
    assert await socket.closed_with() == 4403
