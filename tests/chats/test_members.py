"""POST /api/chats/{id}/members, DELETE /api/chats/{id}/members/{user_id} (remove or leave),
and the addition PATCH /api/chats/{id}/members/{user_id} {role} (the owner promotes or demotes)."""

import pytest

from chats.models import ChatUser
from tests.factories import ChatUserFactory, UserFactory, direct_between, message_in


def roles(chat):
    return dict(ChatUser.objects.filter(chat=chat).values_list("user__username", "role"))


# Add ------------------------------------------------------------------------------------------


def test_owner_adds_a_member_and_gets_201_with_the_chat(client_for, team):
    # given
    newcomer = UserFactory.create(username="newcomer")
    # when
    r = client_for(team.owner).post(f"/api/chats/{team.chat.id}/members", {"user_id": newcomer.id}, format="json")
    # then
    assert r.status_code == 201, r.content
    assert newcomer.id in [m["user"]["id"] for m in r.json()["members"]]
    assert roles(team.chat)["newcomer"] == "member"


def test_a_newcomer_starts_with_nothing_unread(client_for, team):
    # given
    before = message_in(team.chat, team.owner, "before you came")
    newcomer = UserFactory.create()
    # when
    client_for(team.admin).post(f"/api/chats/{team.chat.id}/members", {"user_id": newcomer.id}, format="json")
    r = client_for(newcomer).get(f"/api/chats/{team.chat.id}")
    # then
    assert r.status_code == 200, r.content
    assert r.json()["unread_count"] == 0
    assert r.json()["last_read_id"] == before.id
    assert r.json()["my_role"] == "member"


def test_adding_someone_already_in_the_group_answers_400(client_for, team, unchanged):
    # when
    with unchanged():
        r = client_for(team.owner).post(
            f"/api/chats/{team.chat.id}/members", {"user_id": team.member.id}, format="json"
        )
    # then
    assert r.status_code == 400, r.content
    assert "user_id" in r.json()


def test_adding_an_unknown_user_answers_400(client_for, team, unchanged):
    # when
    with unchanged():
        r = client_for(team.owner).post(f"/api/chats/{team.chat.id}/members", {"user_id": 999999}, format="json")
    # then
    assert r.status_code == 400, r.content
    assert "user_id" in r.json()


@pytest.mark.parametrize("body", [{}, {"user_id": "x"}, {"user_id": 0}], ids=["missing", "not-int", "zero"])
def test_adding_with_a_malformed_body_answers_400(client_for, team, unchanged, body):
    # when
    with unchanged():
        r = client_for(team.owner).post(f"/api/chats/{team.chat.id}/members", body, format="json")
    # then
    assert r.status_code == 400, r.content


def test_adding_past_the_member_limit_answers_400(client_for, team, settings, unchanged):
    # given: the team has five members
    settings.GROUP_MAX_MEMBERS = 5
    # when
    with unchanged():
        r = client_for(team.owner).post(
            f"/api/chats/{team.chat.id}/members", {"user_id": team.outsider.id}, format="json"
        )
    # then
    assert r.status_code == 400, r.content
    assert r.json()["user_id"] == ["A group has at most 5 members."]


def test_nobody_can_be_added_to_a_direct_chat(client_for, user, other_user, unchanged):
    # given
    direct = direct_between(user, other_user)
    third = UserFactory.create()
    # when
    with unchanged():
        r = client_for(user).post(f"/api/chats/{direct.id}/members", {"user_id": third.id}, format="json")
    # then
    assert r.status_code == 400, r.content


def test_adding_announces_member_added(client_for, team, django_capture_on_commit_callbacks):
    # given
    newcomer = UserFactory.create()
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = client_for(team.owner).post(f"/api/chats/{team.chat.id}/members", {"user_id": newcomer.id}, format="json")
    # then
    assert r.status_code == 201, r.content
    assert callbacks


# Remove and leave ------------------------------------------------------------------------------


