"""Refresh rotation (with a grace period for a lost answer), logout, and what a missing, invalid
or expired access token gets (401)."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts import rotation
from tests.concurrency import run_together
from tests.factories import DEFAULT_PASSWORD, UserFactory


@pytest.fixture
def alice(db):
    return UserFactory.create(username="alice")


@pytest.fixture
def pair(client, alice):
    r = client.post(
        "/api/auth/login", {"username": "alice", "password": DEFAULT_PASSWORD}, content_type="application/json"
    )
    assert r.status_code == 200, r.content
    return r.json()


def refresh(client, token):
    return client.post("/api/auth/refresh", {"refresh": token}, content_type="application/json")


def logout(client, token):
    return client.post("/api/auth/logout", {"refresh": token}, content_type="application/json")


# Refresh ---------------------------------------------------------------------------------


def test_refresh_answers_a_new_access_and_refresh_token(client, pair):
    # when
    r = refresh(client, pair["refresh"])
    # then
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != pair["refresh"]
    me = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200, me.content


@pytest.fixture
def later(monkeypatch):
    """Move the clock that ends the grace period forward by some seconds."""

    def move(seconds: float) -> None:
        now = time.time() + seconds
        monkeypatch.setattr(rotation, "_now", lambda: now)

    return move


def test_refresh_rotates_so_the_old_refresh_token_stops_working_after_the_grace_period(client, pair, settings, later):
    # given
    assert refresh(client, pair["refresh"]).status_code == 200
    later(settings.REFRESH_GRACE_SECONDS + 1)
    # when
    again = refresh(client, pair["refresh"])
    # then
    assert again.status_code == 401, again.content


def test_a_refresh_whose_answer_was_lost_is_answered_again_within_the_grace_period(client, pair):
    # given: the answer of the first refresh never reached the client
    lost = refresh(client, pair["refresh"]).json()
    # when: it tries again with the token it has
    r = refresh(client, pair["refresh"])
    # then: the same successor, and a working access token
    assert r.status_code == 200, r.content
    assert r.json()["refresh"] == lost["refresh"]
    me = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert me.status_code == 200, me.content
    assert refresh(client, r.json()["refresh"]).status_code == 200


def test_an_old_token_used_many_times_within_the_grace_period_never_starts_a_second_chain(client, pair):
    # when
    answers = [refresh(client, pair["refresh"]) for _ in range(3)]
    # then: one successor for all
    assert all(r.status_code == 200 for r in answers), [r.content for r in answers]
    assert len({r.json()["refresh"] for r in answers}) == 1


def test_once_the_successor_is_used_the_old_token_is_refused_even_within_the_grace_period(client, pair):
    # given: the client had the successor, and used it
    successor = refresh(client, pair["refresh"]).json()["refresh"]
    assert refresh(client, successor).status_code == 200
    # when
    r = refresh(client, pair["refresh"])
    # then
    assert r.status_code == 401, r.content


def test_after_logout_with_the_successor_the_old_token_is_refused_within_the_grace_period(client, pair):
    # given
    successor = refresh(client, pair["refresh"]).json()["refresh"]
    assert logout(client, successor).status_code == 205
    # when
    r = refresh(client, pair["refresh"])
    # then
    assert r.status_code == 401, r.content


def test_logout_with_a_token_rotated_within_the_grace_period_ends_its_successor_too(client, pair):
    # given: the client lost the successor and logs out with the token it has
    successor = refresh(client, pair["refresh"]).json()["refresh"]
    # when
    out = logout(client, pair["refresh"])
    # then
    assert out.status_code == 205, out.content
    assert refresh(client, successor).status_code == 401
    assert refresh(client, pair["refresh"]).status_code == 401


def test_a_grace_period_of_zero_refuses_the_old_token_at_once(client, pair, settings):
    # given
    settings.REFRESH_GRACE_SECONDS = 0
    assert refresh(client, pair["refresh"]).status_code == 200
    # when
    r = refresh(client, pair["refresh"])
    # then
    assert r.status_code == 401, r.content


def test_the_rotated_refresh_token_works_once_in_turn(client, pair):
    # given
    second = refresh(client, pair["refresh"]).json()["refresh"]
    # when
    r = refresh(client, second)
    # then
    assert r.status_code == 200, r.content


@pytest.mark.parametrize("token", ["garbage", ""], ids=["garbage", "empty"])
def test_refresh_with_a_bad_token_is_refused(client, db, token):
    # when
    r = refresh(client, token)
    # then
    assert r.status_code in {400, 401}, r.content
    assert r.status_code == (400 if token == "" else 401)


def test_refresh_with_an_access_token_answers_401(client, pair):
    # when
    r = refresh(client, pair["access"])
    # then
    assert r.status_code == 401, r.content


def test_refresh_with_an_expired_refresh_token_answers_401(client, alice):
    # given
    token = RefreshToken.for_user(alice)
    token.set_exp(lifetime=-timedelta(seconds=1))
    # when
    r = refresh(client, str(token))
    # then
    assert r.status_code == 401, r.content


# Logout ----------------------------------------------------------------------------------


def test_logout_answers_205_and_the_refresh_token_stops_working(client, pair):
    # when
    r = logout(client, pair["refresh"])
    # then
    assert r.status_code == 205, r.content
    assert refresh(client, pair["refresh"]).status_code == 401


def test_logout_twice_with_the_same_token_answers_400(client, pair, unchanged):
    # given
    logout(client, pair["refresh"])
    # when
    with unchanged():
        r = logout(client, pair["refresh"])
    # then
    assert r.status_code == 400, r.content
    assert "refresh" in r.json()


@pytest.mark.parametrize("body", [{"refresh": "garbage"}, {}], ids=["garbage", "missing"])
def test_logout_with_a_bad_or_missing_token_answers_400(client, db, unchanged, body):
    # when
    with unchanged():
        r = client.post("/api/auth/logout", body, content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert "refresh" in r.json()


def test_logout_with_an_access_token_answers_400(client, pair, unchanged):
    # when
    with unchanged():
        r = logout(client, pair["access"])
    # then
    assert r.status_code == 400, r.content


def test_logout_leaves_other_sessions_working(client, alice, pair):
    # given
    other = client.post(
        "/api/auth/login", {"username": "alice", "password": DEFAULT_PASSWORD}, content_type="application/json"
    ).json()
    # when
    logout(client, pair["refresh"])
    # then
    assert refresh(client, other["refresh"]).status_code == 200


# Access tokens ---------------------------------------------------------------------------


def test_a_request_without_a_token_answers_401(client, db):
    # when
    r = client.get("/api/auth/me")
    # then
    assert r.status_code == 401, r.content
    assert r["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer garbage", "Bearer ", "Basic YWxpY2U6cGFzcw==", "Token abc"],
    ids=["garbage", "empty", "basic", "other-scheme"],
)
def test_a_request_with_an_invalid_authorization_header_answers_401(client, db, header):
    # when
    r = client.get("/api/auth/me", HTTP_AUTHORIZATION=header)
    # then
    assert r.status_code == 401, r.content


def test_an_expired_access_token_answers_401(client, alice):
    # given
    token = AccessToken.for_user(alice)
    token.set_exp(lifetime=-timedelta(seconds=1))
    # when
    r = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    # then
    assert r.status_code == 401, r.content


def test_an_access_token_signed_with_another_key_answers_401(client, alice, settings):
    # given
    forged = AccessToken.for_user(alice)
    from rest_framework_simplejwt.backends import TokenBackend

    body = dict(forged.payload)
    token = TokenBackend("HS256", signing_key="not-the-server-key-" + "x" * 32).encode(body)
    # when
    r = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    # then
    assert r.status_code == 401, r.content


def test_a_refresh_token_used_as_an_access_token_answers_401(client, pair):
    # when
    r = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {pair['refresh']}")
    # then
    assert r.status_code == 401, r.content


def test_the_token_of_a_deactivated_user_answers_401(client, alice):
    # given
    token = AccessToken.for_user(alice)
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    # when
    r = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    # then
    assert r.status_code == 401, r.content


def test_the_token_of_a_deleted_user_answers_401(client, alice):
    # given
    token = AccessToken.for_user(alice)
    alice.delete()
    # when
    r = client.get("/api/chats", HTTP_AUTHORIZATION=f"Bearer {token}")
    # then
    assert r.status_code == 401, r.content


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/auth/me"),
        ("patch", "/api/auth/me"),
        ("get", "/api/users/search?q=a"),
        ("get", "/api/users/1"),
        ("get", "/api/chats"),
        ("post", "/api/chats"),
        ("get", "/api/chats/1"),
        ("patch", "/api/chats/1"),
        ("post", "/api/chats/1/members"),
        ("delete", "/api/chats/1/members/1"),
        ("patch", "/api/chats/1/members/1"),
        ("get", "/api/chats/1/messages"),
        ("post", "/api/chats/1/messages"),
        ("patch", "/api/chats/1/messages/1"),
        ("delete", "/api/chats/1/messages/1"),
        ("post", "/api/chats/1/read"),
    ],
)
def test_every_api_endpoint_but_auth_needs_a_token(client, db, method, path):
    # when
    r = getattr(client, method)(path, {}, content_type="application/json")
    # then
    assert r.status_code == 401, r.content


def test_refresh_for_a_deactivated_user_answers_401(client, alice, pair):
    # given
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    # when
    r = refresh(client, pair["refresh"])
    # then
    assert r.status_code == 401, r.content


def test_refresh_for_a_deleted_user_answers_401(client, alice, pair):
    # given
    alice.delete()
    # when
    r = refresh(client, pair["refresh"])
    # then
    assert r.status_code == 401, r.content


def test_logout_for_a_deleted_user_still_answers_205(client, alice, pair):
    # given
    alice.delete()
    # when
    r = logout(client, pair["refresh"])
    # then
    assert r.status_code == 205, r.content


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_with_one_token_at_the_same_moment_get_one_successor(client):
    # given: two tabs of one session refresh together
    UserFactory.create(username="bob")
    login = client.post(
        "/api/auth/login", {"username": "bob", "password": DEFAULT_PASSWORD}, content_type="application/json"
    ).json()
    # when
    answers = run_together(4, lambda _: refresh(Client(), login["refresh"]))
    # then: all answered, with one successor between them (no second chain)
    assert [r.status_code for r in answers] == [200] * 4, [r.content for r in answers]
    assert len({r.json()["refresh"] for r in answers}) == 1
