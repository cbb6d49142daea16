"""The gallery by kind (GET /api/chats/{id}/media?kind=image|file) and the media feed across all the
caller's chats (GET /api/media?kind=&before=&limit=), newest first, in a fixed number of queries."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from chats import services as chat_services
from media import services
from tests.factories import UserFactory, group_with
from tests.media import images


@pytest.fixture
def post():
    """Upload (through the real service) and send an image or a file; the message."""

    def send(chat, sender, n: int, kind: str = "image"):
        if kind == "image":
            upload = SimpleUploadedFile(f"{n}.png", images.png(color=(n % 256, n // 256, 9)))
        else:
            upload = SimpleUploadedFile(f"notes-{n}.txt", f"notes number {n}\n".encode())
        attachment = services.attachment_create(uploader=sender, file=upload)
        return chat_services.message_create(chat_id=chat.pk, sender=sender, attachment_id=attachment.pk).message

    return send


def ids(page) -> list[int]:
    return [item["message_id"] for item in page["results"]]


def test_the_gallery_lists_files_with_kind_file_and_images_by_default(api_client, chat, user, post):
    # given
    image = post(chat, user, 1, "image")
    file = post(chat, user, 2, "file")
    # when
    images_page = api_client.get(f"/api/chats/{chat.id}/media").json()
    files_page = api_client.get(f"/api/chats/{chat.id}/media", {"kind": "file"}).json()
    # then
    assert ids(images_page) == [image.pk]
    assert ids(files_page) == [file.pk]
    attachment = files_page["results"][0]["attachment"]
    assert (attachment["kind"], attachment["name"]) == ("file", "notes-2.txt")


@pytest.mark.parametrize("path", ["/api/chats/{chat}/media", "/api/media"])
def test_another_kind_is_a_400(api_client, chat, path):
    # when
    r = api_client.get(path.format(chat=chat.id), {"kind": "video"})
    # then
    assert r.status_code == 400, r.content
    assert "kind" in r.json()


def test_the_feed_lists_every_chat_of_the_caller_newest_first_with_chat_id(
    api_client, chat, user, other_user, outsider, post
):
    # given: two chats of the caller, and one they are not in
    second = group_with(other_user, user, owner=other_user, title="Second")
    elsewhere = group_with(other_user, outsider, owner=other_user, title="Elsewhere")
    first = post(chat, user, 1)
    post(elsewhere, outsider, 2)
    middle = post(second, other_user, 3)
    post(second, other_user, 4, "file")
    newest = post(chat, other_user, 5)
    # when
    r = api_client.get("/api/media")
    # then
    assert r.status_code == 200, r.content
    page = r.json()
    assert ids(page) == [newest.pk, middle.pk, first.pk]
    assert [item["chat_id"] for item in page["results"]] == [chat.pk, second.pk, chat.pk]
    assert page["next"] is None
    item = page["results"][0]
    assert set(item) == {"message_id", "chat_id", "sender", "attachment"}
    assert item["sender"]["id"] == other_user.pk
    assert item["attachment"]["id"] == newest.attachment_id


def test_the_feed_of_files(api_client, chat, user, post):
    # given
    post(chat, user, 1)
    file = post(chat, user, 2, "file")
    # when
    page = api_client.get("/api/media", {"kind": "file"}).json()
    # then
    assert ids(page) == [file.pk]


def test_the_feed_leaves_out_deleted_messages_and_chats_the_caller_left(api_client, chat, user, other_user, post):
    # given
    kept = post(chat, user, 1)
    deleted = post(chat, user, 2)
    chat_services.message_delete(chat_id=chat.pk, message_id=deleted.pk, actor=user)
    left = group_with(other_user, user, owner=other_user, title="Left")
    post(left, other_user, 3)
    chat_services.chat_member_remove(chat_id=left.pk, actor=user, user_id=user.pk)
    # when
    page = api_client.get("/api/media").json()
    # then
    assert ids(page) == [kept.pk]


def test_the_feed_pages_by_before_and_follows_next(api_client, chat, user, other_user, post):
    # given
    second = group_with(other_user, user, owner=other_user, title="Second")
    posted = [post((chat, second)[n % 2], user, n) for n in range(5)]
    newest_first = [m.pk for m in reversed(posted)]
    # when
    first = api_client.get("/api/media", {"limit": 2}).json()
    following = api_client.get(first["next"]).json()
    by_before = api_client.get("/api/media", {"limit": 2, "before": newest_first[1]}).json()
    last = api_client.get(following["next"]).json()
    # then
    assert ids(first) == newest_first[:2]
    assert ids(following) == ids(by_before) == newest_first[2:4]
    assert ids(last) == newest_first[4:]
    assert last["next"] is None
    assert "limit=2" in first["next"]


def test_the_feed_needs_a_token(make_client):
    # when
    r = make_client(None).get("/api/media")
    # then
    assert r.status_code == 401, r.content


@pytest.mark.parametrize("count", [3, 30])
def test_the_feed_costs_the_same_whatever_the_chats_and_senders(
    api_client, user, post, count, django_assert_max_num_queries
):
    # given: `count` chats of the caller, each with an image from another member
    for n in range(count):
        sender = UserFactory.create()
        post(group_with(user, sender, owner=user, title=f"g{n}"), sender, n)
    # when
    # the caller, the page with senders and attachments, which senders share a chat with the caller (presence)
    with django_assert_max_num_queries(3):
        r = api_client.get("/api/media", {"limit": 100})
    # then
    assert r.status_code == 200, r.content
    assert len(r.json()["results"]) == count


@pytest.mark.parametrize("count", [3, 30])
def test_the_gallery_of_files_costs_the_same_whatever_the_page(
    api_client, chat, user, other_user, post, count, django_assert_max_num_queries
):
    # given
    for n in range(count):
        post(chat, (user, other_user)[n % 2], n, "file")
    # when
    with django_assert_max_num_queries(4):
        r = api_client.get(f"/api/chats/{chat.id}/media", {"kind": "file", "limit": 30})
    # then
    assert r.status_code == 200, r.content
    assert len(r.json()["results"]) == count
