"""System messages (contract v1.1): a change to a chat is recorded as a message of kind "system",
which takes a version, reaches sockets as message.created, is in history and catch-up, counts as
unread for nobody, and can be neither edited nor deleted."""

import pytest

from chats import services
from chats.models import ChatUser, Message
from tests.conftest import frames
from tests.factories import UserFactory, direct_between, message_in


def system_messages(chat):
    return list(Message.objects.filter(chat=chat, kind="system").order_by("id").values_list("system", flat=True))


def history(client, chat, **params):
    chat_id = chat if isinstance(chat, int) else chat.id
    r = client.get(f"/api/chats/{chat_id}/messages", params)
    assert r.status_code == 200, r.content
    return r.json()["results"]


def test_a_new_group_starts_with_its_chat_created_message(api_client, user, other_user):
    # when
    r = api_client.post("/api/chats", {"is_group": True, "title": "Trip", "member_ids": [other_user.id]}, format="json")
    # then
    assert r.status_code == 201, r.content
    (message,) = history(api_client, r.json()["id"])
    assert message["kind"] == "system"
    assert message["system"] == {"action": "chat.created", "actor_id": user.id, "title": "Trip"}
    assert (message["version"], message["content"], message["sender"]["id"]) == (1, "", user.id)


def test_a_direct_chat_has_no_system_message(api_client, other_user):
    # when
    r = api_client.post("/api/chats", {"is_group": False, "member_ids": [other_user.id]}, format="json")
    # then
    assert r.status_code == 201, r.content
    assert r.json()["version"] == 0
    assert not Message.objects.filter(chat_id=r.json()["id"]).exists()


def test_a_rename_is_recorded_with_the_new_title_and_takes_a_version(api_client, user, chat):
    # given
    message_in(chat, user, "before")
    # when
    r = api_client.patch(f"/api/chats/{chat.id}", {"title": "Renamed"}, format="json")
    # then
    assert r.status_code == 200, r.content
    newest = history(api_client, chat)[0]
    assert newest["system"] == {"action": "chat.renamed", "actor_id": user.id, "title": "Renamed"}
    assert newest["version"] == 2 == r.json()["version"]
    assert r.json()["last_message"]["id"] == newest["id"]


def test_member_changes_are_recorded_in_order(api_client, user, other_user, chat, make_client):
    # given
    newcomer, admin = UserFactory.create(), UserFactory.create()
    services.chat_member_add(chat_id=chat.id, actor=user, user_id=admin.id)
    # when
    api_client.post(f"/api/chats/{chat.id}/members", {"user_id": newcomer.id}, format="json")
    api_client.patch(f"/api/chats/{chat.id}/members/{admin.id}", {"role": "admin"}, format="json")
    api_client.delete(f"/api/chats/{chat.id}/members/{other_user.id}")
    make_client(newcomer).delete(f"/api/chats/{chat.id}/members/{newcomer.id}")
    # then
    assert system_messages(chat) == [
        {"action": "member.added", "actor_id": user.id, "user_id": admin.id},
        {"action": "member.added", "actor_id": user.id, "user_id": newcomer.id},
        {"action": "role.changed", "actor_id": user.id, "user_id": admin.id, "role": "admin"},
        {"action": "member.removed", "actor_id": user.id, "user_id": other_user.id},
        {"action": "member.left", "actor_id": newcomer.id, "user_id": newcomer.id},
    ]
    versions = list(Message.objects.filter(chat=chat).order_by("id").values_list("version", flat=True))
    assert versions == [1, 2, 3, 4, 5]


def test_the_owner_leaving_records_the_new_owner_as_a_role_change(api_client, user, other_user, chat):
    # when
    r = api_client.delete(f"/api/chats/{chat.id}/members/{user.id}")
    # then
    assert r.status_code == 204, r.content
    assert system_messages(chat) == [
        {"action": "member.left", "actor_id": user.id, "user_id": user.id},
        {"action": "role.changed", "actor_id": user.id, "user_id": other_user.id, "role": "owner"},
    ]


