"""The admin lists blobs and attachments read-only, with their counters and filters."""

import re

import pytest

from chats import services as chat_services
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


@pytest.mark.parametrize(("order", "expected"), [("5", ["0", "2"]), ("-5", ["2", "0"])])
def test_admin_counts_and_sorts_by_the_messages_that_carry_an_attachment(
    admin_client, user, chat, make_attachment, order, expected
):
    # given: one attachment sent twice, one never sent
    sent = make_attachment(user, images.png(color=(1, 1, 1)))
    make_attachment(user, images.png(color=(2, 2, 2)))
    for _ in range(2):
        chat_services.message_create(chat_id=chat.pk, sender=user, attachment_id=sent.pk)
    # when: sorted by the Messages column (the fifth: a read-only admin has no checkbox column)
    r = admin_client.get(f"/admin/media/attachment/?o={order}")
    # then
    assert r.status_code == 200, r.content
    assert re.findall(r'<td class="field-message_count">(\d+)</td>', r.content.decode()) == expected
