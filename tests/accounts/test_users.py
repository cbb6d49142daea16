"""GET /api/users/search?q= (prefix first, paginated) and GET /api/users/{id}: PublicUser, never an email."""

import pytest
from django.utils import timezone

from tests.factories import UserFactory, group_with

PUBLIC_FIELDS = {"id", "username", "display_name", "is_online", "last_seen", "avatar_url"}


def usernames(response):
    return [u["username"] for u in response.json()["results"]]


def test_search_matches_username_and_display_name(api_client):
    # given
    UserFactory.create(username="carol", display_name="Carol")
    UserFactory.create(username="dave", display_name="Dave Carolson")
    UserFactory.create(username="erin", display_name="Erin")
    # when
    r = api_client.get("/api/users/search", {"q": "carol"})
    # then
    assert r.status_code == 200, r.content
    assert set(usernames(r)) == {"carol", "dave"}


def test_search_ranks_prefix_matches_first(api_client):
    # given
    UserFactory.create(username="mcarol", display_name="M")
    UserFactory.create(username="zed", display_name="Carol Z")
    UserFactory.create(username="carolyn", display_name="C")
    # when
    r = api_client.get("/api/users/search", {"q": "carol"})
    # then
    assert r.status_code == 200, r.content
    assert usernames(r) == ["carolyn", "zed", "mcarol"]


def test_search_ignores_case(api_client):
    # given
    UserFactory.create(username="Carol", display_name="")
    # when
    r = api_client.get("/api/users/search", {"q": "CAROL"})
    # then
    assert usernames(r) == ["Carol"]


def test_search_answers_public_users_without_email(api_client):
    # given
    UserFactory.create(username="carol", email="carol@example.com")
    # when
    r = api_client.get("/api/users/search", {"q": "carol"})
    # then
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"results", "next"}
    assert set(r.json()["results"][0]) == PUBLIC_FIELDS
    assert b"carol@example.com" not in r.content


def test_search_does_not_match_on_email(api_client):
    # given
    UserFactory.create(username="carol", email="secret-handle@example.com", display_name="")
    # when
    r = api_client.get("/api/users/search", {"q": "secret-handle"})
    # then
    assert r.status_code == 200, r.content
    assert usernames(r) == []


def test_search_leaves_out_the_caller_and_deactivated_users(api_client, user):
    # given
    UserFactory.create(username="alicia", is_active=False)
    # when
    r = api_client.get("/api/users/search", {"q": "ali"})
    # then
    assert usernames(r) == []


def test_search_is_paginated_with_a_next_link(api_client):
    # given
    for n in range(25):
        UserFactory.create(username=f"zoe{n:02d}")
    # when
    first = api_client.get("/api/users/search", {"q": "zoe"})
    second = api_client.get(first.json()["next"])
    # then
    assert first.status_code == 200, first.content
    assert len(first.json()["results"]) == 20
    assert second.status_code == 200, second.content
    assert len(second.json()["results"]) == 5
    assert second.json()["next"] is None
    assert set(usernames(first)).isdisjoint(usernames(second))


def test_search_honours_limit(api_client):
    # given
    for n in range(5):
        UserFactory.create(username=f"zoe{n}")
    # when
    r = api_client.get("/api/users/search", {"q": "zoe", "limit": 2})
    # then
    assert len(r.json()["results"]) == 2
    assert r.json()["next"] is not None


def test_search_treats_like_wildcards_literally(api_client):
    # given
    UserFactory.create(username="carol", display_name="")
    # when
    r = api_client.get("/api/users/search", {"q": "%"})
    # then
    assert r.status_code == 200, r.content
    assert usernames(r) == []


@pytest.mark.parametrize("q", ["", "   ", "x" * 65], ids=["empty", "blank", "too-long"])
def test_search_refuses_an_empty_or_too_long_query(api_client, q):
    # when
    r = api_client.get("/api/users/search", {"q": q})
    # then
    assert r.status_code == 400, r.content
    assert "q" in r.json()


def test_search_without_q_answers_400(api_client):
    # when
    r = api_client.get("/api/users/search")
    # then
    assert r.status_code == 400, r.content


def test_search_shows_who_is_online(api_client, user, set_online):
    # given: both share a chat with the caller
    carol = UserFactory.create(username="carol")
    carla = UserFactory.create(username="carla")
    group_with(user, carol, carla, owner=user)
    set_online(carol)
    # when
    r = api_client.get("/api/users/search", {"q": "car"})
    # then
    online = {u["username"]: u["is_online"] for u in r.json()["results"]}
    assert online == {"carol": True, "carla": False}


def test_user_detail_answers_a_public_user(api_client, other_user, chat):
    # when
    r = api_client.get(f"/api/users/{other_user.id}")
    # then
    assert r.status_code == 200, r.content
    assert set(r.json()) == PUBLIC_FIELDS
    assert r.json()["username"] == other_user.username
    assert r.json()["is_online"] is False


def test_user_detail_works_with_a_trailing_slash(api_client, other_user):
    # when
    r = api_client.get(f"/api/users/{other_user.id}/")
    # then
    assert r.status_code == 200, r.content


def test_user_detail_of_an_unknown_or_deactivated_user_answers_404(api_client):
    # given
    gone = UserFactory.create(is_active=False)
    # when
    unknown = api_client.get("/api/users/999999")
    deactivated = api_client.get(f"/api/users/{gone.id}")
    # then
    assert unknown.status_code == 404, unknown.content
    assert deactivated.status_code == 404, deactivated.content


def test_search_costs_a_constant_number_of_queries(api_client, django_assert_max_num_queries):
    # given
    for n in range(40):
        UserFactory.create(username=f"zoe{n:02d}")
    # when: authentication, the count for the paginator, one page of users, whom the caller shares a chat with
    with django_assert_max_num_queries(4):
        r = api_client.get("/api/users/search", {"q": "zoe", "limit": 40})
    # then
    assert len(r.json()["results"]) == 40


def test_search_hides_the_presence_of_users_who_share_no_chat_with_the_caller(api_client, user, set_online):
    # given: carol is online and shares no chat with the caller; dora does
    carol = UserFactory.create(username="carol")
    dora = UserFactory.create(username="cdora")
    group_with(user, dora, owner=user)
    set_online(carol)
    set_online(dora)
    type(user).objects.filter(pk__in=[carol.pk, dora.pk]).update(last_seen=timezone.now())
    # when
    r = api_client.get("/api/users/search", {"q": "c"})
    # then
    shown = {u["username"]: (u["is_online"], u["last_seen"] is not None) for u in r.json()["results"]}
    assert shown["carol"] == (None, False)
    assert shown["cdora"] == (True, True)


def test_user_detail_hides_the_presence_of_a_stranger(api_client, other_user):
    # given: no chat in common; other_user was seen recently
    type(other_user).objects.filter(pk=other_user.pk).update(last_seen=timezone.now())
    # when
    r = api_client.get(f"/api/users/{other_user.id}")
    # then
    assert r.status_code == 200, r.content
    assert (r.json()["is_online"], r.json()["last_seen"]) == (None, None)


def test_a_user_who_left_the_only_shared_chat_is_a_stranger_again(api_client, user, other_user, chat):
    # given
    chat.memberships.filter(user=other_user).delete()
    # when
    r = api_client.get(f"/api/users/{other_user.id}")
    # then
    assert r.json()["is_online"] is None
