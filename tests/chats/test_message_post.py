"""POST /api/chats/{id}/messages {content?, attachment_id?, client_id?} → 201 Message;
a repeated client_id from the same sender in the same chat → 200 with the first message, nothing created."""

from datetime import UTC, datetime

import pytest

from chats.models import Chat, ChatUser, Message
from tests.factories import direct_between, message_in


def post(client, chat, **body):
    return client.post(f"/api/chats/{chat.id}/messages", body, format="json")


def test_post_answers_201_with_the_message(api_client, chat, user):
    # when
    r = post(api_client, chat, content="Hello, world", client_id="c-1")
    # then
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["content"] == "Hello, world"
    assert body["chat_id"] == chat.id
    assert body["sender"]["id"] == user.id
    assert body["client_id"] == "c-1"
    assert (body["is_read"], body["deleted"], body["edited_at"]) == (False, False, None)
    assert body["version"] == 1
    assert Message.objects.get(pk=body["id"]).content == "Hello, world"


def test_post_takes_the_chats_next_version(api_client, chat, other_user):
    # given
    message_in(chat, other_user)
    message_in(chat, other_user)
    # when
    r = post(api_client, chat, content="third")
    # then
    assert r.json()["version"] == 3
    chat.refresh_from_db()
    assert chat.version == 3


def test_post_trims_the_content(api_client, chat):
    # when
    r = post(api_client, chat, content="  \n padded \t ")
    # then
    assert r.json()["content"] == "padded"


def test_post_keeps_unicode_and_emoji(api_client, chat):
    # when
    r = post(api_client, chat, content="Grüße 👋🏽 — 你好 🇺🇦")
    # then
    assert r.status_code == 201, r.content
    assert Message.objects.get(pk=r.json()["id"]).content == "Grüße 👋🏽 — 你好 🇺🇦"


@pytest.mark.parametrize("length", [1, 4000])
def test_post_accepts_1_to_4000_characters(api_client, chat, length):
    # when
    r = post(api_client, chat, content="x" * length)
    # then
    assert r.status_code == 201, r.content


def test_post_counts_4000_characters_after_trimming(api_client, chat):
    # when
    r = post(api_client, chat, content="  " + "x" * 4000 + "  ")
    # then
    assert r.status_code == 201, r.content


def test_post_counts_characters_not_bytes(api_client, chat):
    # when
    r = post(api_client, chat, content="😀" * 4000)
    # then
    assert r.status_code == 201, r.content


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"content": ""},
        {"content": "   \n "},
        {"content": None},
        {"content": "x" * 4001},
        {"content": "x" * 200_000},
    ],
    ids=["nothing", "empty", "blank", "null", "too-long", "far-too-long"],
)
def test_post_refuses_empty_or_too_long_content(api_client, chat, unchanged, body):
    # when
    with unchanged():
        r = post(api_client, chat, **body)
    # then
    assert r.status_code == 400, r.content
    assert "content" in r.json()


def test_post_refuses_a_client_id_over_64_characters(api_client, chat, unchanged):
    # when
    with unchanged():
        r = post(api_client, chat, content="hi", client_id="c" * 65)
    # then
    assert r.status_code == 400, r.content
    assert "client_id" in r.json()


def test_post_refuses_an_unknown_attachment(api_client, chat, unchanged):
    # when
    with unchanged():
        r = post(api_client, chat, content="see", attachment_id=999999)
    # then
    assert r.status_code == 400, r.content
    assert "attachment_id" in r.json()


def test_post_with_a_repeated_client_id_answers_200_with_the_first_message(api_client, chat):
    # given
    first = post(api_client, chat, content="once", client_id="retry-1")
    # when
    again = post(api_client, chat, content="once", client_id="retry-1")
    # then
    assert first.status_code == 201, first.content
    assert again.status_code == 200, again.content
    assert again.json() == first.json()


