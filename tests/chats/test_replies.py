"""Replies (contract v1.1): POST reply_to_id, a message of the same chat; Message.reply_to shows the
answered message as it is now: its current text (at most 200 characters), nothing once deleted."""

import pytest

from chats import services
from tests.factories import group_with, message_in


def post(client, chat, **body):
    return client.post(f"/api/chats/{chat.id}/messages", body, format="json")


def test_a_reply_quotes_the_message_it_answers(api_client, other_user, chat):
    # given
    original = message_in(chat, other_user, "where do we meet?")
    # when
    r = post(api_client, chat, content="at the station", reply_to_id=original.id)
    # then
    assert r.status_code == 201, r.content
    quote = r.json()["reply_to"]
    assert quote == {
        "id": original.id,
        "sender": quote["sender"],
        "content": "where do we meet?",
        "attachment": None,
        "deleted": False,
    }
    assert quote["sender"]["id"] == other_user.id


def test_a_message_that_answers_nothing_has_no_reply_to(api_client, chat):
    r = post(api_client, chat, content="hi")
    assert r.status_code == 201, r.content
    assert r.json()["reply_to"] is None


def test_the_quote_is_the_first_200_characters(api_client, other_user, chat):
    # given
    original = message_in(chat, other_user, "é" * 150 + "🙂" * 100)
    # when
    r = post(api_client, chat, content="long", reply_to_id=original.id)
    # then
    assert r.json()["reply_to"]["content"] == "é" * 150 + "🙂" * 50


def test_the_quote_follows_an_edit_of_the_original(api_client, user, other_user, chat):
    # given
    original = message_in(chat, other_user, "at 5")
    reply = post(api_client, chat, content="ok", reply_to_id=original.id).json()
    # when
    services.message_edit(chat_id=chat.id, message_id=original.id, actor=other_user, content="at 6")
    # then
    history = api_client.get(f"/api/chats/{chat.id}/messages").json()["results"]
    shown = next(m for m in history if m["id"] == reply["id"])
    assert shown["reply_to"]["content"] == "at 6"


def test_the_quote_of_a_deleted_original_says_deleted_and_shows_nothing(api_client, user, other_user, chat):
    # given
    original = message_in(chat, other_user, "secret")
    reply = post(api_client, chat, content="ok", reply_to_id=original.id).json()
    # when
    services.message_delete(chat_id=chat.id, message_id=original.id, actor=other_user)
    # then
    history = api_client.get(f"/api/chats/{chat.id}/messages", {"since": 0}).json()["results"]
    shown = next(m for m in history if m["id"] == reply["id"])
    assert (shown["reply_to"]["deleted"], shown["reply_to"]["content"], shown["reply_to"]["attachment"]) == (
        True,
        "",
        None,
    )


def test_a_reply_to_a_message_of_another_chat_is_refused(api_client, user, other_user, chat, unchanged):
    # given: a chat the caller is in too
    elsewhere = group_with(user, other_user, owner=user, title="Other")
    original = message_in(elsewhere, other_user, "over there")
    # when
    with unchanged():
        r = post(api_client, chat, content="here", reply_to_id=original.id)
    # then
    assert r.status_code == 400, r.content
    assert "reply_to_id" in r.json()


@pytest.mark.parametrize("reply_to_id", [987654, 0, -1, "x"])
def test_a_reply_to_no_message_is_refused(api_client, chat, unchanged, reply_to_id):
    with unchanged():
        r = post(api_client, chat, content="here", reply_to_id=reply_to_id)
    assert r.status_code == 400, r.content
    assert "reply_to_id" in r.json()


def test_a_reply_to_a_deleted_message_is_refused(api_client, other_user, chat, unchanged):
    # given
    original = message_in(chat, other_user, "gone")
    services.message_delete(chat_id=chat.id, message_id=original.id, actor=other_user)
    # when
    with unchanged():
        r = post(api_client, chat, content="to what?", reply_to_id=original.id)
    # then
    assert r.status_code == 400, r.content


def test_the_chat_list_shows_the_quote_of_a_last_message(api_client, other_user, chat):
    # given
    original = message_in(chat, other_user, "question")
    post(api_client, chat, content="answer", reply_to_id=original.id)
    # when
    r = api_client.get("/api/chats")
    # then
    assert r.json()["results"][0]["last_message"]["reply_to"]["id"] == original.id
