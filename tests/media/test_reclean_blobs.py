"""manage.py reclean_blobs: files stored under older cleaning rules are cleaned, their attachments kept."""

import hashlib
import io

from django.core.management import call_command

from media import store
from media.models import Attachment, Blob
from tests.media import images
from tests.media.conftest import put_stray, upload


def run() -> str:
    out = io.StringIO()
    call_command("reclean_blobs", stdout=out)
    return out.getvalue()


def stored_as_before(attachment: Attachment, data: bytes) -> None:
    """Put `data` in place of the attachment's blob, as an older server stored it uncleaned."""
    old = attachment.blob
    blob = Blob.objects.create(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        content_type=old.content_type,
        width=old.width,
        height=old.height,
    )
    put_stray(data)
    Attachment.objects.filter(pk=attachment.pk).update(blob=blob)


def test_an_old_gif_with_xmp_and_a_tail_is_cleaned_and_its_attachment_follows(
    api_client, django_capture_on_commit_callbacks
):
    # given: a GIF stored whole by an older server, XMP and bytes after the trailer included
    hostile = images.hostile_gif(trailing=b"<html>")
    r = upload(api_client, hostile, name="x.gif")
    attachment = Attachment.objects.get(pk=r.json()["id"])
    clean_sha256 = attachment.blob.sha256
    stored_as_before(attachment, hostile)
    old_sha256 = Attachment.objects.get(pk=attachment.pk).blob.sha256
    # when
    with django_capture_on_commit_callbacks(execute=True):
        output = run()
    # then
    assert f"cleaned blob {old_sha256} -> {clean_sha256}" in output
    attachment.refresh_from_db()
    assert attachment.blob.sha256 == clean_sha256
    assert not store.exists(old_sha256)
    assert not Blob.objects.filter(sha256=old_sha256).exists()
    fetched = api_client.get(attachment.url)
    content = b"".join(fetched.streaming_content)
    assert images.SECRET_PLACE not in content and b"<html>" not in content


def test_a_second_run_changes_nothing(api_client):
    # given
    upload(api_client, images.hostile("JPEG", images.exif_with_gps_in_ifd1()), name="x.jpg")
    before = list(Blob.objects.values_list("sha256", flat=True))
    # when
    output = run()
    # then
    assert "cleaned 0 blob(s)" in output
    assert list(Blob.objects.values_list("sha256", flat=True)) == before
