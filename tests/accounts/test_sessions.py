"""Ending a user's sessions: changing the password, logging out everywhere, a deactivation or an
admin's new password. Every token issued before (refresh and access) stops working: 401."""

import pytest
from django.test import Client
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import User
from tests.factories import DEFAULT_PASSWORD, UserFactory

NEW_PASSWORD = "Another-Horse-43"


@pytest.fixture
def alice(db):
    return UserFactory.create(username="alice")


def login(client: Client) -> dict[str, str]:
    r = client.post(
        "/api/auth/login", {"username": "alice", "password": DEFAULT_PASSWORD}, content_type="application/json"
    )
    assert r.status_code == 200, r.content
    return r.json()


def post(client: Client, path: str, access: str, body: dict[str, str] | None = None):
    return client.post(path, body or {}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {access}")


def refresh(client: Client, token: str):
    return client.post("/api/auth/refresh", {"refresh": token}, content_type="application/json")


def me(client: Client, access: str):
    return client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {access}")


def change_password(client: Client, access: str, old: str = DEFAULT_PASSWORD, new: str = NEW_PASSWORD):
    return post(client, "/api/auth/password", access, {"old_password": old, "new_password": new})


# Password change ---------------------------------------------------------------------------


def test_a_password_change_answers_a_working_pair_of_the_new_session(client, alice):
    # given
    pair = login(client)
    # when
    r = change_password(client, pair["access"])
    # then
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"access", "refresh"}
    assert me(client, body["access"]).status_code == 200
    assert refresh(client, body["refresh"]).status_code == 200
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


def test_after_a_password_change_the_old_tokens_are_401(client, alice):
    # given: two devices signed in
    phone, laptop = login(client), login(client)
    # when
    r = change_password(client, phone["access"])
    # then
    assert r.status_code == 200, r.content
    for pair in (phone, laptop):
        assert me(client, pair["access"]).status_code == 401
        assert refresh(client, pair["refresh"]).status_code == 401


def test_a_password_change_blacklists_every_outstanding_refresh_token(client, alice):
    # given
    login(client), login(client)
    pair = login(client)
    # when
    change_password(client, pair["access"])
    # then: all but the new session's
    outstanding = OutstandingToken.objects.filter(user=alice)
    assert outstanding.count() == 4
    assert BlacklistedToken.objects.filter(token__user=alice).count() == 3


def test_a_wrong_old_password_is_400_and_changes_nothing(client, alice):
    # given
    pair = login(client)
    # when
    r = change_password(client, pair["access"], old="not-my-password")
    # then
    assert r.status_code == 400, r.content
    assert "old_password" in r.json()
    assert me(client, pair["access"]).status_code == 200
    alice.refresh_from_db()
    assert alice.check_password(DEFAULT_PASSWORD)


@pytest.mark.parametrize("weak", ["short", "12345678901", "password"])
def test_a_new_password_the_validators_refuse_is_400_on_its_field(client, alice, weak):
    # given
    pair = login(client)
    # when
    r = change_password(client, pair["access"], new=weak)
    # then
    assert r.status_code == 400, r.content
    assert r.json()["new_password"]
    assert me(client, pair["access"]).status_code == 200


def test_wrong_old_passwords_count_as_failed_logins_of_the_account(client, alice, settings):
    # given: a limit of two failures, both spent through the password change
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    pair = login(client)
    assert change_password(client, pair["access"], old="not-my-password").status_code == 400
    assert change_password(client, pair["access"], old="still-not-it").status_code == 400
    # when: the right old password, and a login
    r = change_password(client, pair["access"])
    # then: both refused for the account until the window ends; nothing changed
    assert r.status_code == 429, r.content
    assert "Retry-After" in r
    refused = client.post(
        "/api/auth/login", {"username": "alice", "password": DEFAULT_PASSWORD}, content_type="application/json"
    )
    assert refused.status_code == 429, refused.content
    alice.refresh_from_db()
    assert alice.check_password(DEFAULT_PASSWORD)


def test_a_password_change_needs_both_fields(client, alice):
    # given
    pair = login(client)
    # when
    r = post(client, "/api/auth/password", pair["access"], {"old_password": DEFAULT_PASSWORD})
    # then
    assert r.status_code == 400, r.content
    assert "new_password" in r.json()


def test_a_password_change_needs_a_token(client, alice):
    # when
    r = client.post(
        "/api/auth/password",
        {"old_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        content_type="application/json",
    )
    # then
    assert r.status_code == 401, r.content


def test_password_changes_are_throttled_like_the_login(client, alice, monkeypatch):
    # given
    from rest_framework.throttling import ScopedRateThrottle

    pair = login(client)
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "2/min"})
    # when
    answers = [change_password(client, pair["access"], old="wrong").status_code for _ in range(3)]
    # then
    assert answers == [400, 400, 429]


# Logging out everywhere -----------------------------------------------------------------------