def test_a_role_set_to_what_it_is_records_nothing(user, other_user, chat):
    # when
    services.chat_member_set_role(chat_id=chat.id, actor=user, user_id=other_user.id, role="member")
    # then
    assert system_messages(chat) == []


def test_system_messages_count_as_unread_for_nobody(api_client, user, other_user, chat, make_client):
    # given: bob has read everything so far
    first = message_in(chat, user, "hi")
    services.chat_mark_read(chat_id=chat.id, user=other_user, message_id=first.id)
    # when
    api_client.patch(f"/api/chats/{chat.id}", {"title": "Renamed"}, format="json")
    api_client.post(f"/api/chats/{chat.id}/members", {"user_id": UserFactory.create().id}, format="json")
    # then
    assert ChatUser.objects.get(chat=chat, user=other_user).unread_count == 0
    bob = make_client(other_user).get(f"/api/chats/{chat.id}").json()
    assert bob["unread_count"] == 0


def test_marking_read_before_a_system_message_does_not_count_it(user, other_user, chat):
    # given: bob has read nothing; a text message, a system message, a text message
    first = message_in(chat, user, "one")
    services.chat_update(chat_id=chat.id, actor=user, title="Renamed")
    chat.refresh_from_db()
    message_in(chat, user, "two")
    # when
    membership = services.chat_mark_read(chat_id=chat.id, user=other_user, message_id=first.id)
    # then: only "two" is unread
    assert membership.unread_count == 1


def test_system_messages_are_in_catch_up(api_client, user, chat):
    # given
    message_in(chat, user, "text")
    # when
    services.chat_update(chat_id=chat.id, actor=user, title="Renamed")
    # then
    caught_up = history(api_client, chat, since=1)
    assert [(m["kind"], m["version"]) for m in caught_up] == [("system", 2)]


@pytest.mark.parametrize("who", ["actor", "member"])
def test_a_system_message_cannot_be_edited(api_client, user, other_user, chat, make_client, unchanged, who):
    # given
    services.chat_update(chat_id=chat.id, actor=user, title="Renamed")
    message = Message.objects.get(chat=chat, kind="system")
    client = api_client if who == "actor" else make_client(other_user)
    # when
    with unchanged():
        r = client.patch(f"/api/chats/{chat.id}/messages/{message.id}", {"content": "forged"}, format="json")
    # then
    assert r.status_code == 400, r.content
    assert "content" in r.json()


def test_a_system_message_cannot_be_deleted_even_by_the_owner(api_client, user, chat, unchanged):
    # given
    services.chat_update(chat_id=chat.id, actor=user, title="Renamed")
    message = Message.objects.get(chat=chat, kind="system")
    # when
    with unchanged():
        r = api_client.delete(f"/api/chats/{chat.id}/messages/{message.id}")
    # then
    assert r.status_code == 400, r.content
    assert r.json() == {"detail": "A system message cannot be deleted."}


def test_a_direct_chat_s_text_message_is_still_kind_text(api_client, user, other_user):
    # given
    chat = direct_between(user, other_user)
    # when
    r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "hi"}, format="json")
    # then
    assert r.status_code == 201, r.content
    assert (r.json()["kind"], r.json()["system"]) == ("text", None)


@pytest.mark.django_db(transaction=True)
def test_a_system_message_reaches_the_chat_as_message_created_after_the_commit(user, chat, announced):
    # when
    services.chat_update(chat_id=chat.id, actor=user, title="Renamed")
    # then
    sent = [(group, frame) for group, frame in frames(announced) if frame["type"] == "message.created"]
    ((group, frame),) = sent
    assert group == f"chat.{chat.id}"
    assert frame["version"] == frame["message"]["version"] == 1
    assert frame["message"]["system"] == {"action": "chat.renamed", "actor_id": user.id, "title": "Renamed"}