def test_a_repeated_client_id_creates_nothing_and_takes_no_version(api_client, chat, unchanged):
    # given
    post(api_client, chat, content="once", client_id="retry-1")
    # when
    with unchanged():
        r = post(api_client, chat, content="different text", client_id="retry-1")
    # then
    assert r.status_code == 200, r.content
    assert r.json()["content"] == "once"


def test_the_same_client_id_from_another_sender_is_a_new_message(client_for, chat, user, other_user):
    # given
    post(client_for(user), chat, content="mine", client_id="shared")
    # when
    r = post(client_for(other_user), chat, content="theirs", client_id="shared")
    # then
    assert r.status_code == 201, r.content
    assert Message.objects.filter(client_id="shared").count() == 2


def test_the_same_client_id_in_another_chat_is_a_new_message(api_client, chat, user, other_user):
    # given: a send to one chat
    first = post(api_client, chat, content="to the group", client_id="c-7")
    direct = direct_between(user, other_user)
    # when: the same client_id to another chat
    r = post(api_client, direct, content="to bob", client_id="c-7")
    # then: a message of its own in that chat, not the group's message
    assert r.status_code == 201, r.content
    assert (r.json()["chat_id"], r.json()["content"]) == (direct.id, "to bob")
    assert r.json()["id"] != first.json()["id"]
    assert Message.objects.filter(sender=user, client_id="c-7").count() == 2


def test_messages_without_client_id_never_collide(api_client, chat):
    # when
    first = post(api_client, chat, content="same")
    second = post(api_client, chat, content="same")
    # then
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]


def test_post_ignores_unknown_fields(api_client, chat, user, other_user):
    # when
    r = post(api_client, chat, content="hi", sender=other_user.id, version=99, deleted=True, is_read=True)
    # then
    assert r.status_code == 201, r.content
    message = Message.objects.get(pk=r.json()["id"])
    assert (message.sender_id, message.version, message.deleted, message.is_read) == (user.id, 1, False, False)


def test_post_announces_message_created_after_commit(api_client, chat, django_capture_on_commit_callbacks):
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = post(api_client, chat, content="hi")
    # then
    assert r.status_code == 201, r.content
    assert callbacks


def test_post_in_a_direct_chat(client_for, user, other_user):
    # given
    direct = direct_between(user, other_user)
    # when
    r = post(client_for(other_user), direct, content="hi there")
    # then
    assert r.status_code == 201, r.content


def test_post_into_a_missing_chat_answers_404(api_client, db, unchanged):
    # when
    with unchanged():
        r = api_client.post("/api/chats/999999/messages", {"content": "hi"}, format="json")
    # then
    assert r.status_code == 404, r.content


def test_post_moves_the_chats_activity_forward(api_client, chat):
    # given
    before = Chat.objects.get(pk=chat.pk).last_activity_at
    # when
    post(api_client, chat, content="hi")
    # then
    assert Chat.objects.get(pk=chat.pk).last_activity_at > before


def test_posting_marks_the_chat_read_for_the_sender(api_client, chat, user, other_user):
    # given
    theirs = message_in(chat, other_user, "unread by alice")
    ChatUser.objects.filter(chat=chat, user=user).update(unread_count=1)
    # when
    r = post(api_client, chat, content="reply")
    # then
    mine = ChatUser.objects.get(chat=chat, user=user)
    assert (mine.last_read_id, mine.unread_count) == (r.json()["id"], 0)
    theirs.refresh_from_db()
    assert theirs.is_read is True


def test_post_with_a_form_body_works_too(api_client, chat):
    # when
    r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "from a form"})
    # then
    assert r.status_code == 201, r.content


def test_times_are_iso_8601_utc(api_client, chat):
    # when
    message = post(api_client, chat, content="when?").json()
    listed = api_client.get(f"/api/chats/{chat.id}").json()
    # then
    for stamp in (message["created_at"], listed["created_at"]):
        parsed = datetime.fromisoformat(stamp)
        assert parsed.utcoffset() is not None
        assert parsed.utcoffset() == UTC.utcoffset(None)