def test_logout_all_is_205_and_every_token_is_401_after(client, alice):
    # given
    phone, laptop = login(client), login(client)
    # when
    r = post(client, "/api/auth/logout-all", phone["access"])
    # then
    assert r.status_code == 205, r.content
    for pair in (phone, laptop):
        assert me(client, pair["access"]).status_code == 401
        assert refresh(client, pair["refresh"]).status_code == 401
    assert BlacklistedToken.objects.filter(token__user=alice).count() == 2


def test_logout_all_needs_a_token(client, alice):
    # when
    r = client.post("/api/auth/logout-all", content_type="application/json")
    # then
    assert r.status_code == 401, r.content


def test_a_new_login_after_logout_all_works(client, alice):
    # given
    post(client, "/api/auth/logout-all", login(client)["access"])
    # when
    pair = login(client)
    # then
    assert me(client, pair["access"]).status_code == 200
    assert refresh(client, pair["refresh"]).status_code == 200


# The generation claim ---------------------------------------------------------------------------


def test_a_refresh_token_of_an_older_generation_is_401_though_not_blacklisted(client, alice):
    # given: the generation moved on without the blacklist knowing (another process, a race)
    pair = login(client)
    User.objects.filter(pk=alice.pk).update(session_generation=1)
    # when
    r = refresh(client, pair["refresh"])
    # then
    assert r.status_code == 401, r.content


def test_an_access_token_of_an_older_generation_is_401(client, alice):
    # given
    pair = login(client)
    User.objects.filter(pk=alice.pk).update(session_generation=1)
    # when
    r = me(client, pair["access"])
    # then
    assert r.status_code == 401, r.content


def test_the_grace_period_answers_no_successor_of_an_ended_session(client, alice):
    # given: a refresh whose answer was lost, then the sessions end
    pair = login(client)
    assert refresh(client, pair["refresh"]).status_code == 200
    post(client, "/api/auth/logout-all", pair["access"])
    # when: the lost answer is asked again within the grace period
    r = refresh(client, pair["refresh"])
    # then
    assert r.status_code == 401, r.content


def test_tokens_carry_the_generation_and_refresh_keeps_it(client, alice):
    from rest_framework_simplejwt.tokens import AccessToken

    # given
    User.objects.filter(pk=alice.pk).update(session_generation=3)
    pair = login(client)
    # when
    renewed = refresh(client, pair["refresh"]).json()
    # then
    assert AccessToken(pair["access"])["generation"] == 3  # type: ignore[arg-type]
    assert AccessToken(renewed["access"])["generation"] == 3


# Deactivation and the admin -----------------------------------------------------------------


def test_a_deactivation_ends_the_sessions(client, alice):
    # given
    pair = login(client)
    # when
    alice.is_active = False
    alice.save()
    # then
    alice.refresh_from_db()
    assert alice.session_generation == 1
    assert refresh(client, pair["refresh"]).status_code == 401
    # and reactivating brings no old token back
    alice.is_active = True
    alice.save()
    assert me(client, pair["access"]).status_code == 401


def test_the_admin_s_password_form_ends_the_sessions(client, alice):
    # given
    pair = login(client)
    admin = UserFactory.create(is_staff=True, is_superuser=True)
    client.force_login(admin)
    # when
    r = client.post(
        f"/admin/accounts/user/{alice.pk}/password/",
        {"password1": "Reset-By-Admin-44", "password2": "Reset-By-Admin-44", "usable_password": "true"},
    )
    # then
    assert r.status_code == 302, r.content
    assert me(Client(), pair["access"]).status_code == 401


def test_the_admin_s_deactivation_ends_the_sessions(client, alice):
    # given
    pair = login(client)
    admin = UserFactory.create(is_staff=True, is_superuser=True)
    client.force_login(admin)
    form = {
        "username": alice.username,
        "email": alice.email,
        "display_name": alice.display_name,
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    # when: is_active left out = unticked
    r = client.post(f"/admin/accounts/user/{alice.pk}/change/", form)
    # then
    assert r.status_code == 302, r.content
    alice.refresh_from_db()
    assert not alice.is_active
    assert refresh(Client(), pair["refresh"]).status_code == 401


def test_saving_a_user_without_a_change_of_password_or_activity_ends_nothing(client, alice):
    # given
    pair = login(client)
    # when
    alice.display_name = "Alice"
    alice.save()
    # then
    alice.refresh_from_db()
    assert alice.session_generation == 0
    assert me(client, pair["access"]).status_code == 200


# The schema -------------------------------------------------------------------------------------


def test_the_schema_documents_both_endpoints_with_their_statuses(client, db):
    # when
    schema = client.get("/api/schema/", {"format": "json"}).json()
    # then
    password = schema["paths"]["/api/auth/password"]["post"]
    assert {"200", "400", "401", "429"} <= set(password["responses"])
    assert "old_password" in password["description"]
    logout_all = schema["paths"]["/api/auth/logout-all"]["post"]
    assert {"205", "401"} <= set(logout_all["responses"])
