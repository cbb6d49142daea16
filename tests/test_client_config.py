"""GET /api/config: the limits a client needs, from the settings, without a token."""

from datetime import timedelta

import pytest


@pytest.mark.django_db
def test_config_answers_the_limits_from_the_settings_without_a_token(client, settings):
    # given
    settings.MESSAGE_MAX_LENGTH = 1234
    settings.UPLOAD_MAX_BYTES = 5 * 1024 * 1024
    settings.FILE_MAX_BYTES = 20 * 1024 * 1024
    settings.GROUP_MAX_MEMBERS = 77
    settings.TYPING_THROTTLE_SECONDS = 3
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(minutes=7)}
    # when
    r = client.get("/api/config")
    # then
    assert r.status_code == 200, r.content
    assert r.json() == {
        "message_max_length": 1234,
        "upload_max_bytes": 5 * 1024 * 1024,
        "file_max_bytes": 20 * 1024 * 1024,
        "image_types": ["image/png", "image/jpeg", "image/gif", "image/webp"],
        "group_max_members": 77,
        "typing_throttle_seconds": 3,
        "access_token_seconds": 420,
    }


@pytest.mark.django_db
def test_config_ignores_a_bad_token_and_takes_a_trailing_slash(client):
    # when
    r = client.get("/api/config/", HTTP_AUTHORIZATION="Bearer garbage")
    # then
    assert r.status_code == 200, r.content
    assert r.json()["file_max_bytes"] == 50 * 1024 * 1024


@pytest.mark.django_db
def test_config_is_in_the_schema_without_a_security_requirement(client):
    # when
    schema = client.get("/api/schema/", {"format": "json"}).json()
    # then
    operation = schema["paths"]["/api/config"]["get"]
    assert {"200", "500", "503"} <= set(operation["responses"])
    assert "401" not in operation["responses"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("ClientConfig")
