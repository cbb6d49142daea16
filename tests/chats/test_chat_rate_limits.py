"""Per user: creating groups (`THROTTLE_GROUP_CREATE`) and renaming (`THROTTLE_RENAME`) are
rate-limited, 429 with Retry-After; direct chats are not counted."""

import pytest
from rest_framework.throttling import ScopedRateThrottle

from chats.models import Chat
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"group_create": "2/hour", "rename": "2/hour"})


def create_group(client, title: str, member_ids: list[int]):
    return client.post("/api/chats", {"is_group": True, "title": title, "member_ids": member_ids}, format="json")


def test_a_group_past_the_rate_answers_429_with_retry_after(rates, api_client, other_user):
    # given
    for n in range(2):
        assert create_group(api_client, f"G{n}", [other_user.pk]).status_code == 201
    # when
    r = create_group(api_client, "G9", [other_user.pk])
    # then
    assert r.status_code == 429, r.content
    assert int(r["Retry-After"]) > 0
    assert Chat.objects.filter(is_group=True).count() == 2


def test_direct_chats_are_not_counted(rates, api_client, other_user):
    # given
    for n in range(2):
        create_group(api_client, f"G{n}", [other_user.pk])
    # when
    r = api_client.post("/api/chats", {"is_group": False, "member_ids": [UserFactory.create().pk]}, format="json")
    # then
    assert r.status_code == 201, r.content


def test_the_rate_is_per_user(rates, api_client, client_for, other_user):
    # given
    for n in range(2):
        create_group(api_client, f"G{n}", [other_user.pk])
    # when
    r = create_group(client_for(other_user), "Theirs", [])
    # then
    assert r.status_code == 201, r.content


def test_a_rename_past_the_rate_answers_429_and_keeps_the_title(rates, api_client, other_user):
    # given
    chat_id = create_group(api_client, "First", [other_user.pk]).json()["id"]
    for n in range(2):
        assert api_client.patch(f"/api/chats/{chat_id}", {"title": f"T{n}"}, format="json").status_code == 200
    # when
    r = api_client.patch(f"/api/chats/{chat_id}", {"title": "T9"}, format="json")
    # then
    assert r.status_code == 429, r.content
    assert int(r["Retry-After"]) > 0
    assert Chat.objects.get(pk=chat_id).title == "T1"


def test_the_schema_documents_the_429s(client):
    # when
    schema = client.get("/api/schema/", {"format": "json"}).json()
    # then
    assert "429" in schema["paths"]["/api/chats"]["post"]["responses"]
    assert "429" in schema["paths"]["/api/chats/{id}"]["patch"]["responses"]
