"""The hand-written outputs of the hot serializers equal DRF's generic rendering of their fields.

PublicUserSerializer, MeSerializer, AttachmentSerializer, MessageSerializer, MediaItemSerializer
and ChatSerializer build their dicts directly (messenger.rendering); the declared fields stay the shape's definition.
Each case renders both ways and compares, so the two cannot drift apart.
"""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework import serializers

from accounts.serializers import MeSerializer, PublicUserSerializer
from chats import selectors, services
from chats.serializers import ChatSerializer, MediaItemSerializer, MessageSerializer
from media import services as media_services
from media.serializers import AttachmentSerializer
from messenger.rendering import datetime_text
from tests.factories import UserFactory, direct_between, group_with, message_in
from tests.media import images

pytestmark = pytest.mark.django_db


def both(serializer: serializers.BaseSerializer[Any], instance: Any) -> tuple[Any, Any]:
    generic = serializers.ModelSerializer.to_representation(serializer, instance)  # type: ignore[arg-type]
    return serializer.to_representation(instance), dict(generic)


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("last_seen", [None, datetime(2026, 11, 24, 12, 30, 5, 123456, tzinfo=UTC)])
def test_public_user_and_me(online, last_seen):
    user = UserFactory.create(display_name="Zoë 🦊", last_seen=last_seen)
    context = {"online_ids": {user.pk} if online else set()}
    fast, generic = both(PublicUserSerializer(context=context), user)
    assert fast == generic
    fast, generic = both(MeSerializer(context=context), user)
    assert fast == generic


def test_attachment(user):
    attachment = media_services.attachment_create(uploader=user, file=SimpleUploadedFile("a.png", images.png()))
    fast, generic = both(AttachmentSerializer(), attachment)
    assert fast == generic


def test_messages_plain_edited_with_image_and_deleted(user, other_user):
    chat = group_with(user, other_user, owner=user)
    plain = message_in(chat, user, "plain 🙂")
    edited = services.message_edit(
        chat_id=chat.pk, message_id=message_in(chat, user).pk, actor=user, content="new"
    ).message
    attachment = media_services.attachment_create(uploader=user, file=SimpleUploadedFile("a.png", images.png()))
    with_image = services.message_create(chat_id=chat.pk, sender=user, content="", attachment_id=attachment.pk).message
    gone = services.message_create(chat_id=chat.pk, sender=user, content="x", attachment_id=attachment.pk).message
    services.message_delete(chat_id=chat.pk, message_id=gone.pk, actor=user)
    page = selectors.message_page(chat_id=chat.pk, limit=10).results
    assert {m.pk for m in page} == {plain.pk, edited.pk, with_image.pk, gone.pk}
    for message in page:
        for online_ids in ({user.pk}, set()):
            fast, generic = both(MessageSerializer(context={"online_ids": online_ids}), message)
            assert fast == generic, message


def test_media_items(user, other_user):
    chat = group_with(user, other_user, owner=user)
    for sender in (user, other_user):
        attachment = media_services.attachment_create(uploader=sender, file=SimpleUploadedFile("a.png", images.png()))
        services.message_create(chat_id=chat.pk, sender=sender, content="", attachment_id=attachment.pk)
    page = list(selectors.media_page_queryset(chat.pk))
    assert len(page) == 2
    for message in page:
        for online_ids in ({user.pk}, set()):
            fast, generic = both(MediaItemSerializer(context={"online_ids": online_ids}), message)
            assert fast == generic, message


def test_chats_as_each_member_sees_them(user, other_user):
    third = UserFactory.create()
    group = group_with(user, other_user, third, owner=user, title="Book club")
    message_in(group, other_user, "hi")
    direct_between(user, third)
    for viewer in (user, other_user, third):
        chats = selectors.attach_members(selectors.chats_for(viewer))
        for chat in chats:
            context = {"user": viewer, "online_ids": {other_user.pk}}
            fast, generic = both(ChatSerializer(context=context), chat)
            assert fast == generic, (viewer, chat)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/St_Johns"])
@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 24, 12, 30, 5, tzinfo=UTC),
        datetime(2026, 7, 1, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, tzinfo=ZoneInfo("Europe/Paris")),
        datetime(2026, 1, 1, 0, 0),  # naive: DRF makes it aware in the current zone
    ],
)
def test_datetimes_render_as_drf_renders_them(zone, value):
    with timezone.override(zone):
        assert datetime_text(value) == serializers.DateTimeField().to_representation(value)
