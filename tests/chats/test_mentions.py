"""Mentions (contract v1.1): Message.mentions are the ids of chat members named as @username
(case-insensitive), parsed on create and edit; GET /api/mentions lists the caller's, newest first."""

import pytest

from chats import services
from chats.models import Mention
from tests.factories import UserFactory, group_with


def post(client, chat, content):
    r = client.post(f"/api/chats/{chat.id}/messages", {"content": content}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def test_members_named_with_at_are_mentioned_case_insensitively(api_client, user, other_user, chat):
    # when
    body = post(api_client, chat, "@BOB, and @alice too; @bob again")
    # then
    assert body["mentions"] == [other_user.id, user.id]


def test_names_that_are_not_members_or_not_mentions_are_ignored(api_client, other_user, chat):
    # given
    UserFactory.create(username="carol")  # a user, not a member
    # when
    body = post(api_client, chat, "mail bob@example.com, ask @carol, @@bob, @nobody")
    # then
    assert body["mentions"] == []


def test_a_name_at_the_end_of_a_sentence_is_a_mention(api_client, other_user, chat):
    assert post(api_client, chat, "Thanks @bob.")["mentions"] == [other_user.id]


def test_a_username_with_a_dot_is_a_mention(api_client, user, chat):
    # given
    dotted = UserFactory.create(username="j.doe")
    services.chat_member_add(chat_id=chat.id, actor=user, user_id=dotted.id)
    # then
    assert post(api_client, chat, "hi @J.Doe!")["mentions"] == [dotted.id]


def test_an_edit_parses_mentions_again(api_client, user, other_user, chat):
    # given
    message = post(api_client, chat, "for @bob")
    # when
    r = api_client.patch(f"/api/chats/{chat.id}/messages/{message['id']}", {"content": "for me, @alice"}, format="json")
    # then
    assert r.json()["mentions"] == [user.id]
    assert list(Mention.objects.values_list("user_id", flat=True)) == [user.id]


def test_the_mentions_list_is_the_caller_s_newest_first(api_client, make_client, user, other_user, chat):
    # given
    bob = make_client(other_user)
    first = post(bob, chat, "hey @alice")
    post(bob, chat, "no one here")
    second = post(bob, chat, "@alice again")
    post(api_client, chat, "@bob yours")
    # when
    r = api_client.get("/api/mentions")
    # then
    assert r.status_code == 200, r.content
    assert [m["id"] for m in r.json()["results"]] == [second["id"], first["id"]]
    assert r.json()["has_more"] is False


def test_the_mentions_list_comes_in_pages(api_client, make_client, other_user, chat):
    # given
    bob = make_client(other_user)
    ids = [post(bob, chat, f"@alice {n}")["id"] for n in range(5)]
    # when
    first = api_client.get("/api/mentions", {"limit": 2}).json()
    rest = api_client.get("/api/mentions", {"limit": 10, "before": first["results"][-1]["id"]}).json()
    # then
    assert ([m["id"] for m in first["results"]], first["has_more"]) == (ids[:2:-1][:2], True)
    assert [m["id"] for m in rest["results"]] == ids[2::-1]
    assert rest["has_more"] is False


def test_mentions_in_a_chat_the_caller_left_are_not_listed(api_client, make_client, user, other_user):
    # given
    chat = group_with(other_user, user, owner=other_user)
    post(make_client(other_user), chat, "@alice look")
    # when
    services.chat_member_remove(chat_id=chat.id, actor=user, user_id=user.id)
    # then
    assert api_client.get("/api/mentions").json()["results"] == []


def test_a_deleted_message_mentions_no_one(api_client, make_client, other_user, chat):
    # given
    message = post(make_client(other_user), chat, "@alice secret")
    # when
    services.message_delete(chat_id=chat.id, message_id=message["id"], actor=other_user)
    # then
    assert api_client.get("/api/mentions").json()["results"] == []


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 101}, {"before": 0}, {"before": "x"}])
def test_a_bad_mentions_query_is_400(api_client, query):
    assert api_client.get("/api/mentions", query).status_code == 400


def test_the_mentions_list_needs_a_token(client, db):
    assert client.get("/api/mentions").status_code == 401


def test_the_mentions_page_costs_the_same_whatever_its_size(
    api_client, user, other_user, chat, django_assert_max_num_queries
):
    from tests.chats.test_query_budgets import HISTORY_BUDGET, queries_for

    # given
    for n in range(2):
        services.message_create(chat_id=chat.id, sender=other_user, content=f"@alice {n}")
    few, _ = queries_for(api_client, "/api/mentions")
    for n in range(20):
        services.message_create(chat_id=chat.id, sender=other_user, content=f"@alice {n}")
    # when
    with django_assert_max_num_queries(HISTORY_BUDGET):
        r = api_client.get("/api/mentions")
    many, _ = queries_for(api_client, "/api/mentions")
    # then
    assert len(r.json()["results"]) == 22
    assert many == few
