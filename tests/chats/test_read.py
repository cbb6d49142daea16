"""POST /api/chats/{id}/read {message_id} → {last_read_id, unread_count}; unread counts and is_read."""

import pytest

from chats.models import Message
from tests.factories import group_with, message_in


def read(client, chat, message_id):
    return client.post(f"/api/chats/{chat.id}/read", {"message_id": message_id}, format="json")


def send(client, chat, content="hi"):
    r = client.post(f"/api/chats/{chat.id}/messages", {"content": content}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def unread(client, chat):
    return client.get(f"/api/chats/{chat.id}").json()["unread_count"]


def test_unread_count_rises_with_others_messages(client_for, chat, user, other_user):
    # when
    for n in range(3):
        send(client_for(other_user), chat, f"m{n}")
    # then
    assert unread(client_for(user), chat) == 3


def test_unread_count_does_not_rise_with_own_messages(client_for, chat, user, other_user):
    # when
    send(client_for(user), chat)
    send(client_for(user), chat)
    # then
    assert unread(client_for(user), chat) == 0
    assert unread(client_for(other_user), chat) == 2


def test_read_marks_up_to_the_message_and_answers_the_position(client_for, chat, user, other_user):
    # given
    sent = [send(client_for(other_user), chat, f"m{n}") for n in range(4)]
    # when
    r = read(client_for(user), chat, sent[1]["id"])
    # then
    assert r.status_code == 200, r.content
    assert r.json() == {"last_read_id": sent[1]["id"], "unread_count": 2}
    listed = client_for(user).get(f"/api/chats/{chat.id}").json()
    assert (listed["last_read_id"], listed["unread_count"]) == (sent[1]["id"], 2)


def test_read_sets_is_read_on_the_others_messages(client_for, chat, user, other_user):
    # given
    sent = [send(client_for(other_user), chat, f"m{n}") for n in range(3)]
    # when
    read(client_for(user), chat, sent[1]["id"])
    # then
    seen_by_sender = client_for(other_user).get(f"/api/chats/{chat.id}/messages").json()["results"]
    assert {m["id"]: m["is_read"] for m in seen_by_sender} == {
        sent[0]["id"]: True,
        sent[1]["id"]: True,
        sent[2]["id"]: False,
    }


def test_reading_does_not_mark_the_readers_own_messages_read(client_for, chat, user, other_user):
    # given
    mine = send(client_for(user), chat, "mine")
    theirs = send(client_for(other_user), chat, "theirs")
    # when
    read(client_for(user), chat, theirs["id"])
    # then
    assert Message.objects.get(pk=mine["id"]).is_read is True  # other_user read it by replying
    solo = send(client_for(user), chat, "unanswered")
    read(client_for(user), chat, solo["id"])
    assert Message.objects.get(pk=solo["id"]).is_read is False


def test_read_never_moves_the_position_back(client_for, chat, user, other_user):
    # given
    sent = [send(client_for(other_user), chat, f"m{n}") for n in range(3)]
    read(client_for(user), chat, sent[2]["id"])
    # when
    r = read(client_for(user), chat, sent[0]["id"])
    # then
    assert r.status_code == 200, r.content
    assert r.json() == {"last_read_id": sent[2]["id"], "unread_count": 0}


def test_read_of_the_latest_message_clears_the_unread_count(client_for, chat, user, other_user):
    # given
    sent = [send(client_for(other_user), chat, f"m{n}") for n in range(3)]
    # when
    r = read(client_for(user), chat, sent[-1]["id"])
    # then
    assert r.json()["unread_count"] == 0
    assert unread(client_for(user), chat) == 0


def test_read_announces_chat_read(client_for, chat, user, other_user, django_capture_on_commit_callbacks):
    # given
    sent = send(client_for(other_user), chat)
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = read(client_for(user), chat, sent["id"])
    # then
    assert r.status_code == 200, r.content
    assert callbacks


def test_reading_again_announces_nothing(client_for, chat, user, other_user, django_capture_on_commit_callbacks):
    # given
    sent = send(client_for(other_user), chat)
    read(client_for(user), chat, sent["id"])
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        read(client_for(user), chat, sent["id"])
    # then
    assert callbacks == []


def test_reading_a_message_of_another_chat_answers_400(client_for, chat, user, other_user, unchanged):
    # given
    elsewhere = group_with(user, other_user, title="elsewhere")
    foreign = message_in(elsewhere, other_user, "there")
    # when
    with unchanged():
        r = read(client_for(user), chat, foreign.id)
    # then
    assert r.status_code == 400, r.content
    assert "message_id" in r.json()


@pytest.mark.parametrize("body", [{}, {"message_id": "x"}, {"message_id": 0}, {"message_id": 999999}])
def test_read_refuses_a_bad_message_id(client_for, chat, user, unchanged, body):
    # when
    with unchanged():
        r = client_for(user).post(f"/api/chats/{chat.id}/read", body, format="json")
    # then
    assert r.status_code == 400, r.content
    assert "message_id" in r.json()


def test_deleted_messages_do_not_count_as_unread(client_for, chat, user, other_user):
    # given
    sent = [send(client_for(other_user), chat, f"m{n}") for n in range(3)]
    client_for(other_user).delete(f"/api/chats/{chat.id}/messages/{sent[1]['id']}")
    # when
    r = read(client_for(user), chat, sent[0]["id"])
    # then
    assert r.json()["unread_count"] == 1


def test_an_edit_does_not_change_unread_counts(client_for, chat, user, other_user):
    # given
    sent = send(client_for(other_user), chat)
    read(client_for(user), chat, sent["id"])
    # when
    client_for(other_user).patch(f"/api/chats/{chat.id}/messages/{sent['id']}", {"content": "edited"}, format="json")
    # then
    assert unread(client_for(user), chat) == 0


def test_unread_counts_are_kept_per_member(client_for, team):
    # given
    send(client_for(team.member), team.chat, "one")
    send(client_for(team.admin), team.chat, "two")
    # then
    counts = {role: unread(client_for(team.user(role)), team.chat) for role in ("owner", "admin", "member", "member2")}
    # sending means having read everything before: the admin has nothing unread
    assert counts == {"owner": 2, "admin": 0, "member": 1, "member2": 2}
