"""Forwards (contract v1.1): POST forward_of_id, a message the caller can see in any of their chats
(else 404); its text and attachment are copied; forwarded_from names its author and time, never its chat."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from chats import services
from chats.models import Message
from media import services as media_services
from tests.factories import UserFactory, group_with, message_in
from tests.media import images


def post(client, chat, **body):
    return client.post(f"/api/chats/{chat.id}/messages", body, format="json")


def test_a_forward_copies_the_text_and_names_the_author_and_time(api_client, user, other_user, chat):
    # given: a message in another chat of the caller
    elsewhere = group_with(user, other_user, owner=other_user, title="Secret plans")
    original = message_in(elsewhere, other_user, "meet at noon")
    # when
    r = post(api_client, chat, forward_of_id=original.id)
    # then
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["content"], body["sender"]["id"], body["chat_id"]) == ("meet at noon", user.id, chat.id)
    forwarded = body["forwarded_from"]
    assert forwarded["sender"]["id"] == other_user.id
    assert forwarded["sender"]["is_online"] is None  # the author's presence is never shown
    assert forwarded["created_at"] == original.created_at.isoformat().replace("+00:00", "Z")
    # the origin chat is never revealed
    assert set(forwarded) == {"sender", "created_at"}
    assert "Secret plans" not in json.dumps(body)


def test_a_forward_copies_the_attachment(api_client, user, other_user, chat):
    # given
    attachment = media_services.attachment_create(
        uploader=other_user, file=SimpleUploadedFile("photo.png", images.png())
    )
    elsewhere = group_with(user, other_user, owner=other_user)
    original = services.message_create(chat_id=elsewhere.id, sender=other_user, attachment_id=attachment.id).message
    # when
    r = post(api_client, chat, forward_of_id=original.id)
    # then
    assert r.status_code == 201, r.content
    assert r.json()["attachment"]["id"] == attachment.id
    assert Message.objects.get(pk=r.json()["id"]).attachment_id == attachment.id


def test_a_forward_of_a_forward_names_the_first_author(api_client, user, other_user, chat):
    # given
    third = UserFactory.create()
    first_chat = group_with(third, other_user, owner=third)
    original = message_in(first_chat, third, "origin")
    second_chat = group_with(other_user, user, owner=other_user)
    copy = services.message_create(chat_id=second_chat.id, sender=other_user, forward_of_id=original.id).message
    # when
    r = post(api_client, chat, forward_of_id=copy.id)
    # then
    assert r.status_code == 201, r.content
    assert r.json()["forwarded_from"]["sender"]["id"] == third.id


def test_a_plain_message_has_no_forwarded_from(api_client, chat):
    assert post(api_client, chat, content="mine").json()["forwarded_from"] is None


def test_forwarding_a_message_of_a_chat_the_caller_is_not_in_is_404(api_client, other_user, chat, unchanged):
    # given
    stranger = UserFactory.create()
    hidden = message_in(group_with(other_user, stranger), stranger, "not yours")
    # when
    with unchanged():
        missing = post(api_client, chat, forward_of_id=hidden.id)
        nothing = post(api_client, chat, forward_of_id=987654)
    # then
    assert (missing.status_code, nothing.status_code) == (404, 404), (missing.content, nothing.content)
    assert missing.json() == nothing.json()


def test_a_forward_with_its_own_text_is_refused(api_client, user, chat, unchanged):
    # given
    original = message_in(chat, user, "one")
    # when
    with unchanged():
        r = post(api_client, chat, forward_of_id=original.id, content="and more")
    # then
    assert r.status_code == 400, r.content
    assert "forward_of_id" in r.json()


def test_forwarding_a_deleted_message_is_refused(api_client, user, chat, unchanged):
    # given
    original = message_in(chat, user, "gone")
    services.message_delete(chat_id=chat.id, message_id=original.id, actor=user)
    # when
    with unchanged():
        r = post(api_client, chat, forward_of_id=original.id)
    # then
    assert r.status_code == 400, r.content


def test_a_forward_of_an_account_since_deleted_keeps_its_time(api_client, user, chat):
    # given
    author = UserFactory.create()
    source_chat = group_with(user, author)
    original = message_in(source_chat, author, "legacy")
    copy_id = post(api_client, chat, forward_of_id=original.id).json()["id"]
    # when
    author.delete()
    # then
    shown = next(m for m in api_client.get(f"/api/chats/{chat.id}/messages").json()["results"] if m["id"] == copy_id)
    assert shown["forwarded_from"]["sender"] is None
    assert shown["forwarded_from"]["created_at"]
