"""Files of any type (kind "file"): stored byte for byte and content-addressed like images, counted in
the quota, expiring unattached, and only ever served as a download that cannot run."""

import hashlib
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from chats import services as chat_services
from media import services
from media.models import Attachment, Blob
from media.names import NAME_MAX_CHARS, safe_name
from tests.media import images
from tests.media.conftest import stored_bytes, stored_sha256s, upload

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"
ZIP = b"PK\x05\x06" + bytes(18)
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji of three joined by U+200D


@pytest.mark.parametrize(
    ("data", "name"),
    [(PDF, "report.pdf"), (HTML, "cute.png"), (ZIP, "empty.zip"), (b"just some text\n" * 10, "notes.txt")],
    ids=["pdf", "html-named-png", "zip", "text"],
)
def test_any_file_that_is_not_an_image_is_accepted_as_a_file_byte_for_byte(api_client, user, data, name):
    # when
    r = upload(api_client, data, name=name, content_type="image/png")
    # then
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["kind"] == "file"
    assert body["name"] == name
    assert body["content_type"] == "application/octet-stream"
    assert (body["width"], body["height"]) == (None, None)
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored_bytes(body["sha256"]) == data
    assert Attachment.objects.get(pk=body["id"]).uploader == user


def test_an_image_is_still_an_image_whatever_its_name(api_client):
    # when
    r = upload(api_client, images.png(), name="document.pdf", content_type="application/pdf")
    # then
    assert r.status_code == 201, r.content
    assert (r.json()["kind"], r.json()["content_type"], r.json()["name"]) == ("image", "image/png", "document.pdf")


@pytest.mark.parametrize(
    "data",
    [b"\x89PNG\r\n\x1a\n" + b"not really" * 20, b"RIFF\x00\x00\x00\x00WEBPVP8 garbage", b"GIF89a" + bytes(40)],
    ids=["png", "webp", "gif"],
)
def test_bytes_that_claim_an_image_type_but_do_not_decode_are_refused_not_kept_as_a_file(api_client, data):
    # when
    r = upload(api_client, data, name="x.bin", content_type="application/octet-stream")
    # then
    assert r.status_code == 400, r.content
    assert "not a valid" in r.json()["file"][0]
    assert Blob.objects.count() == 0
    assert stored_sha256s() == []


def test_the_same_file_uploaded_by_two_users_is_stored_once(make_client, user, other_user):
    # when
    first = upload(make_client(user), PDF, name="a.pdf")
    second = upload(make_client(other_user), PDF, name="b.pdf")
    # then
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert first.json()["sha256"] == second.json()["sha256"]
    assert (first.json()["name"], second.json()["name"]) == ("a.pdf", "b.pdf")
    assert Blob.objects.count() == 1
    assert len(stored_sha256s()) == 1


def test_a_file_over_file_max_bytes_is_413(api_client, settings, upload_temp_dir):
    # given
    settings.FILE_MAX_BYTES = 1000
    # when
    r = upload(api_client, b"x" * 1001, name="big.txt")
    # then
    assert r.status_code == 413, r.content
    assert r.json() == {"file": ["The file is too large: at most 1000 bytes is accepted."]}
    assert Blob.objects.count() == 0
    assert list(upload_temp_dir.iterdir()) == []


def test_a_file_may_be_larger_than_the_image_limit(api_client, settings):
    # given: images up to 1000 bytes, files up to 5000
    settings.UPLOAD_MAX_BYTES = 1000
    settings.FILE_MAX_BYTES = 5000
    image = images.noisy_png((30, 30))
    assert 1000 < len(image) < 5000
    # when
    file = upload(api_client, b"y" * 4000, name="notes.txt")
    picture = upload(api_client, image, name="big.png")
    # then
    assert file.status_code == 201, file.content
    assert picture.status_code == 413, picture.content
    assert "image" in picture.json()["file"][0]


def test_files_count_in_the_quota(api_client, settings):
    # given: room for the first file only
    settings.UPLOAD_QUOTA_BYTES = len(PDF) + 10
    assert upload(api_client, PDF, name="a.pdf").status_code == 201
    # when
    r = upload(api_client, ZIP, name="b.zip")
    # then
    assert r.status_code == 413, r.content
    assert set(r.json()) == {"detail"}


