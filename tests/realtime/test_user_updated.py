"""A changed profile reaches the people who see it, live: `user.updated` {user: PublicUser} once to each
socket of everyone sharing a chat with the user (their own other sockets too), after the commit,
rendered once, sent to the user's chats (found in one query) and own group, never per member."""

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from accounts import services as account_services
from accounts.serializers import PublicUserSerializer
from chats.realtime import render
from tests.conftest import frames
from tests.factories import UserFactory, group_with
from tests.media import images
from tests.media.test_avatars import put_avatar
from tests.realtime.test_outbox import queries

pytestmark = pytest.mark.django_db(transaction=True)

PUBLIC = set(PublicUserSerializer.Meta.fields)


def public_part(me: dict[str, Any]) -> dict[str, Any]:
    """The PublicUser inside a MeSerializer answer."""
    return {key: value for key, value in me.items() if key in PUBLIC}


# Over sockets ------------------------------------------------------------------------------------


async def test_a_rename_reaches_a_peer_and_the_users_other_tab_with_the_rest_answer_not_a_stranger(
    connect, rest, user, other_user, chat
):
    # given
    stranger = await sync_to_async(UserFactory.create)()
    peer = await connect(other_user, "/ws/")
    other_tab = await connect(user, "/ws/")
    outsider = await connect(stranger, "/ws/")
    # when
    r = await rest(user, "patch", "/api/auth/me", {"display_name": "Alice Renamed"})
    # then
    assert r.status_code == 200, r.content
    for socket in (peer, other_tab):
        event = await socket.receive_type("user.updated")
        assert set(event) == {"type", "user"}
        assert event["user"] == public_part(r.json())
        assert event["user"]["display_name"] == "Alice Renamed"
    assert "user.updated" not in await outsider.received_types()


async def test_a_new_avatar_and_its_removal_reach_a_peer_with_the_url_rest_answered(
    connect, make_client, user, other_user, chat
):
    # given
    peer = await connect(other_user, "/ws/")
    client = await sync_to_async(make_client)(user)
    # when
    put = await sync_to_async(put_avatar)(client, images.png(size=(40, 40)))
    # then
    assert put.status_code == 200, put.content
    set_event = await peer.receive_type("user.updated")
    assert set_event["user"] == public_part(put.json())
    assert set_event["user"]["avatar_url"].startswith("/api/avatars/")
    # when
    deleted = await sync_to_async(client.delete)("/api/auth/me/avatar")
    # then
    assert deleted.status_code == 200, deleted.content
    removed_event = await peer.receive_type("user.updated")
    assert removed_event["user"] == public_part(deleted.json())
    assert removed_event["user"]["avatar_url"] is None


async def test_a_peer_in_several_shared_chats_hears_it_once_on_each_socket(connect, rest, user, other_user, chat):
    # given: a group besides their direct chat, an all-chats socket and one chat's socket
    await sync_to_async(group_with)(user, other_user, owner=user)
    all_chats = await connect(other_user, "/ws/")
    one_chat = await connect(other_user, f"/ws/chat/{chat.id}/")
    # when
    await rest(user, "patch", "/api/auth/me", {"display_name": "Once each"})
    await rest(user, "patch", "/api/auth/me", {"display_name": "Twice each"})
    # then: each socket has the first, then the second, and no copy of either
    for socket in (all_chats, one_chat):
        names: list[str] = []
        while len(names) < 2:
            frame = await socket.receive()
            if frame["type"] == "user.updated":
                names.append(frame["user"]["display_name"])
        assert names == ["Once each", "Twice each"]
        assert "user.updated" not in await socket.received_types()


# Who, when, and at what cost ------------------------------------------------------------------------


@pytest.fixture
def renders(monkeypatch) -> list[int]:
    """The user ids of every PublicUser the renderer of the events builds."""
    calls: list[int] = []
    real = render.public_user_data

    def counted(user, **kwargs):
        calls.append(user.pk)
        return real(user, **kwargs)

    monkeypatch.setattr(render, "public_user_data", counted)
    return calls


def test_one_rendering_one_text_to_the_users_chats_and_own_group_never_per_member(
    user, api_client, announced, renders
):
    # given: three groups of the user sharing members, and a group the user is not in
    a, b, c = UserFactory.create_batch(3), UserFactory.create_batch(3), UserFactory.create_batch(3)
    mine = [group_with(user, *a, owner=user), group_with(user, *a[:2], *b, owner=user), group_with(user, b[0])]
    group_with(*b, *c, owner=b[0])
    # when
    r = api_client.patch("/api/auth/me", {"display_name": "Once"}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert renders == [user.id]
    groups = [group for group, _ in announced]
    assert groups[0] == f"user.{user.id}"
    assert sorted(groups[1:]) == sorted(f"chat.{chat.id}" for chat in mine)
    assert len({id(envelope["text"]) for _, envelope in announced}) == 1  # encoded once: the same string
    assert len({envelope["nonce"] for _, envelope in announced}) == 1  # one event: once to each socket
    _, frame = frames(announced)[0]
    assert frame == {"type": "user.updated", "user": public_part(r.json())}


def test_a_user_in_no_chat_hears_it_on_their_own_other_sockets(user, api_client, announced):
    # when
    api_client.patch("/api/auth/me", {"display_name": "Alone"}, format="json")
    # then
    assert [(group, frame["type"]) for group, frame in frames(announced)] == [(f"user.{user.id}", "user.updated")]


def test_the_queries_do_not_grow_with_the_peers(user, api_client, announced, django_assert_max_num_queries):
    # given
    for _ in range(2):
        group_with(user, UserFactory.create(), owner=user)
    rename = 0

    def patch() -> None:
        nonlocal rename
        rename += 1
        assert api_client.patch("/api/auth/me", {"display_name": f"n{rename}"}, format="json").status_code == 200

    few = queries(patch)
    # when: 20 more chats of 20 members each
    for _ in range(20):
        group_with(user, *UserFactory.create_batch(19), owner=user)
    many = queries(patch)
    # then
    assert many == few
    assert len(announced) == (1 + 2) + (1 + 22)  # the user's group and chats, each time
    # and the whole request is pinned (both databases: 8): the user's authentication and update, and for
    # the event its savepoint (2), the user's row and the one query for their chats
    with django_assert_max_num_queries(8):
        patch()


def test_nothing_is_told_when_nothing_others_see_changed(user, api_client, announced):
    # given: the same picture again, and an email change (pending, and private)
    group_with(user, UserFactory.create(), owner=user)
    assert put_avatar(api_client, images.png(size=(30, 30))).status_code == 200
    announced.clear()
    # when
    again = put_avatar(api_client, images.png(size=(30, 30)))
    account_services.user_update(user=user, email="new-address@example.com")
    # then
    assert again.status_code == 200
    assert announced == []


def test_a_refused_avatar_tells_no_one(user, api_client, announced):
    # given
    group_with(user, UserFactory.create(), owner=user)
    # when
    r = put_avatar(api_client, b"not an image at all")
    # then
    assert r.status_code == 400
    assert announced == []


def test_a_rename_rolled_back_with_its_transaction_tells_no_one(user, announced):
    # given
    group_with(user, UserFactory.create(), owner=user)
    # when
    with pytest.raises(ValueError), transaction.atomic():
        account_services.user_update(user=user, display_name="Never")
        raise ValueError
    # then
    assert announced == []
