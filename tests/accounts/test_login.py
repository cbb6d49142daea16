"""POST /api/auth/login: {username, password} (username or email) → 200 {user: Me, access, refresh}."""

import pytest
from rest_framework.throttling import ScopedRateThrottle

from tests.factories import DEFAULT_PASSWORD, UserFactory

URL = "/api/auth/login"


@pytest.fixture
def alice(db):
    return UserFactory.create(username="alice", email="alice@example.com")


def test_login_by_username_answers_me_and_a_token_pair(client, alice):
    # when
    r = client.post(URL, {"username": "alice", "password": DEFAULT_PASSWORD}, content_type="application/json")
    # then
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"user", "access", "refresh"}
    assert body["user"]["id"] == alice.id
    assert body["user"]["email"] == "alice@example.com"


def test_login_by_email_works(client, alice):
    # when
    r = client.post(
        URL, {"username": "alice@example.com", "password": DEFAULT_PASSWORD}, content_type="application/json"
    )
    # then
    assert r.status_code == 200, r.content
    assert r.json()["user"]["id"] == alice.id


def test_login_ignores_the_case_of_username_and_email(client, alice):
    # when
    by_name = client.post(URL, {"username": "ALICE", "password": DEFAULT_PASSWORD}, content_type="application/json")
    by_email = client.post(
        URL, {"username": "Alice@Example.COM", "password": DEFAULT_PASSWORD}, content_type="application/json"
    )
    # then
    assert by_name.status_code == 200, by_name.content
    assert by_email.status_code == 200, by_email.content


def test_login_token_authenticates_the_user(client, alice):
    # given
    r = client.post(URL, {"username": "alice", "password": DEFAULT_PASSWORD}, content_type="application/json")
    # when
    me = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    # then
    assert me.status_code == 200, me.content
    assert me.json()["id"] == alice.id


def test_login_records_last_login(client, alice):
    # when
    client.post(URL, {"username": "alice", "password": DEFAULT_PASSWORD}, content_type="application/json")
    # then
    alice.refresh_from_db()
    assert alice.last_login is not None


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "alice", "password": "Wrong-password-1"},
        {"username": "alice@example.com", "password": "Wrong-password-1"},
        {"username": "nobody", "password": DEFAULT_PASSWORD},
        {"username": "nobody@example.com", "password": DEFAULT_PASSWORD},
    ],
    ids=["wrong-password", "wrong-password-by-email", "unknown-username", "unknown-email"],
)
def test_login_with_bad_credentials_answers_401(client, alice, unchanged, credentials):
    # when
    with unchanged():
        r = client.post(URL, credentials, content_type="application/json")
    # then
    assert r.status_code == 401, r.content
    assert "detail" in r.json()


def test_login_of_a_deactivated_user_answers_401(client, alice):
    # given
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    # when
    r = client.post(URL, {"username": "alice", "password": DEFAULT_PASSWORD}, content_type="application/json")
    # then
    assert r.status_code == 401, r.content


@pytest.mark.parametrize("missing", ["username", "password"])
def test_login_without_a_field_answers_400(client, alice, missing):
    # given
    body = {"username": "alice", "password": DEFAULT_PASSWORD}
    del body[missing]
    # when
    r = client.post(URL, body, content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert r.json()[missing] == ["This field is required."]


def test_login_ignores_a_stale_access_token_in_the_header(client, alice):
    # when
    r = client.post(
        URL,
        {"username": "alice", "password": DEFAULT_PASSWORD},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer not-a-token",
    )
    # then
    assert r.status_code == 200, r.content


def test_login_is_rate_limited_with_retry_after(client, alice, monkeypatch):
    # given: DRF reads the rates once, into the throttle class
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "2/min"})
    body = {"username": "alice", "password": "Wrong-password-1"}
    for _ in range(2):
        client.post(URL, body, content_type="application/json")
    # when
    r = client.post(URL, body, content_type="application/json")
    # then
    assert r.status_code == 429, r.content
    assert int(r["Retry-After"]) > 0