def test_admin_removes_a_member_with_204(client_for, team):
    # when
    r = client_for(team.admin).delete(f"/api/chats/{team.chat.id}/members/{team.member.id}")
    # then
    assert r.status_code == 204, r.content
    assert "member" not in roles(team.chat)


def test_a_removed_member_no_longer_sees_the_chat(client_for, team):
    # given
    client_for(team.owner).delete(f"/api/chats/{team.chat.id}/members/{team.member.id}")
    # when
    r = client_for(team.member).get(f"/api/chats/{team.chat.id}")
    # then
    assert r.status_code == 404, r.content


def test_admin_cannot_remove_another_admin(client_for, team, unchanged):
    # when
    with unchanged():
        r = client_for(team.admin).delete(f"/api/chats/{team.chat.id}/members/{team.admin2.id}")
    # then
    assert r.status_code == 403, r.content


def test_admin_cannot_remove_the_owner(client_for, team, unchanged):
    # when
    with unchanged():
        r = client_for(team.admin).delete(f"/api/chats/{team.chat.id}/members/{team.owner.id}")
    # then
    assert r.status_code == 403, r.content


def test_owner_removes_an_admin(client_for, team):
    # when
    r = client_for(team.owner).delete(f"/api/chats/{team.chat.id}/members/{team.admin.id}")
    # then
    assert r.status_code == 204, r.content
    assert "admin" not in roles(team.chat)


def test_member_cannot_remove_another_member(client_for, team, unchanged):
    # when
    with unchanged():
        r = client_for(team.member).delete(f"/api/chats/{team.chat.id}/members/{team.member2.id}")
    # then
    assert r.status_code == 403, r.content


@pytest.mark.parametrize("role", ["member", "admin"])
def test_anyone_can_leave(client_for, team, role):
    # when
    r = client_for(team.user(role)).delete(f"/api/chats/{team.chat.id}/members/{team.user(role).id}")
    # then
    assert r.status_code == 204, r.content
    assert role not in roles(team.chat)


def test_when_the_owner_leaves_the_longest_standing_admin_becomes_owner(client_for, team):
    # when
    r = client_for(team.owner).delete(f"/api/chats/{team.chat.id}/members/{team.owner.id}")
    # then
    assert r.status_code == 204, r.content
    assert roles(team.chat) == {"admin": "owner", "admin2": "admin", "member": "member", "member2": "member"}


def test_when_the_owner_leaves_a_group_without_admins_the_first_member_becomes_owner(client_for, user, other_user):
    # given
    from tests.factories import group_with

    chat = group_with(user, other_user, owner=user)
    third = UserFactory.create()
    ChatUserFactory.create(chat=chat, user=third)
    # when
    r = client_for(user).delete(f"/api/chats/{chat.id}/members/{user.id}")
    # then
    assert r.status_code == 204, r.content
    assert ChatUser.objects.get(chat=chat, user=other_user).role == "owner"
    assert ChatUser.objects.get(chat=chat, user=third).role == "member"


def test_the_owner_leaving_hands_the_group_to_the_heir_they_name(client_for, team):
    # when the owner names a plain member, not the longest-standing admin
    r = client_for(team.owner).delete(
        f"/api/chats/{team.chat.id}/members/{team.owner.id}", QUERY_STRING=f"heir_id={team.member2.id}"
    )
    # then
    assert r.status_code == 204, r.content
    assert roles(team.chat) == {"admin": "admin", "admin2": "admin", "member": "member", "member2": "owner"}


@pytest.mark.parametrize(
    ("leaver", "heir"),
    [("owner", "outsider"), ("owner", "owner"), ("admin", "member")],
    ids=["heir-not-a-member", "heir-is-the-owner", "not-the-owner-leaving"],
)
def test_a_bad_heir_answers_400_and_nobody_leaves(client_for, team, unchanged, leaver, heir):
    # when
    with unchanged():
        r = client_for(team.user(leaver)).delete(
            f"/api/chats/{team.chat.id}/members/{team.user(leaver).id}", QUERY_STRING=f"heir_id={team.user(heir).id}"
        )
    # then
    assert r.status_code == 400, r.content
    assert "heir_id" in r.json()


