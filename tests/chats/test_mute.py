"""Mute (contract v1.1): PATCH /api/chats/{id} {muted: bool}, any member, for themself; Chat gains
`muted` for the caller wherever a Chat is rendered."""

import pytest

from chats import services
from chats.models import ChatUser
from tests.conftest import frames
from tests.factories import UserFactory, direct_between


def mute(client, chat, muted=True):
    return client.patch(f"/api/chats/{chat.id}", {"muted": muted}, format="json")


def test_a_plain_member_mutes_a_group_for_themself(make_client, api_client, other_user, chat):
    # when
    r = mute(make_client(other_user), chat)
    # then
    assert r.status_code == 200, r.content
    assert r.json()["muted"] is True
    assert api_client.get(f"/api/chats/{chat.id}").json()["muted"] is False  # the owner's is theirs


def test_muted_shows_in_the_chat_list_and_can_be_undone(api_client, chat):
    # given
    mute(api_client, chat)
    assert api_client.get("/api/chats").json()["results"][0]["muted"] is True
    # when
    r = mute(api_client, chat, muted=False)
    # then
    assert r.json()["muted"] is False
    assert api_client.get("/api/chats").json()["results"][0]["muted"] is False


def test_a_direct_chat_can_be_muted(api_client, user, other_user):
    chat = direct_between(user, other_user)
    r = mute(api_client, chat)
    assert (r.status_code, r.json()["muted"]) == (200, True), r.content


def test_muting_renames_nothing_and_takes_no_version(api_client, chat):
    # when
    r = mute(api_client, chat)
    # then
    assert (r.json()["title"], r.json()["version"]) == (chat.title, chat.version)


def test_a_rename_and_a_mute_at_once(api_client, chat):
    r = api_client.patch(f"/api/chats/{chat.id}", {"title": "Both", "muted": True}, format="json")
    assert (r.status_code, r.json()["title"], r.json()["muted"]) == (200, "Both", True), r.content


def test_a_plain_member_renaming_and_muting_at_once_is_403_and_changes_nothing(
    make_client, other_user, chat, unchanged
):
    bob = make_client(other_user)
    with unchanged():
        r = bob.patch(f"/api/chats/{chat.id}", {"title": "Mine", "muted": True}, format="json")
    assert r.status_code == 403, r.content
    assert ChatUser.objects.get(chat=chat, user=other_user).muted is False


@pytest.mark.parametrize("muted", ["maybe", None, 2])
def test_muted_must_be_a_boolean(api_client, chat, unchanged, muted):
    with unchanged():
        r = mute(api_client, chat, muted=muted)
    assert r.status_code == 400, r.content
    assert "muted" in r.json()


def test_an_outsider_gets_404(make_client, chat, unchanged):
    outsider = make_client(UserFactory.create())
    with unchanged():
        r = mute(outsider, chat)
    assert r.status_code == 404, r.content


def test_a_new_chat_is_unmuted_and_a_newcomer_s_chat_created_says_so(api_client, chat):
    # when
    r = api_client.post(f"/api/chats/{chat.id}/members", {"user_id": UserFactory.create().id}, format="json")
    # then
    assert r.json()["muted"] is False


@pytest.mark.django_db(transaction=True)
def test_a_mute_reaches_only_the_member_s_own_sockets(user, chat, announced):
    # when
    services.chat_mute(chat_id=chat.id, user=user, muted=True)
    services.chat_mute(chat_id=chat.id, user=user, muted=True)  # no change: nothing sent
    # then
    assert frames(announced) == [(f"user.{user.id}", {"type": "chat.updated", "chat": {"id": chat.id, "muted": True}})]


@pytest.mark.django_db(transaction=True)
def test_a_muted_member_s_chat_created_carries_muted(user, other_user, chat, announced):
    # given
    services.chat_mute(chat_id=chat.id, user=user, muted=True)
    announced.clear()
    # when
    services.chat_create(creator=user, is_group=True, title="Fresh", member_ids=[other_user.id])
    # then: a new group is unmuted for everyone
    created = [frame for _, frame in frames(announced) if frame["type"] == "chat.created"]
    assert {frame["chat"]["muted"] for frame in created} == {False}
