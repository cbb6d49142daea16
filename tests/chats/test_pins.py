"""Pins (contract v1.1): POST /api/chats/{id}/pins {message_id} → 201 Message; DELETE …/pins/{mid} → 204;
GET …/pins → page of Message, most recently pinned first. Any member of a direct chat; owner/admin of a group."""

import pytest

from chats import services
from chats.models import Message
from tests.conftest import frames
from tests.factories import UserFactory, direct_between, group_with, message_in


def pin(client, chat, message):
    return client.post(f"/api/chats/{chat.id}/pins", {"message_id": message.id}, format="json")


def test_a_pin_marks_the_message_takes_a_version_and_is_recorded(api_client, user, other_user, chat):
    # given
    message = message_in(chat, other_user, "rules")
    # when
    r = pin(api_client, chat, message)
    # then
    assert r.status_code == 201, r.content
    assert (r.json()["id"], r.json()["pinned"], r.json()["version"]) == (message.id, True, 2)
    system = Message.objects.get(chat=chat, kind="system")
    assert system.system == {"action": "message.pinned", "actor_id": user.id, "message_id": message.id}
    assert system.version == 3


def test_pinning_a_pinned_message_answers_200_and_changes_nothing(api_client, other_user, chat):
    # given
    message = message_in(chat, other_user, "rules")
    first = pin(api_client, chat, message).json()
    # when
    again = pin(api_client, chat, message)
    # then
    assert again.status_code == 200, again.content
    assert again.json() == first
    assert Message.objects.filter(chat=chat, kind="system").count() == 1


def test_pins_are_listed_most_recently_pinned_first(api_client, user, other_user, chat):
    # given
    older, newer = message_in(chat, other_user, "older"), message_in(chat, other_user, "newer")
    message_in(chat, other_user, "not pinned")
    # when
    pin(api_client, chat, newer)
    pin(api_client, chat, older)
    r = api_client.get(f"/api/chats/{chat.id}/pins")
    # then
    assert r.status_code == 200, r.content
    assert [m["id"] for m in r.json()["results"]] == [older.id, newer.id]
    assert r.json()["next"] is None


def test_pins_come_in_pages(api_client, other_user, chat):
    # given
    messages = [message_in(chat, other_user, f"m{n}") for n in range(5)]
    for message in messages:
        pin(api_client, chat, message)
    # when
    first = api_client.get(f"/api/chats/{chat.id}/pins", {"limit": 3}).json()
    second = api_client.get(first["next"]).json()
    # then
    assert [m["id"] for m in first["results"] + second["results"]] == [m.id for m in reversed(messages)]


def test_an_unpin_takes_a_version_and_leaves_the_list(api_client, other_user, chat):
    # given
    message = message_in(chat, other_user, "rules")
    pin(api_client, chat, message)
    # when
    r = api_client.delete(f"/api/chats/{chat.id}/pins/{message.id}")
    again = api_client.delete(f"/api/chats/{chat.id}/pins/{message.id}")
    # then
    assert (r.status_code, again.status_code) == (204, 204), (r.content, again.content)
    message.refresh_from_db()
    assert (message.pinned_at, message.version) == (None, 4)
    assert api_client.get(f"/api/chats/{chat.id}/pins").json()["results"] == []
    caught_up = api_client.get(f"/api/chats/{chat.id}/messages", {"since": 3}).json()["results"]
    assert [(m["id"], m["pinned"]) for m in caught_up] == [(message.id, False)]


def test_a_plain_group_member_may_not_pin_or_unpin(make_client, user, other_user, chat, unchanged):
    # given
    message, another = message_in(chat, user, "rules"), message_in(chat, user, "another")
    services.message_pin(chat_id=chat.id, actor=user, message_id=message.id)
    bob = make_client(other_user)
    # when
    with unchanged():
        pinned = pin(bob, chat, another)
    with unchanged():
        unpinned = bob.delete(f"/api/chats/{chat.id}/pins/{message.id}")
    # then
    assert (pinned.status_code, unpinned.status_code) == (403, 403), (pinned.content, unpinned.content)


def test_an_admin_may_pin(make_client, user, other_user, chat):
    services.chat_member_set_role(chat_id=chat.id, actor=user, user_id=other_user.id, role="admin")
    chat.refresh_from_db()
    r = pin(make_client(other_user), chat, message_in(chat, user, "rules"))
    assert r.status_code == 201, r.content


def test_any_member_of_a_direct_chat_may_pin(make_client, user, other_user):
    chat = direct_between(user, other_user)
    r = pin(make_client(other_user), chat, message_in(chat, user, "address"))
    assert r.status_code == 201, r.content


def test_outsiders_get_404_for_every_pin_operation(make_client, user, chat, unchanged):
    # given
    message = message_in(chat, user, "rules")
    outsider = make_client(UserFactory.create())
    # when
    with unchanged():
        answers = [
            pin(outsider, chat, message).status_code,
            outsider.get(f"/api/chats/{chat.id}/pins").status_code,
            outsider.delete(f"/api/chats/{chat.id}/pins/{message.id}").status_code,
        ]
    # then
    assert answers == [404, 404, 404]


def test_pinning_a_message_of_another_chat_is_400(api_client, user, other_user, chat, unchanged):
    elsewhere = message_in(group_with(user, other_user), other_user, "there")
    with unchanged():
        r = pin(api_client, chat, elsewhere)
    assert r.status_code == 400, r.content
    assert "message_id" in r.json()


def test_unpinning_a_message_of_another_chat_is_404(api_client, user, other_user, chat):
    elsewhere = message_in(group_with(user, other_user), other_user, "there")
    assert api_client.delete(f"/api/chats/{chat.id}/pins/{elsewhere.id}").status_code == 404


@pytest.mark.parametrize("what", ["deleted", "system"])
def test_a_deleted_or_system_message_cannot_be_pinned(api_client, user, chat, unchanged, what):
    # given
    if what == "deleted":
        message = message_in(chat, user, "gone")
        services.message_delete(chat_id=chat.id, message_id=message.id, actor=user)
    else:
        services.chat_update(chat_id=chat.id, actor=user, title="Renamed")
        message = Message.objects.get(chat=chat, kind="system")
    # when
    with unchanged():
        r = pin(api_client, chat, message)
    # then
    assert r.status_code == 400, r.content


def test_a_deleted_message_is_unpinned(api_client, user, chat):
    # given
    message = message_in(chat, user, "rules")
    pin(api_client, chat, message)
    # when
    api_client.delete(f"/api/chats/{chat.id}/messages/{message.id}")
    # then
    assert api_client.get(f"/api/chats/{chat.id}/pins").json()["results"] == []


@pytest.mark.django_db(transaction=True)
def test_a_pin_reaches_the_chat_as_message_updated_then_its_system_message(api_client, other_user, chat, announced):
    # given
    message = message_in(chat, other_user, "rules")
    # when
    r = pin(api_client, chat, message)
    # then
    sent = frames(announced)
    assert [(frame["type"], frame["version"]) for _, frame in sent] == [("message.updated", 2), ("message.created", 3)]
    assert sent[0][1]["message"] == r.json()
    assert sent[1][1]["message"]["system"]["message_id"] == message.id