def test_an_unattached_file_expires_like_an_image(user, settings):
    # given: a file sent nowhere, older than UPLOAD_UNATTACHED_HOURS
    attachment = services.attachment_create(uploader=user, file=SimpleUploadedFile("old.txt", b"old notes"))
    Attachment.objects.filter(pk=attachment.pk).update(created_at=timezone.now() - timedelta(hours=25))
    # when
    expired = services.attachments_sweep_expired(uploader=user)
    # then
    assert expired == 1
    assert not Attachment.objects.filter(pk=attachment.pk).exists()
    assert stored_sha256s() == []


@pytest.fixture
def shared_file(chat, user):
    """A file `user` uploaded under a hostile name and posted in `chat` (where `other_user` is a member)."""
    name = "ré\u202eport\u202c<1>.html"
    attachment = services.attachment_create(uploader=user, file=SimpleUploadedFile(name, HTML))
    message = chat_services.message_create(chat_id=chat.pk, sender=user, attachment_id=attachment.pk).message
    return attachment, message


def test_a_file_is_served_as_a_download_that_cannot_run(make_client, other_user, shared_file):
    # given
    attachment, _ = shared_file
    # when
    r = make_client(other_user).get(attachment.url)
    # then
    assert r.status_code == 200, r.content
    assert b"".join(r.streaming_content) == HTML
    assert r["Content-Type"] == "application/octet-stream"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in [directive.strip() for directive in r["Content-Security-Policy"].split(";")]
    assert attachment.name == "réport_1_.html"
    assert r["Content-Disposition"] == (
        f"attachment; filename=\"r_port_1_.html\"; filename*=UTF-8''{quote('réport_1_.html', safe='')}"
    )
    assert r["ETag"] == f'"{attachment.blob.sha256}"'


def test_a_file_is_hidden_from_outsiders_as_404(make_client, outsider, shared_file):
    # given
    attachment, _ = shared_file
    # when
    r = make_client(outsider).get(attachment.url)
    # then
    assert r.status_code == 404, r.content


@pytest.mark.local_disk
def test_behind_nginx_a_file_keeps_its_download_headers(api_client, settings, shared_file):
    # given
    settings.SENDFILE_HEADER = "X-Accel-Redirect"
    attachment, _ = shared_file
    sha = attachment.blob.sha256
    # when
    r = api_client.get(attachment.url)
    # then
    assert r.status_code == 200, r.content
    assert r["X-Accel-Redirect"] == f"/protected-uploads/{sha[:2]}/{sha[2:4]}/{sha}"
    assert r["Content-Type"] == "application/octet-stream"
    assert r["Content-Disposition"].startswith("attachment; ")


def test_a_message_carrying_a_file_renders_its_kind_name_and_size(api_client, chat, shared_file):
    # given
    _, message = shared_file
    # when
    r = api_client.get(f"/api/chats/{chat.id}/messages")
    # then
    assert r.status_code == 200, r.content
    rendered = next(m for m in r.json()["results"] if m["id"] == message.pk)["attachment"]
    assert (rendered["kind"], rendered["name"], rendered["size"]) == ("file", "réport_1_.html", len(HTML))
    assert rendered["content_type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("photo\u202egnp.exe", "photognp.exe"),
        ("line\r\nbreak.txt", "line break.txt"),
        ("  .hidden. ", "hidden"),
        ("..", ""),
        ('a<b>:"c"|?*.txt', "a_b___c____.txt"),
        (FAMILY + " family.zip", FAMILY + " family.zip"),
        ("e\u0301te\u0301.txt", "\u00e9t\u00e9.txt"),
    ],
)
def test_a_name_is_made_safe(raw, safe):
    assert safe_name(raw) == safe


def test_a_long_name_is_cut_keeping_its_extension():
    # when
    name = safe_name("a" * 1000 + ".pdf")
    # then
    assert len(name) == NAME_MAX_CHARS
    assert name.endswith("aaa.pdf")
