"""GET /api/chats/{id}/media: the chat's images newest first, paginated, in a fixed number of queries."""

import pytest

from chats import services as chat_services
from tests.factories import group_with
from tests.media import images


@pytest.fixture
def post_image(make_attachment):
    def post(chat, sender, n: int):
        attachment = make_attachment(sender, images.png(color=(n % 256, n // 256, 7)), name=f"{n}.png")
        message = chat_services.message_create(chat_id=chat.pk, sender=sender, attachment_id=attachment.pk).message
        return message

    return post


def test_gallery_lists_images_newest_first_with_sender_and_attachment(api_client, chat, user, other_user, post_image):
    # given
    first = post_image(chat, user, 1)
    chat_services.message_create(chat_id=chat.pk, sender=other_user, content="text only")
    second = post_image(chat, other_user, 2)
    # when
    r = api_client.get(f"/api/chats/{chat.id}/media")
    # then
    assert r.status_code == 200, r.content
    page = r.json()
    assert [item["message_id"] for item in page["results"]] == [second.pk, first.pk]
    assert page["next"] is None
    item = page["results"][0]
    assert set(item) == {"message_id", "chat_id", "sender", "attachment"}
    assert item["chat_id"] == chat.pk
    assert item["sender"]["id"] == other_user.pk
    assert item["attachment"]["id"] == second.attachment_id
    assert item["attachment"]["url"] == f"/api/attachments/{second.attachment_id}/file"
    assert item["attachment"]["content_type"] == "image/png"


def test_gallery_leaves_out_deleted_messages_and_other_chats(api_client, chat, user, other_user, post_image):
    # given
    kept = post_image(chat, user, 1)
    deleted = post_image(chat, user, 2)
    chat_services.message_delete(chat_id=chat.pk, message_id=deleted.pk, actor=user)
    post_image(group_with(user, other_user, title="Other"), user, 3)
    # when
    r = api_client.get(f"/api/chats/{chat.id}/media")
    # then
    assert [item["message_id"] for item in r.json()["results"]] == [kept.pk]


def test_gallery_pages_follow_the_next_cursor(api_client, chat, user, post_image):
    # given
    posted = [post_image(chat, user, n) for n in range(5)]
    newest_first = [m.pk for m in reversed(posted)]
    # when
    first = api_client.get(f"/api/chats/{chat.id}/media?limit=2").json()
    second = api_client.get(first["next"]).json()
    third = api_client.get(second["next"]).json()
    # then
    assert [i["message_id"] for i in first["results"]] == newest_first[:2]
    assert [i["message_id"] for i in second["results"]] == newest_first[2:4]
    assert [i["message_id"] for i in third["results"]] == newest_first[4:]
    assert third["next"] is None


def test_gallery_page_is_stable_while_new_images_arrive(api_client, chat, user, post_image):
    # given
    posted = [post_image(chat, user, n) for n in range(4)]
    first = api_client.get(f"/api/chats/{chat.id}/media?limit=2").json()
    post_image(chat, user, 99)
    # when
    second = api_client.get(first["next"]).json()
    # then
    assert [i["message_id"] for i in second["results"]] == [posted[1].pk, posted[0].pk]


def test_gallery_of_a_chat_the_caller_is_not_in_is_404(make_client, outsider, chat, user, post_image):
    # given
    post_image(chat, user, 1)
    # when
    r = make_client(outsider).get(f"/api/chats/{chat.id}/media")
    # then
    assert r.status_code == 404, r.content


@pytest.mark.parametrize("count", [5, 30])
def test_gallery_query_count_does_not_grow_with_the_page(
    api_client, chat, user, other_user, post_image, count, django_assert_max_num_queries
):
    # given: images from two senders
    for n in range(count):
        post_image(chat, user if n % 2 else other_user, n)
    # when
    # the caller, the membership, the page, which senders share a chat with the caller (presence)
    with django_assert_max_num_queries(4):
        r = api_client.get(f"/api/chats/{chat.id}/media?limit=30")
    # then
    assert r.status_code == 200, r.content
    assert len(r.json()["results"]) == count
