"""GET / PATCH /api/chats/{id}: the Chat; PATCH {title} by a group owner/admin."""

import pytest

from chats.models import Chat
from tests.factories import direct_between, message_in


def test_get_chat_answers_the_chat(api_client, chat, user, other_user):
    # given
    last = message_in(chat, other_user, "latest")
    # when
    r = api_client.get(f"/api/chats/{chat.id}")
    # then
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["id"] == chat.id
    assert body["title"] == chat.title
    assert body["my_role"] == "owner"
    assert body["last_message"]["id"] == last.id
    assert body["version"] == chat.version


def test_get_chat_works_with_a_trailing_slash(api_client, chat):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/")
    # then
    assert r.status_code == 200, r.content


def test_get_chat_that_does_not_exist_answers_404(api_client, db):
    # when
    r = api_client.get("/api/chats/999999")
    # then
    assert r.status_code == 404, r.content


def test_get_chat_shows_members_online(api_client, chat, other_user, set_online):
    # given
    set_online(other_user)
    # when
    r = api_client.get(f"/api/chats/{chat.id}")
    # then
    online = {m["user"]["id"]: m["user"]["is_online"] for m in r.json()["members"]}
    assert online[other_user.id] is True


def test_owner_renames_the_group(api_client, chat):
    # when
    r = api_client.patch(f"/api/chats/{chat.id}", {"title": "  Renamed 🎉 "}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert r.json()["title"] == "Renamed 🎉"
    chat.refresh_from_db()
    assert chat.title == "Renamed 🎉"


def test_rename_announces_chat_updated_to_each_member(
    api_client, chat, user, other_user, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = api_client.patch(f"/api/chats/{chat.id}", {"title": "Renamed"}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert len(callbacks) >= 1


def test_member_cannot_rename_the_group(client_for, chat, other_user, unchanged):
    # when
    with unchanged():
        r = client_for(other_user).patch(f"/api/chats/{chat.id}", {"title": "Mine now"}, format="json")
    # then
    assert r.status_code == 403, r.content
    assert "detail" in r.json()


def test_a_direct_chat_cannot_be_titled(api_client, user, other_user, unchanged):
    # given
    direct = direct_between(user, other_user)
    # when
    with unchanged():
        r = api_client.patch(f"/api/chats/{direct.id}", {"title": "Us"}, format="json")
    # then
    assert r.status_code == 400, r.content
    assert "title" in r.json()


@pytest.mark.parametrize("title", ["", "   ", "t" * 129, None], ids=["empty", "blank", "too-long", "null"])
def test_rename_refuses_a_blank_or_too_long_title(api_client, chat, unchanged, title):
    # when
    with unchanged():
        r = api_client.patch(f"/api/chats/{chat.id}", {"title": title}, format="json")
    # then
    assert r.status_code == 400, r.content
    assert "title" in r.json()


def test_rename_without_title_answers_400(api_client, chat, unchanged):
    # when
    with unchanged():
        r = api_client.patch(f"/api/chats/{chat.id}", {}, format="json")
    # then
    assert r.status_code == 400, r.content


def test_rename_ignores_unknown_fields(api_client, chat):
    # when
    r = api_client.patch(f"/api/chats/{chat.id}", {"title": "New", "is_group": False, "version": 42}, format="json")
    # then
    assert r.status_code == 200, r.content
    chat.refresh_from_db()
    assert (chat.is_group, chat.version, chat.title) == (True, 1, "New")  # version: the "chat.renamed" message


@pytest.mark.parametrize("method", ["put", "delete"])
def test_chat_cannot_be_replaced_or_deleted(api_client, chat, method):
    # when
    r = getattr(api_client, method)(f"/api/chats/{chat.id}", {"title": "x"}, format="json")
    # then
    assert r.status_code == 405, r.content
    assert Chat.objects.filter(pk=chat.pk).exists()