def test_an_heir_id_that_is_not_a_number_answers_400(client_for, team, unchanged):
    # when
    with unchanged():
        r = client_for(team.owner).delete(
            f"/api/chats/{team.chat.id}/members/{team.owner.id}", QUERY_STRING="heir_id=%C3%A9"
        )
    # then
    assert r.status_code == 400, r.content
    assert "heir_id" in r.json()


def test_removing_someone_who_is_not_in_the_group_answers_404(client_for, team, unchanged):
    # when
    with unchanged():
        r = client_for(team.owner).delete(f"/api/chats/{team.chat.id}/members/{team.outsider.id}")
    # then
    assert r.status_code == 404, r.content


def test_nobody_leaves_a_direct_chat(client_for, user, other_user, unchanged):
    # given
    direct = direct_between(user, other_user)
    # when
    with unchanged():
        r = client_for(user).delete(f"/api/chats/{direct.id}/members/{user.id}")
    # then
    assert r.status_code == 400, r.content


def test_removal_announces_member_removed(client_for, team, django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = client_for(team.owner).delete(f"/api/chats/{team.chat.id}/members/{team.member.id}")
    # then
    assert r.status_code == 204, r.content
    assert callbacks


# Roles (addition to v1) -----------------------------------------------------------------------


def test_owner_makes_a_member_admin(client_for, team):
    # when
    r = client_for(team.owner).patch(
        f"/api/chats/{team.chat.id}/members/{team.member.id}", {"role": "admin"}, format="json"
    )
    # then
    assert r.status_code == 200, r.content
    assert {m["user"]["id"]: m["role"] for m in r.json()["members"]}[team.member.id] == "admin"
    assert roles(team.chat)["member"] == "admin"


def test_owner_makes_an_admin_member_again(client_for, team):
    # when
    r = client_for(team.owner).patch(
        f"/api/chats/{team.chat.id}/members/{team.admin.id}", {"role": "member"}, format="json"
    )
    # then
    assert r.status_code == 200, r.content
    assert roles(team.chat)["admin"] == "member"


@pytest.mark.parametrize("role", ["admin", "member"])
def test_only_the_owner_changes_roles(client_for, team, unchanged, role):
    # when
    with unchanged():
        r = client_for(team.user(role)).patch(
            f"/api/chats/{team.chat.id}/members/{team.member2.id}", {"role": "admin"}, format="json"
        )
    # then
    assert r.status_code == 403, r.content


@pytest.mark.parametrize("body", [{"role": "owner"}, {"role": "king"}, {}], ids=["owner", "unknown", "missing"])
def test_role_must_be_admin_or_member(client_for, team, unchanged, body):
    # when
    with unchanged():
        r = client_for(team.owner).patch(f"/api/chats/{team.chat.id}/members/{team.member.id}", body, format="json")
    # then
    assert r.status_code == 400, r.content
    assert "role" in r.json()


def test_the_owner_cannot_demote_themself(client_for, team, unchanged):
    # when
    with unchanged():
        r = client_for(team.owner).patch(
            f"/api/chats/{team.chat.id}/members/{team.owner.id}", {"role": "member"}, format="json"
        )
    # then
    assert r.status_code == 400, r.content


def test_changing_the_role_of_a_non_member_answers_404(client_for, team, unchanged):
    # when
    with unchanged():
        r = client_for(team.owner).patch(
            f"/api/chats/{team.chat.id}/members/{team.outsider.id}", {"role": "admin"}, format="json"
        )
    # then
    assert r.status_code == 404, r.content


def test_a_direct_chat_has_no_roles(client_for, user, other_user, unchanged):
    # given
    direct = direct_between(user, other_user)
    # when
    with unchanged():
        r = client_for(user).patch(f"/api/chats/{direct.id}/members/{other_user.id}", {"role": "admin"}, format="json")
    # then
    assert r.status_code == 400, r.content
