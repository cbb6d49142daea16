"""PATCH /api/chats/{id}/messages/{mid} {content} (sender only) and DELETE (sender, or group owner/admin)."""

import pytest

from chats.models import ChatUser, Message
from tests.factories import direct_between, group_with, message_in


def edit(client, message, content):
    return client.patch(f"/api/chats/{message.chat_id}/messages/{message.id}", {"content": content}, format="json")


def delete(client, message):
    return client.delete(f"/api/chats/{message.chat_id}/messages/{message.id}")


# Edit ---------------------------------------------------------------------------------------


def test_sender_edits_a_message(api_client, chat, user):
    # given
    message = message_in(chat, user, "tpyo")
    # when
    r = edit(api_client, message, "  typo  ")
    # then
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["id"] == message.id
    assert body["content"] == "typo"
    assert body["edited_at"] is not None
    message.refresh_from_db()
    assert message.content == "typo"
    assert message.edited_at is not None


def test_an_edit_takes_the_chats_next_version(api_client, chat, user, other_user):
    # given
    message = message_in(chat, user, "first")
    message_in(chat, other_user, "second")
    # when
    r = edit(api_client, message, "first, edited")
    # then
    assert r.json()["version"] == 3
    chat.refresh_from_db()
    assert chat.version == 3


def test_an_edit_keeps_the_message_id_and_created_at(api_client, chat, user):
    # given
    message = message_in(chat, user, "first")
    # when
    r = edit(api_client, message, "changed")
    # then
    assert r.json()["id"] == message.id
    assert Message.objects.get(pk=message.pk).created_at == message.created_at


def test_an_edit_announces_message_updated(api_client, chat, user, django_capture_on_commit_callbacks):
    # given
    message = message_in(chat, user, "first")
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = edit(api_client, message, "changed")
    # then
    assert r.status_code == 200, r.content
    assert callbacks


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_nobody_but_the_sender_edits_a_message(client_for, team, unchanged, role):
    # given
    message = message_in(team.chat, team.member2, "mine")
    # when
    with unchanged():
        r = edit(client_for(team.user(role)), message, "hijacked")
    # then
    assert r.status_code == 403, r.content


@pytest.mark.parametrize("content", ["", "   ", "x" * 4001], ids=["empty", "blank", "too-long"])
def test_an_edit_refuses_empty_or_too_long_content(api_client, chat, user, unchanged, content):
    # given
    message = message_in(chat, user, "first")
    # when
    with unchanged():
        r = edit(api_client, message, content)
    # then
    assert r.status_code == 400, r.content
    assert "content" in r.json()


def test_an_edit_without_content_answers_400(api_client, chat, user, unchanged):
    # given
    message = message_in(chat, user, "first")
    # when
    with unchanged():
        r = api_client.patch(f"/api/chats/{chat.id}/messages/{message.id}", {}, format="json")
    # then
    assert r.status_code == 400, r.content


def test_a_deleted_message_cannot_be_edited(api_client, chat, user, unchanged):
    # given
    message = message_in(chat, user, "first")
    delete(api_client, message)
    # when
    with unchanged():
        r = edit(api_client, message, "back from the dead")
    # then
    assert r.status_code == 400, r.content


def test_editing_a_message_of_another_chat_answers_404(api_client, chat, user, other_user, unchanged):
    # given
    elsewhere = group_with(user, other_user, title="elsewhere")
    message = message_in(elsewhere, user, "there")
    # when
    with unchanged():
        r = api_client.patch(f"/api/chats/{chat.id}/messages/{message.id}", {"content": "x"}, format="json")
    # then
    assert r.status_code == 404, r.content


def test_editing_a_missing_message_answers_404(api_client, chat, unchanged):
    # when
    with unchanged():
        r = api_client.patch(f"/api/chats/{chat.id}/messages/999999", {"content": "x"}, format="json")
    # then
    assert r.status_code == 404, r.content


