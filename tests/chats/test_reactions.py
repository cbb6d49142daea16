"""Reactions (contract v1.1): PUT/DELETE /api/chats/{id}/messages/{mid}/reactions/{emoji} → 200 Message;
exactly one emoji; idempotent; [{emoji, count, user_ids}] by first use; each change takes a version."""

from urllib.parse import quote

import pytest

from chats import services
from chats.models import Message, Reaction
from tests.conftest import frames
from tests.factories import ChatUserFactory, UserFactory, message_in


def url(chat, message, emoji):
    return f"/api/chats/{chat.id}/messages/{message.id}/reactions/{quote(emoji)}"


def test_a_reaction_is_counted_and_named_and_takes_a_version(api_client, user, other_user, chat):
    # given
    message = message_in(chat, other_user, "news")
    # when
    r = api_client.put(url(chat, message, "👍"))
    # then
    assert r.status_code == 200, r.content
    assert r.json()["reactions"] == [{"emoji": "👍", "count": 1, "user_ids": [user.id]}]
    assert r.json()["version"] == 2
    message.refresh_from_db()
    assert message.version == 2


def test_putting_a_reaction_twice_changes_nothing(api_client, user, other_user, chat):
    # given
    message = message_in(chat, other_user, "news")
    first = api_client.put(url(chat, message, "👍")).json()
    # when
    again = api_client.put(url(chat, message, "👍"))
    # then
    assert again.status_code == 200, again.content
    assert again.json() == first
    assert Reaction.objects.count() == 1


def test_taking_a_reaction_back_takes_a_version_and_twice_changes_nothing(api_client, user, other_user, chat):
    # given
    message = message_in(chat, other_user, "news")
    api_client.put(url(chat, message, "👍"))
    # when
    taken = api_client.delete(url(chat, message, "👍"))
    again = api_client.delete(url(chat, message, "👍"))
    # then
    assert taken.status_code == again.status_code == 200, (taken.content, again.content)
    assert taken.json()["reactions"] == [] and taken.json()["version"] == 3
    assert again.json() == taken.json()


def test_emoji_are_ordered_by_first_use_and_reactors_oldest_first(api_client, user, other_user, chat, make_client):
    # given
    third = UserFactory.create()
    ChatUserFactory.create(chat=chat, user=third)
    message = message_in(chat, other_user, "news")
    # when
    make_client(other_user).put(url(chat, message, "🎉"))
    make_client(third).put(url(chat, message, "👍"))
    make_client(third).put(url(chat, message, "🎉"))
    r = make_client(third).get(f"/api/chats/{chat.id}/messages", {"since": 0})
    # then: as `third` sees it, themself first
    (shown,) = r.json()["results"]
    assert shown["reactions"] == [
        {"emoji": "🎉", "count": 2, "user_ids": [third.id, other_user.id]},
        {"emoji": "👍", "count": 1, "user_ids": [third.id]},
    ]
    # and as another member sees it: oldest first
    (shown,) = api_client.get(f"/api/chats/{chat.id}/messages").json()["results"]
    assert shown["reactions"][0]["user_ids"] == [other_user.id, third.id]


def test_emoji_that_look_alike_to_mariadb_are_kept_apart(api_client, other_user, chat):
    # given: utf8mb4_unicode_ci compares these two as equal
    message = message_in(chat, other_user, "news")
    # when
    api_client.put(url(chat, message, "😀"))
    r = api_client.put(url(chat, message, "😃"))
    # then
    assert [reaction["emoji"] for reaction in r.json()["reactions"]] == ["😀", "😃"]


