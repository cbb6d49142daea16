"""GET /api/chats/{id}/messages: ?before=<id>&limit= newest first (history), or ?since=<version>&limit=
ascending by version (catch-up: everything created, edited or deleted after it). Answers {results, has_more}."""

import pytest
from django.utils import timezone

from tests.factories import message_in

MESSAGE_FIELDS = {
    "id",
    "chat_id",
    "sender",
    "content",
    "attachment",
    "attachment_url",
    "is_read",
    "client_id",
    "created_at",
    "edited_at",
    "deleted",
    "version",
    "mentions",
    "link_preview",
    "pinned",
    "reactions",
    "forwarded_from",
    "reply_to",
    "kind",
    "system",
}


def ids(response):
    return [m["id"] for m in response.json()["results"]]


@pytest.fixture
def ten(chat, user, other_user):
    """Ten messages, alternating senders, oldest first."""
    return [message_in(chat, (user, other_user)[n % 2], f"m{n}") for n in range(10)]


def test_history_answers_newest_first_with_has_more(api_client, chat, ten):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages")
    # then
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"results", "has_more"}
    assert ids(r) == [m.id for m in reversed(ten)]
    assert r.json()["has_more"] is False


def test_history_renders_the_message_shape(api_client, chat, ten, other_user):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", {"limit": 1})
    # then
    message = r.json()["results"][0]
    assert set(message) == MESSAGE_FIELDS
    assert message["chat_id"] == chat.id
    assert message["sender"]["id"] == other_user.id
    assert "email" not in message["sender"]
    assert (message["attachment"], message["attachment_url"], message["deleted"]) == (None, None, False)


def test_history_of_an_empty_chat(api_client, chat):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages")
    # then
    assert r.json() == {"results": [], "has_more": False}


def test_history_pages_backwards_with_before(api_client, chat, ten):
    # given
    first = api_client.get(f"/api/chats/{chat.id}/messages", {"limit": 4})
    # when
    second = api_client.get(f"/api/chats/{chat.id}/messages", {"limit": 4, "before": ids(first)[-1]})
    third = api_client.get(f"/api/chats/{chat.id}/messages", {"limit": 4, "before": ids(second)[-1]})
    # then
    assert first.json()["has_more"] is True
    assert second.json()["has_more"] is True
    assert third.json()["has_more"] is False
    assert ids(first) + ids(second) + ids(third) == [m.id for m in reversed(ten)]


def test_history_has_more_is_false_when_the_page_is_exactly_full(api_client, chat, ten):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", {"limit": 10})
    # then
    assert len(ids(r)) == 10
    assert r.json()["has_more"] is False


def test_history_before_the_first_message_is_empty(api_client, chat, ten):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", {"before": ten[0].id})
    # then
    assert r.json() == {"results": [], "has_more": False}


def test_history_only_shows_this_chats_messages(api_client, chat, user, other_user, ten):
    # given
    from tests.factories import group_with

    elsewhere = group_with(user, other_user, title="elsewhere")
    message_in(elsewhere, user, "not here")
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", {"limit": 100})
    # then
    assert ids(r) == [m.id for m in reversed(ten)]


def test_history_default_limit_is_50(api_client, chat, user):
    # given
    for n in range(51):
        message_in(chat, user, f"m{n}")
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages")
    # then
    assert len(ids(r)) == 50
    assert r.json()["has_more"] is True


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_accepts_1_to_100(api_client, chat, ten, limit):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", {"limit": limit})
    # then
    assert r.status_code == 200, r.content
    assert len(ids(r)) == min(limit, 10)


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"before": "x"}, {"before": 0}, {"since": -1}, {"since": "x"}],
)
def test_history_refuses_bad_query_parameters(api_client, chat, ten, query):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", query)
    # then
    assert r.status_code == 400, r.content
    assert set(r.json()) <= set(query)