def test_an_edit_ignores_unknown_fields(api_client, chat, user, other_user):
    # given
    message = message_in(chat, user, "first")
    # when
    r = api_client.patch(
        f"/api/chats/{chat.id}/messages/{message.id}",
        {"content": "second", "sender": other_user.id, "chat_id": 999, "deleted": True},
        format="json",
    )
    # then
    assert r.status_code == 200, r.content
    message.refresh_from_db()
    assert (message.content, message.sender_id, message.chat_id, message.deleted) == ("second", user.id, chat.id, False)


# Delete -------------------------------------------------------------------------------------


def test_sender_deletes_a_message_with_204(api_client, chat, user):
    # given
    message = message_in(chat, user, "oops")
    # when
    r = delete(api_client, message)
    # then
    assert r.status_code == 204, r.content
    message.refresh_from_db()
    assert (message.deleted, message.content, message.attachment_id) == (True, "", None)


def test_a_deleted_message_takes_the_next_version_and_keeps_its_place(api_client, chat, user, other_user):
    # given
    message = message_in(chat, user, "oops")
    later = message_in(chat, other_user, "later")
    # when
    delete(api_client, message)
    # then
    history = api_client.get(f"/api/chats/{chat.id}/messages").json()["results"]
    assert [m["id"] for m in history] == [later.id, message.id]
    assert history[1]["deleted"] is True
    assert history[1]["content"] == ""
    assert history[1]["attachment"] is None
    assert history[1]["version"] == 3


def test_deleting_twice_answers_204_and_takes_no_new_version(api_client, chat, user, unchanged):
    # given
    message = message_in(chat, user, "oops")
    delete(api_client, message)
    # when
    with unchanged():
        r = delete(api_client, message)
    # then
    assert r.status_code == 204, r.content


def test_a_delete_announces_message_deleted(api_client, chat, user, django_capture_on_commit_callbacks):
    # given
    message = message_in(chat, user, "oops")
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = delete(api_client, message)
    # then
    assert r.status_code == 204, r.content
    assert callbacks


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_a_group_owner_or_admin_deletes_anyones_message(client_for, team, role):
    # given
    message = message_in(team.chat, team.member, "spam")
    # when
    r = delete(client_for(team.user(role)), message)
    # then
    assert r.status_code == 204, r.content
    assert Message.objects.get(pk=message.pk).deleted is True


def test_a_member_cannot_delete_anothers_message(client_for, team, unchanged):
    # given
    message = message_in(team.chat, team.member2, "mine")
    # when
    with unchanged():
        r = delete(client_for(team.member), message)
    # then
    assert r.status_code == 403, r.content


def test_in_a_direct_chat_only_the_sender_deletes(client_for, user, other_user, unchanged):
    # given
    direct = direct_between(user, other_user)
    message = message_in(direct, user, "mine")
    # when
    with unchanged():
        r = delete(client_for(other_user), message)
    # then
    assert r.status_code == 403, r.content


def test_deleting_a_message_of_another_chat_answers_404(api_client, chat, user, other_user, unchanged):
    # given
    elsewhere = group_with(user, other_user, title="elsewhere")
    message = message_in(elsewhere, user, "there")
    # when
    with unchanged():
        r = api_client.delete(f"/api/chats/{chat.id}/messages/{message.id}")
    # then
    assert r.status_code == 404, r.content


def test_deleting_an_unread_message_lowers_the_others_unread_count(client_for, chat, user, other_user):
    # given
    message = client_for(user).post(f"/api/chats/{chat.id}/messages", {"content": "x"}, format="json").json()
    assert ChatUser.objects.get(chat=chat, user=other_user).unread_count == 1
    # when
    client_for(user).delete(f"/api/chats/{chat.id}/messages/{message['id']}")
    # then
    assert ChatUser.objects.get(chat=chat, user=other_user).unread_count == 0
    listed = client_for(other_user).get(f"/api/chats/{chat.id}").json()
    assert listed["unread_count"] == 0
