"""GET attachment.url: the bytes, only for the uploader and members of a chat where it was shared."""

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from chats import services as chat_services
from media import store
from tests.factories import group_with
from tests.media import images
from tests.media.conftest import stored_bytes


def test_uploader_fetches_the_bytes_with_safe_headers(api_client, shared):
    # when
    r = api_client.get(shared.url)
    # then
    assert r.status_code == 200, r.content
    assert b"".join(r.streaming_content) == stored_bytes(shared.blob.sha256)
    assert r["Content-Type"] == "image/png"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert r["Content-Disposition"] == 'inline; filename="cat.png"'
    assert r["ETag"] == f'"{shared.blob.sha256}"'
    assert r["Cache-Control"].startswith("private, max-age=")
    assert "sandbox" in r["Content-Security-Policy"]
    assert int(r["Content-Length"]) == shared.blob.size


def test_member_of_the_chat_where_it_was_shared_fetches_it(make_client, other_user, shared):
    # when
    r = make_client(other_user).get(shared.url)
    # then
    assert r.status_code == 200, r.content


def test_outsider_gets_404(make_client, outsider, shared):
    # when
    r = make_client(outsider).get(shared.url)
    # then
    assert r.status_code == 404, r.content


def test_unknown_attachment_gets_404(api_client):
    # when
    r = api_client.get("/api/attachments/999999/file")
    # then
    assert r.status_code == 404, r.content


def test_without_a_token_the_answer_is_401(make_client, shared):
    # when
    r = make_client(None).get(shared.url)
    # then
    assert r.status_code == 401, r.content


def test_unsent_upload_is_visible_to_its_uploader_only(make_client, user, other_user, chat, make_attachment):
    # given: uploaded but never posted, although both share a chat
    attachment = make_attachment(user)
    # when
    mine = make_client(user).get(attachment.url)
    theirs = make_client(other_user).get(attachment.url)
    # then
    assert mine.status_code == 200, mine.content
    assert theirs.status_code == 404, theirs.content


def test_once_the_message_is_deleted_members_no_longer_fetch_it(make_client, user, other_user, chat, shared):
    # given
    message = shared.messages.get()
    chat_services.message_delete(chat_id=chat.pk, message_id=message.pk, actor=user)
    # when
    r = make_client(other_user).get(shared.url)
    # then
    assert r.status_code == 404, r.content


def test_a_member_who_left_no_longer_fetches_it(make_client, other_user, chat, shared):
    # given
    chat_services.chat_member_remove(chat_id=chat.pk, actor=other_user, user_id=other_user.pk)
    # when
    r = make_client(other_user).get(shared.url)
    # then
    assert r.status_code == 404, r.content


def test_reshared_into_another_chat_its_members_fetch_it(make_client, other_user, outsider, shared):
    # given: bob forwards alice's image to a chat with mallory
    second = group_with(other_user, outsider, owner=other_user, title="Elsewhere")
    chat_services.message_create(chat_id=second.pk, sender=other_user, attachment_id=shared.pk)
    # when
    r = make_client(outsider).get(shared.url)
    # then
    assert r.status_code == 200, r.content


def test_matching_if_none_match_answers_304(api_client, shared):
    # when
    r = api_client.get(shared.url, HTTP_IF_NONE_MATCH=f'"{shared.blob.sha256}"')
    # then
    assert r.status_code == 304, r.content
    assert r["ETag"] == f'"{shared.blob.sha256}"'
    assert r.content == b""


def test_if_none_match_is_checked_after_access(make_client, outsider, shared):
    # when
    r = make_client(outsider).get(shared.url, HTTP_IF_NONE_MATCH=f'"{shared.blob.sha256}"')
    # then
    assert r.status_code == 404, r.content


def test_other_etag_answers_the_bytes(api_client, shared):
    # when
    r = api_client.get(shared.url, HTTP_IF_NONE_MATCH='"0000"')
    # then
    assert r.status_code == 200, r.content


