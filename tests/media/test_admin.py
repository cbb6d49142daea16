"""The admin lists blobs and attachments read-only, with their counters and filters."""

import pytest

from tests.factories import UserFactory
from tests.media import images


@pytest.fixture
def admin_client(client, db):
    staff = UserFactory.create(username="root", is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


@pytest.mark.parametrize(
    "path",
    ["/admin/media/blob/", "/admin/media/blob/?referenced=no", "/admin/media/attachment/?blob__content_type=image/png"],
)
def test_admin_lists_render(admin_client, user, make_attachment, path):
    # given
    make_attachment(user, images.png())
    # when
    r = admin_client.get(path)
    # then
    assert r.status_code == 200, r.content


def test_admin_shows_an_attachment_read_only(admin_client, user, make_attachment):
    # given
    attachment = make_attachment(user, images.gif())
    # when
    page = admin_client.get(f"/admin/media/attachment/{attachment.pk}/change/")
    delete = admin_client.get(f"/admin/media/attachment/{attachment.pk}/delete/")
    # then
    assert page.status_code == 200, page.content
    assert attachment.blob.sha256 in page.content.decode()
    assert delete.status_code == 403