def test_a_message_names_at_most_50_reactors_and_the_caller_first(api_client, user, other_user, chat):
    # given: 60 members reacted before the caller
    message = message_in(chat, other_user, "popular")
    others = UserFactory.create_batch(60)
    for member in others:
        ChatUserFactory.create(chat=chat, user=member)
        services.message_react(chat_id=chat.id, message_id=message.id, actor=member, emoji="🔥", add=True)
    # when
    r = api_client.put(url(chat, message, "🔥"))
    history = api_client.get(f"/api/chats/{chat.id}/messages").json()["results"]
    # then
    (reaction,) = r.json()["reactions"]
    assert reaction["count"] == 61
    assert reaction["user_ids"][0] == user.id and len(reaction["user_ids"]) == 50
    assert history[0]["reactions"][0]["user_ids"][0] == user.id
    # as every member sees it: the 50 first reactors
    assert Message.objects.get(pk=message.id).reactions[0]["user_ids"] == [u.id for u in others[:50]]


@pytest.mark.parametrize(
    "emoji", ["👍🏽", "❤️", "👨‍👩‍👧‍👦", "🇫🇷", "1️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🧑🏽‍💻"], ids=lambda e: e.encode("unicode_escape").decode()
)
def test_every_kind_of_emoji_is_one_reaction(api_client, other_user, chat, emoji):
    message = message_in(chat, other_user, "news")
    r = api_client.put(url(chat, message, emoji))
    assert r.status_code == 200, r.content
    assert r.json()["reactions"][0]["emoji"] == emoji


@pytest.mark.parametrize("emoji", ["a", "👍👍", "🇫", "1", "👍a", "%E2%80%8D", "ab", "²"])
def test_anything_but_one_emoji_is_refused(api_client, other_user, chat, unchanged, emoji):
    # given
    message = message_in(chat, other_user, "news")
    # when
    with unchanged():
        r = api_client.put(f"/api/chats/{chat.id}/messages/{message.id}/reactions/{emoji}")
    # then
    assert r.status_code == 400, r.content
    assert "emoji" in r.json()


def test_a_deleted_message_takes_no_reaction_and_loses_its_reactions(api_client, user, other_user, chat, unchanged):
    # given
    message = message_in(chat, other_user, "news")
    api_client.put(url(chat, message, "👍"))
    services.message_delete(chat_id=chat.id, message_id=message.id, actor=other_user)
    # when
    with unchanged():
        r = api_client.put(url(chat, message, "🎉"))
    # then
    assert r.status_code == 400, r.content
    assert Message.objects.get(pk=message.id).reactions == []
    assert not Reaction.objects.exists()


def test_an_outsider_gets_404_for_a_reaction(make_client, other_user, chat, unchanged):
    # given
    message = message_in(chat, other_user, "news")
    outsider = make_client(UserFactory.create())
    # when
    with unchanged():
        r = outsider.put(url(chat, message, "👍"))
    # then
    assert r.status_code == 404, r.content


def test_a_message_of_another_chat_is_404(api_client, user, other_user, chat):
    from tests.factories import group_with

    elsewhere = message_in(group_with(user, other_user), other_user, "there")
    r = api_client.put(url(chat, elsewhere, "👍"))
    assert r.status_code == 404, r.content


def test_catch_up_returns_a_reaction_as_a_change(api_client, other_user, chat):
    # given
    message = message_in(chat, other_user, "news")
    # when
    api_client.put(url(chat, message, "👍"))
    # then
    (changed,) = api_client.get(f"/api/chats/{chat.id}/messages", {"since": 1}).json()["results"]
    assert (changed["id"], changed["version"], changed["reactions"][0]["emoji"]) == (message.id, 2, "👍")


@pytest.mark.django_db(transaction=True)
def test_a_reaction_reaches_the_chat_as_message_updated(api_client, user, other_user, chat, announced):
    # given
    message = message_in(chat, other_user, "news")
    # when
    r = api_client.put(url(chat, message, "👍"))
    api_client.put(url(chat, message, "👍"))  # no change: nothing sent
    # then
    ((group, frame),) = frames(announced)
    assert (group, frame["type"], frame["version"]) == (f"chat.{chat.id}", "message.updated", 2)
    assert frame["message"] == r.json()