def test_access_token_in_the_query_string_works_for_img_src(make_client, other_user, shared):
    # given
    token = RefreshToken.for_user(other_user).access_token
    # when
    r = make_client(None).get(f"{shared.url}?token={token}")
    # then
    assert r.status_code == 200, r.content
    assert r["Referrer-Policy"] == "no-referrer"


def test_query_token_of_an_outsider_gets_404(make_client, outsider, shared):
    # when
    r = make_client(None).get(f"{shared.url}?token={RefreshToken.for_user(outsider).access_token}")
    # then
    assert r.status_code == 404, r.content


@pytest.mark.parametrize("kind", ["garbage", "refresh"])
def test_query_token_that_is_not_a_valid_access_token_gets_401(make_client, user, shared, kind):
    # given
    token = "not-a-jwt" if kind == "garbage" else str(RefreshToken.for_user(user))
    # when
    r = make_client(None).get(f"{shared.url}?token={token}")
    # then
    assert r.status_code == 401, r.content


def test_query_token_is_not_accepted_on_other_endpoints(make_client, user):
    # when
    r = make_client(None).get(f"/api/chats?token={RefreshToken.for_user(user).access_token}")
    # then
    assert r.status_code == 401, r.content


def test_any_accept_header_gets_the_bytes(api_client, shared):
    # when
    r = api_client.get(shared.url, HTTP_ACCEPT="image/avif,image/webp,image/*;q=0.8")
    # then
    assert r.status_code == 200, r.content


def test_file_name_is_made_safe_and_takes_the_real_extension(api_client, user, make_attachment):
    # given: a hostile name on GIF bytes
    attachment = make_attachment(user, images.gif(), name='..\\..\\évil"\r\n name.html')
    # when
    r = api_client.get(attachment.url)
    # then
    assert r.status_code == 200, r.content
    disposition = r["Content-Disposition"]
    assert disposition.startswith("inline; filename")
    assert disposition.endswith(".gif") and "html" not in disposition
    assert "\r" not in disposition and "\n" not in disposition and '"' not in disposition.split("=", 1)[1].strip('"')


def test_valid_gif_carrying_a_script_is_served_as_an_image_that_cannot_run(api_client, user, make_attachment):
    # given: a real GIF whose comment holds HTML
    data = images.gif(comment=b"<html><script>alert(document.cookie)</script></html>")
    attachment = make_attachment(user, data, name="x.html")
    # when
    r = api_client.get(attachment.url)
    # then
    assert r.status_code == 200, r.content
    assert r["Content-Type"] == "image/gif"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert r["Content-Security-Policy"].startswith("default-src 'none'")
    assert r["Content-Disposition"] == 'inline; filename="x.gif"'


@pytest.mark.local_disk  # a bucket's bytes are streamed whatever SENDFILE_HEADER says (test_object_store)
def test_behind_nginx_the_file_is_handed_to_x_accel_redirect(api_client, shared, settings):
    # given
    settings.SENDFILE_HEADER = "X-Accel-Redirect"
    settings.SENDFILE_URL_PREFIX = "/protected-uploads/"
    sha = shared.blob.sha256
    # when
    r = api_client.get(shared.url)
    # then
    assert r.status_code == 200, r.content
    assert r["X-Accel-Redirect"] == f"/protected-uploads/{sha[:2]}/{sha[2:4]}/{sha}"
    assert r.content == b""
    assert r["Content-Type"] == "image/png"
    assert r["ETag"] == f'"{sha}"'


@pytest.mark.local_disk
def test_x_sendfile_gets_the_file_path(api_client, shared, settings):
    # given
    settings.SENDFILE_HEADER = "X-Sendfile"
    # when
    r = api_client.get(shared.url)
    # then
    assert r.status_code == 200, r.content
    assert r["X-Sendfile"] == str(store.blob_path(shared.blob.sha256))


def test_head_answers_the_headers_without_the_bytes(api_client, shared):
    # when
    r = api_client.head(shared.url)
    # then
    assert r.status_code == 200, r.content
    assert r["Content-Type"] == "image/png"
    assert r["ETag"] == f'"{shared.blob.sha256}"'
