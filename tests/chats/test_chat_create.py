"""POST /api/chats: direct {is_group: false, member_ids: [other]} or group {is_group: true, title, member_ids}."""

import pytest

from chats.models import Chat, ChatUser
from tests.factories import UserFactory


def create(client, **body):
    return client.post("/api/chats", body, format="json")


# Direct chats ----------------------------------------------------------------------------


def test_create_direct_answers_201_with_the_chat(api_client, user, other_user):
    # when
    r = create(api_client, is_group=False, member_ids=[other_user.id])
    # then
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["is_group"] is False
    assert body["title"] is None
    assert body["my_role"] == "member"
    assert sorted(m["user"]["id"] for m in body["members"]) == sorted([user.id, other_user.id])
    assert {m["role"] for m in body["members"]} == {"member"}
    assert Chat.objects.count() == 1


def test_create_direct_again_answers_200_with_the_same_chat(api_client, other_user):
    # given
    first = create(api_client, is_group=False, member_ids=[other_user.id])
    # when
    second = create(api_client, is_group=False, member_ids=[other_user.id])
    # then
    assert second.status_code == 200, second.content
    assert second.json()["id"] == first.json()["id"]
    assert Chat.objects.count() == 1


def test_create_direct_from_the_other_side_answers_200_with_the_same_chat(client_for, user, other_user):
    # given
    first = create(client_for(user), is_group=False, member_ids=[other_user.id])
    # when
    second = create(client_for(other_user), is_group=False, member_ids=[user.id])
    # then
    assert second.status_code == 200, second.content
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["my_role"] == "member"
    assert Chat.objects.count() == 1


def test_create_direct_ignores_a_title(api_client, other_user):
    # when
    r = create(api_client, is_group=False, member_ids=[other_user.id], title="ignored")
    # then
    assert r.status_code == 201, r.content
    assert r.json()["title"] is None


@pytest.mark.parametrize(
    "member_ids",
    ["self", "none", "two", "self-and-other", "same-twice"],
)
def test_create_direct_needs_exactly_one_other_user(api_client, user, other_user, unchanged, member_ids):
    # given
    third = UserFactory.create()
    ids = {
        "self": [user.id],
        "none": [],
        "two": [other_user.id, third.id],
        "self-and-other": [user.id, other_user.id],
        "same-twice": [other_user.id, other_user.id],
    }[member_ids]
    # when
    with unchanged():
        r = create(api_client, is_group=False, member_ids=ids)
    # then
    assert r.status_code == 400, r.content
    assert "member_ids" in r.json()


def test_create_direct_with_an_unknown_user_answers_400(api_client, unchanged):
    # when
    with unchanged():
        r = create(api_client, is_group=False, member_ids=[999999])
    # then
    assert r.status_code == 400, r.content
    assert r.json()["member_ids"] == ["No such user: 999999."]


def test_create_direct_with_a_deactivated_user_answers_400(api_client, unchanged):
    # given
    gone = UserFactory.create(is_active=False)
    # when
    with unchanged():
        r = create(api_client, is_group=False, member_ids=[gone.id])
    # then
    assert r.status_code == 400, r.content


# Groups ----------------------------------------------------------------------------------


def test_create_group_answers_201_and_makes_the_creator_owner(api_client, user, other_user):
    # given
    third = UserFactory.create()
    # when
    r = create(api_client, is_group=True, title="Hiking", member_ids=[other_user.id, third.id])
    # then
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["is_group"] is True
    assert body["title"] == "Hiking"
    assert body["my_role"] == "owner"
    roles = {m["user"]["id"]: m["role"] for m in body["members"]}
    assert roles == {user.id: "owner", other_user.id: "member", third.id: "member"}
    # its one message is the system message that records the creation (it counts as unread for nobody)
    assert body["version"] == 1
    assert body["last_message"]["kind"] == "system"
    assert body["last_message"]["system"] == {"action": "chat.created", "actor_id": user.id, "title": "Hiking"}
    assert body["unread_count"] == 0


def test_create_group_twice_makes_two_groups(api_client, other_user):
    # when
    first = create(api_client, is_group=True, title="Same", member_ids=[other_user.id])
    second = create(api_client, is_group=True, title="Same", member_ids=[other_user.id])
    # then
    assert second.status_code == 201, second.content
    assert first.json()["id"] != second.json()["id"]


