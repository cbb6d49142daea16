"""Profile pictures: PUT/DELETE /api/auth/me/avatar, PublicUser.avatar_url, and fetching it."""

import io
from typing import Any

import pytest
from django.core.management import call_command
from PIL import Image
from rest_framework_simplejwt.tokens import RefreshToken

from chats import services as chat_services
from media.models import Blob
from tests.factories import ChatUserFactory, UserFactory, message_in
from tests.media import images
from tests.media.conftest import stored_bytes, stored_sha256s, upload

GPS_SECRET = b"52,31.2N"  # in images.XMP_WITH_GPS


def put_avatar(client, data: bytes, name: str = "me.png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.put("/api/auth/me/avatar", {"file": SimpleUploadedFile(name, data)}, format="multipart")


def fetched(client, url: str) -> tuple[int, bytes, Any]:
    r = client.get(url)
    body = b"".join(r.streaming_content) if r.status_code == 200 else r.content
    return r.status_code, body, r


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_put_stores_the_picture_shrunk_to_512_px_and_answers_me(api_client, user, make_client, other_user):
    # when
    r = put_avatar(api_client, images.png(size=(1024, 600)))
    # then
    assert r.status_code == 200, r.content
    me = r.json()
    assert me["id"] == user.pk and "email" in me
    url = me["avatar_url"]
    assert url.startswith("/api/avatars/")
    status, body, answer = fetched(make_client(other_user), url)
    assert status == 200
    assert answer["Content-Type"] == "image/png"
    assert picture(body).size == (512, 300)
    assert url == f"/api/avatars/{Blob.objects.get().sha256}"


def test_a_small_picture_is_not_enlarged_and_a_jpeg_stays_a_jpeg_without_its_metadata(api_client, make_client, user):
    # when
    r = put_avatar(api_client, images.jpeg_with_gps(), name="holiday.jpg")
    # then
    assert r.status_code == 200, r.content
    status, body, answer = fetched(api_client, r.json()["avatar_url"])
    assert status == 200
    assert answer["Content-Type"] == "image/jpeg"
    image = picture(body)
    # images.jpeg_with_gps is 16x8 with Orientation 6 (rotate 90°): drawn upright, then the EXIF dropped
    assert image.size == (8, 16)
    assert GPS_SECRET not in body and b"TestCam" not in body
    assert not image.getexif()


def test_an_animation_becomes_its_first_frame_as_a_png(api_client):
    # when
    r = put_avatar(api_client, images.hostile_gif(frames=3), name="moving.gif")
    # then
    assert r.status_code == 200, r.content
    status, body, answer = fetched(api_client, r.json()["avatar_url"])
    assert status == 200
    assert answer["Content-Type"] == "image/png"
    assert getattr(picture(body), "n_frames", 1) == 1


def test_the_same_picture_of_two_users_is_stored_once(make_client, user, other_user):
    # when
    first = put_avatar(make_client(user), images.png(size=(40, 40)))
    second = put_avatar(make_client(other_user), images.png(size=(40, 40)))
    # then
    assert first.json()["avatar_url"] == second.json()["avatar_url"]
    assert Blob.objects.count() == 1
    assert len(stored_sha256s()) == 1


@pytest.mark.parametrize(
    ("data", "status"),
    [(b"plain text, not a picture", 400), (b"\x89PNG\r\n\x1a\n" + bytes(64), 400), (b"", 400)],
    ids=["text", "corrupt-png", "empty"],
)
def test_a_bad_image_is_refused_and_the_old_picture_stays(api_client, user, data, status):
    # given
    old = put_avatar(api_client, images.png()).json()["avatar_url"]
    # when
    r = put_avatar(api_client, data, name="x.png")
    # then
    assert r.status_code == status, r.content
    assert "file" in r.json()
    user.refresh_from_db()
    assert f"/api/avatars/{user.avatar_sha256}" == old
    assert Blob.objects.count() == 1


def test_a_picture_over_the_image_limit_is_413(api_client, settings):
    # given
    settings.UPLOAD_MAX_BYTES = 1000
    data = images.noisy_png((40, 40))
    assert len(data) > 1000
    # when
    r = put_avatar(api_client, data)
    # then
    assert r.status_code == 413, r.content
    assert Blob.objects.count() == 0


def test_a_new_picture_replaces_the_old_whose_bytes_go(api_client):
    # given
    old = put_avatar(api_client, images.png(color=(1, 2, 3))).json()["avatar_url"]
    # when
    new = put_avatar(api_client, images.png(color=(4, 5, 6))).json()["avatar_url"]
    # then
    assert new != old
    assert [blob.sha256 for blob in Blob.objects.all()] == [new.rsplit("/", 1)[1]]
    assert len(stored_sha256s()) == 1
    assert api_client.get(old).status_code == 404


def test_delete_removes_the_picture_and_its_bytes(api_client, user):
    # given
    url = put_avatar(api_client, images.png()).json()["avatar_url"]
    # when
    r = api_client.delete("/api/auth/me/avatar")
    # then
    assert r.status_code == 200, r.content
    assert r.json()["avatar_url"] is None
    assert Blob.objects.count() == 0
    assert stored_sha256s() == []
    assert api_client.get(url).status_code == 404
    assert api_client.delete("/api/auth/me/avatar").status_code == 200  # nothing left to remove: the same


def test_delete_keeps_bytes_another_user_still_shows(make_client, user, other_user):
    # given
    put_avatar(make_client(user), images.png())
    url = put_avatar(make_client(other_user), images.png()).json()["avatar_url"]
    # when
    make_client(user).delete("/api/auth/me/avatar")
    # then
    assert make_client(user).get(url).status_code == 200
    assert Blob.objects.count() == 1


def test_bytes_that_are_an_attachment_and_an_avatar_stay_while_either_uses_them(api_client, user, make_attachment):
    # given: a picture small and plain enough that the avatar's bytes equal an upload's
    url = put_avatar(api_client, images.png(size=(4, 3))).json()["avatar_url"]
    sha256 = url.rsplit("/", 1)[1]
    attachment = make_attachment(user, stored_bytes(sha256))
    assert attachment.blob.sha256 == sha256
    # when
    api_client.delete("/api/auth/me/avatar")
    # then
    assert Blob.objects.filter(sha256=sha256).exists()


def test_cleanup_blobs_keeps_avatars(api_client):
    # given
    url = put_avatar(api_client, images.png()).json()["avatar_url"]
    # when
    call_command("cleanup_blobs", "--grace-minutes", "0", stdout=io.StringIO())
    # then
    assert api_client.get(url).status_code == 200


def test_fetching_needs_a_token_and_takes_it_in_the_query_string(api_client, make_client, other_user):
    # given
    url = put_avatar(api_client, images.png()).json()["avatar_url"]
    token = RefreshToken.for_user(other_user).access_token
    # when
    anonymous = make_client(None).get(url)
    with_query_token = make_client(None).get(f"{url}?token={token}")
    # then
    assert anonymous.status_code == 401, anonymous.content
    assert with_query_token.status_code == 200, with_query_token.content


def test_the_answer_is_cached_for_good_and_revalidates_with_its_etag(api_client):
    # given
    url = put_avatar(api_client, images.png()).json()["avatar_url"]
    sha256 = url.rsplit("/", 1)[1]
    # when
    r = api_client.get(url)
    again = api_client.get(url, HTTP_IF_NONE_MATCH=f'"{sha256}"')
    # then
    assert r["Cache-Control"] == "private, max-age=31536000, immutable"
    assert r["ETag"] == f'"{sha256}"'
    assert r["X-Content-Type-Options"] == "nosniff"
    assert again.status_code == 304


def test_an_attachment_is_never_served_as_an_avatar(make_client, user, outsider, make_attachment):
    # given: a private upload whose sha256 an outsider learned
    attachment = make_attachment(user)
    # when
    r = make_client(outsider).get(f"/api/avatars/{attachment.blob.sha256}")
    # then
    assert r.status_code == 404, r.content


@pytest.mark.local_disk
def test_behind_nginx_the_picture_is_handed_to_x_accel_redirect(api_client, settings):
    # given
    url = put_avatar(api_client, images.png()).json()["avatar_url"]
    sha = url.rsplit("/", 1)[1]
    settings.SENDFILE_HEADER = "X-Accel-Redirect"
    # when
    r = api_client.get(url)
    # then
    assert r.status_code == 200, r.content
    assert r["X-Accel-Redirect"] == f"/protected-uploads/{sha[:2]}/{sha[2:4]}/{sha}"
    assert r["Content-Type"] == "image/png"


def test_public_users_carry_avatar_url_everywhere(api_client, make_client, user, other_user, chat):
    # given
    url = put_avatar(make_client(other_user), images.png()).json()["avatar_url"]
    chat_services.message_create(chat_id=chat.pk, sender=other_user, content="hi")
    # when
    profile = api_client.get(f"/api/users/{other_user.pk}").json()
    members = api_client.get(f"/api/chats/{chat.id}").json()["members"]
    history = api_client.get(f"/api/chats/{chat.id}/messages").json()["results"]
    me = api_client.get("/api/auth/me").json()
    # then
    assert profile["avatar_url"] == url
    assert {m["user"]["id"]: m["user"]["avatar_url"] for m in members} == {user.pk: None, other_user.pk: url}
    assert history[0]["sender"]["avatar_url"] == url
    assert me["avatar_url"] is None


def test_the_chat_list_with_pictures_costs_what_it_did(api_client, user, make_client, django_assert_max_num_queries):
    # given: 20 chats whose members and senders have pictures
    from tests.chats.test_query_budgets import CHAT_LIST_BUDGET, chats_with_traffic

    chats_with_traffic(user, 20)
    for other in UserFactory._meta.model.objects.exclude(pk=user.pk)[:20]:
        put_avatar(make_client(other), images.png(color=(other.pk % 256, 1, 1)))
    # when
    with django_assert_max_num_queries(CHAT_LIST_BUDGET):
        r = api_client.get("/api/chats", {"limit": 100})
    # then
    assert r.status_code == 200, r.content
    shown = [m["user"]["avatar_url"] for c in r.json()["results"] for m in c["members"]]
    assert sum(url is not None for url in shown) == 20


def test_history_with_pictures_costs_what_it_did(api_client, user, chat, make_client, django_assert_max_num_queries):
    # given: messages from 10 senders with pictures
    from tests.chats.test_query_budgets import HISTORY_BUDGET

    senders = [UserFactory.create() for _ in range(10)]
    for n, sender in enumerate(senders):
        ChatUserFactory.create(chat=chat, user=sender)
        put_avatar(make_client(sender), images.png(color=(n, 2, 2)))
        message_in(chat, sender)
    # when
    with django_assert_max_num_queries(HISTORY_BUDGET):
        r = api_client.get(f"/api/chats/{chat.id}/messages")
    # then
    assert r.status_code == 200, r.content
    assert all(m["sender"]["avatar_url"] for m in r.json()["results"])


def test_avatar_needs_a_token(make_client):
    # when
    r = put_avatar(make_client(None), images.png())
    # then
    assert r.status_code == 401, r.content


def test_an_avatar_is_no_upload_of_the_quota(api_client, settings):
    # given: no room for uploads at all
    settings.UPLOAD_QUOTA_BYTES = 1
    # when
    r = put_avatar(api_client, images.png())
    # then
    assert r.status_code == 200, r.content
    assert upload(api_client, images.png()).status_code == 413