def test_before_and_since_together_answer_400(api_client, chat, ten):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", {"before": ten[5].id, "since": 1})
    # then
    assert r.status_code == 400, r.content


def test_deleted_messages_keep_their_place_in_history(api_client, chat, user, ten):
    # given
    api_client.delete(f"/api/chats/{chat.id}/messages/{ten[4].id}")
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages")
    # then
    assert ids(r) == [m.id for m in reversed(ten)]
    deleted = next(m for m in r.json()["results"] if m["id"] == ten[4].id)
    assert (deleted["deleted"], deleted["content"], deleted["attachment"]) == (True, "", None)


# Catch-up -----------------------------------------------------------------------------------


def test_since_answers_every_message_after_that_version_ascending(api_client, chat, ten):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", {"since": ten[6].version})
    # then
    assert r.status_code == 200, r.content
    assert ids(r) == [m.id for m in ten[7:]]
    versions = [m["version"] for m in r.json()["results"]]
    assert versions == sorted(versions)
    assert r.json()["has_more"] is False


def test_since_zero_answers_everything_from_the_start(api_client, chat, ten):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", {"since": 0, "limit": 4})
    # then
    assert ids(r) == [m.id for m in ten[:4]]
    assert r.json()["has_more"] is True


def test_since_includes_edits_and_deletes_after_the_version(api_client, chat, user, ten):
    # given
    seen = chat.version
    edited, deleted = ten[0], ten[2]
    api_client.patch(f"/api/chats/{chat.id}/messages/{edited.id}", {"content": "edited"}, format="json")
    api_client.delete(f"/api/chats/{chat.id}/messages/{deleted.id}")
    new = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "new"}, format="json").json()
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", {"since": seen})
    # then
    results = r.json()["results"]
    assert [m["id"] for m in results] == [edited.id, deleted.id, new["id"]]
    assert [m["version"] for m in results] == [seen + 1, seen + 2, seen + 3]
    assert results[0]["content"] == "edited"
    assert results[0]["edited_at"] is not None
    assert (results[1]["deleted"], results[1]["content"]) == (True, "")


def test_since_the_current_version_is_empty(api_client, chat, ten):
    # given
    chat.refresh_from_db()
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages", {"since": chat.version})
    # then
    assert r.json() == {"results": [], "has_more": False}


def test_catch_up_pages_by_version_without_gaps(api_client, chat, ten):
    # given
    seen = 0
    collected = []
    # when
    while True:
        page = api_client.get(f"/api/chats/{chat.id}/messages", {"since": seen, "limit": 3}).json()
        collected += [m["id"] for m in page["results"]]
        seen = page["results"][-1]["version"] if page["results"] else seen
        if not page["has_more"]:
            break
    # then
    assert collected == [m.id for m in ten]


def test_messages_of_a_missing_chat_answer_404(api_client, db):
    # when
    r = api_client.get("/api/chats/999999/messages")
    # then
    assert r.status_code == 404, r.content


def test_a_single_message_cannot_be_fetched_alone(api_client, chat, ten):
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages/{ten[0].id}")
    # then
    assert r.status_code == 405, r.content


def test_history_hides_the_presence_of_a_sender_who_left_and_shares_no_chat_with_the_caller(
    api_client, user, other_user, chat
):
    # given: other_user wrote, then left the only chat they shared with the caller
    message_in(chat, other_user, "bye")
    type(other_user).objects.filter(pk=other_user.pk).update(last_seen=timezone.now())
    chat.memberships.filter(user=other_user).delete()
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages")
    # then
    sender = r.json()["results"][0]["sender"]
    assert (sender["id"], sender["is_online"], sender["last_seen"]) == (other_user.id, None, None)


def test_history_shows_the_presence_of_a_sender_who_is_still_a_member(api_client, user, other_user, chat):
    # given
    message_in(chat, other_user, "hi")
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages")
    # then
    assert r.json()["results"][0]["sender"]["is_online"] is False