def test_create_group_alone_is_allowed(api_client, user):
    # when
    r = create(api_client, is_group=True, title="Notes to self", member_ids=[])
    # then
    assert r.status_code == 201, r.content
    assert [m["user"]["id"] for m in r.json()["members"]] == [user.id]


def test_create_group_ignores_the_creator_and_duplicates_in_member_ids(api_client, user, other_user):
    # when
    r = create(api_client, is_group=True, title="Dupes", member_ids=[user.id, other_user.id, other_user.id])
    # then
    assert r.status_code == 201, r.content
    assert ChatUser.objects.filter(chat_id=r.json()["id"]).count() == 2


def test_create_group_trims_the_title(api_client, other_user):
    # when
    r = create(api_client, is_group=True, title="  Padded  ", member_ids=[other_user.id])
    # then
    assert r.json()["title"] == "Padded"


@pytest.mark.parametrize("length", [1, 128])
def test_create_group_accepts_a_title_of_1_to_128_characters(api_client, other_user, length):
    # when
    r = create(api_client, is_group=True, title="t" * length, member_ids=[other_user.id])
    # then
    assert r.status_code == 201, r.content


def test_create_group_counts_128_characters_after_trimming(api_client, other_user):
    # when
    r = create(api_client, is_group=True, title="   " + "t" * 128 + "   ", member_ids=[other_user.id])
    # then
    assert r.status_code == 201, r.content


@pytest.mark.parametrize("title", ["", "    ", None, "t" * 129], ids=["empty", "blank", "null", "too-long"])
def test_create_group_refuses_a_missing_blank_or_too_long_title(api_client, other_user, unchanged, title):
    # when
    with unchanged():
        r = create(api_client, is_group=True, title=title, member_ids=[other_user.id])
    # then
    assert r.status_code == 400, r.content
    assert "title" in r.json()


def test_create_group_without_title_answers_400(api_client, other_user, unchanged):
    # when
    with unchanged():
        r = create(api_client, is_group=True, member_ids=[other_user.id])
    # then
    assert r.status_code == 400, r.content
    assert "title" in r.json()


def test_create_group_with_an_unknown_member_creates_nothing(api_client, other_user, unchanged):
    # when
    with unchanged():
        r = create(api_client, is_group=True, title="Ghosts", member_ids=[other_user.id, 999999])
    # then
    assert r.status_code == 400, r.content
    assert r.json()["member_ids"] == ["No such user: 999999."]


def test_create_group_over_the_member_limit_answers_400(api_client, settings, unchanged):
    # given
    settings.GROUP_MAX_MEMBERS = 3
    others = [UserFactory.create().id for _ in range(3)]
    # when
    with unchanged():
        r = create(api_client, is_group=True, title="Crowd", member_ids=others)
    # then
    assert r.status_code == 400, r.content
    assert r.json()["member_ids"] == ["A group has at most 3 members."]


def test_create_group_at_the_member_limit_is_allowed(api_client, settings):
    # given
    settings.GROUP_MAX_MEMBERS = 3
    others = [UserFactory.create().id for _ in range(2)]
    # when
    r = create(api_client, is_group=True, title="Crowd", member_ids=others)
    # then
    assert r.status_code == 201, r.content


@pytest.mark.parametrize(
    "body",
    [
        {"member_ids": []},
        {"is_group": True, "title": "x"},
        {"is_group": True, "title": "x", "member_ids": "1,2"},
        {"is_group": True, "title": "x", "member_ids": ["a"]},
        {"is_group": True, "title": "x", "member_ids": [0]},
        {"is_group": "maybe", "member_ids": []},
    ],
    ids=["no-is_group", "no-member_ids", "member_ids-string", "member_ids-not-int", "member_id-zero", "bad-bool"],
)
def test_create_chat_refuses_a_malformed_body(api_client, unchanged, body):
    # when
    with unchanged():
        r = api_client.post("/api/chats", body, format="json")
    # then
    assert r.status_code == 400, r.content


def test_create_chat_ignores_unknown_fields(api_client, user, other_user):
    # when
    r = create(api_client, is_group=True, title="x", member_ids=[other_user.id], version=99, my_role="member")
    # then
    assert r.status_code == 201, r.content
    assert r.json()["version"] == 1  # taken by the system message "chat.created", not by the body
    assert r.json()["my_role"] == "owner"
