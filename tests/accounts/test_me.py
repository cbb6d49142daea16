"""GET / PATCH /api/auth/me: Me = PublicUser + {email, date_joined}."""

import pytest
from rest_framework.throttling import ScopedRateThrottle

from tests.factories import DEFAULT_PASSWORD, ME_FIELDS, UserFactory

URL = "/api/auth/me"


def test_me_answers_the_callers_own_profile_with_email(api_client, user):
    # when
    r = api_client.get(URL)
    # then
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == ME_FIELDS
    assert body["id"] == user.id
    assert body["email"] == user.email


def test_me_works_with_a_trailing_slash(api_client):
    # when
    r = api_client.get(URL + "/")
    # then
    assert r.status_code == 200, r.content


def test_patch_me_changes_the_display_name(api_client, user):
    # when
    r = api_client.patch(URL, {"display_name": "  Alice Liddell "}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert r.json()["display_name"] == "Alice Liddell"
    user.refresh_from_db()
    assert user.display_name == "Alice Liddell"


def test_an_account_whose_address_waits_for_its_code_changes_its_display_name(api_client, user):
    # given an account registered with an address not confirmed yet (it has no `email` until then)
    type(user).objects.filter(pk=user.pk).update(email=None, pending_email="new@example.com")
    # when
    r = api_client.patch(URL, {"display_name": "Alice Liddell"}, format="json")
    # then
    assert r.status_code == 200, r.content
    user.refresh_from_db()
    assert user.display_name == "Alice Liddell"


def test_patch_me_may_clear_the_display_name(api_client, user):
    # when
    r = api_client.patch(URL, {"display_name": ""}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert r.json()["display_name"] == ""


def test_patch_me_asks_for_a_new_email_which_a_mailed_code_confirms(
    api_client, user, mailoutbox, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        r = api_client.patch(URL, {"email": "new@example.com", "password": DEFAULT_PASSWORD}, format="json")
    # then: the old address stays the account's until the new one is confirmed
    assert r.status_code == 200, r.content
    assert (r.json()["email"], r.json()["pending_email"]) == (user.email, "new@example.com")
    code = mailoutbox[-1].body.split("\n\n")[1].strip()
    confirmed = api_client.post("/api/auth/email/confirm", {"code": code}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    user.refresh_from_db()
    assert (user.email, user.pending_email) == ("new@example.com", "")


@pytest.mark.parametrize("password", [None, "", "not-my-password"], ids=["missing", "blank", "wrong"])
def test_patch_me_refuses_a_new_email_without_the_password(api_client, user, unchanged, password):
    # given
    body = {"email": "new@example.com"} if password is None else {"email": "new@example.com", "password": password}
    # when
    with unchanged():
        r = api_client.patch(URL, body, format="json")
    # then
    assert r.status_code == 400, r.content
    assert r.json()["password"]


def test_patch_me_keeps_the_own_email_in_another_case(api_client, user):
    # when
    r = api_client.patch(URL, {"email": user.email.upper(), "password": DEFAULT_PASSWORD}, format="json")
    # then
    assert r.status_code == 200, r.content


def test_patch_me_answers_the_same_for_an_email_another_user_has(
    api_client, user, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    UserFactory.create(username="carol", email="carol@example.com")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        r = api_client.patch(URL, {"email": "CAROL@example.com", "password": DEFAULT_PASSWORD}, format="json")
    # then: pending, as any address; carol is told, and keeps it
    assert r.status_code == 200, r.content
    assert r.json()["pending_email"] == "CAROL@example.com"
    assert "already belongs to your account" in mailoutbox[-1].body
    assert UserFactory._meta.model.objects.get(username="carol").email == "carol@example.com"


@pytest.mark.parametrize(
    "body, field",
    [({"email": "not-an-email"}, "email"), ({"display_name": "x" * 65}, "display_name"), ({"email": None}, "email")],
    ids=["bad-email", "long-name", "null-email"],
)
def test_patch_me_refuses_invalid_fields(api_client, user, unchanged, body, field):
    # when
    with unchanged():
        r = api_client.patch(URL, body, format="json")
    # then
    assert r.status_code == 400, r.content
    assert field in r.json()


def test_patch_me_ignores_fields_it_does_not_change(api_client, user):
    # when
    r = api_client.patch(URL, {"username": "mallory", "is_staff": True, "id": 999}, format="json")
    # then
    assert r.status_code == 200, r.content
    user.refresh_from_db()
    assert user.username == "alice"
    assert not user.is_staff
    assert r.json()["id"] == user.id


def test_put_on_me_is_not_allowed(api_client):
    # when
    r = api_client.put(URL, {"display_name": "x"}, format="json")
    # then
    assert r.status_code == 405, r.content


def test_patch_me_refuses_an_email_change_without_the_password(api_client, user, unchanged):
    # when
    with unchanged():
        r = api_client.patch(URL, {"email": "new@example.com"}, format="json")
    # then
    assert r.status_code == 400, r.content
    assert list(r.json()) == ["password"]


def test_patch_me_refuses_an_email_change_with_a_wrong_password(api_client, user, unchanged):
    # when
    with unchanged():
        r = api_client.patch(URL, {"email": "new@example.com", "password": "Not-the-password-1"}, format="json")
    # then
    assert r.status_code == 400, r.content
    assert r.json() == {"password": ["The password is not correct."]}


def test_patch_me_changes_the_display_name_without_a_password(api_client, user):
    # when
    r = api_client.patch(URL, {"display_name": "Al"}, format="json")
    # then
    assert r.status_code == 200, r.content


def test_email_changes_are_rate_limited_per_user(api_client, user, monkeypatch):
    # given
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"email": "2/hour"})
    for n in range(2):
        api_client.patch(URL, {"email": f"new{n}@example.com", "password": DEFAULT_PASSWORD}, format="json")
    # when
    r = api_client.patch(URL, {"email": "new9@example.com", "password": DEFAULT_PASSWORD}, format="json")
    # then
    assert r.status_code == 429, r.content
    assert int(r["Retry-After"]) > 0
    assert api_client.patch(URL, {"display_name": "Still free"}, format="json").status_code == 200


def test_wrong_passwords_on_an_email_change_count_as_failed_logins(api_client, client, user, settings):
    # given: a stolen access token guessing the password through PATCH
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    for _ in range(2):
        api_client.patch(URL, {"email": "new@example.com", "password": "Guess-number-1"}, format="json")
    # when: the account's logins
    r = client.post(
        "/api/auth/login", {"username": "alice", "password": DEFAULT_PASSWORD}, content_type="application/json"
    )
    # then
    assert r.status_code == 429, r.content


@pytest.mark.parametrize(
    "control", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
)
def test_a_display_name_may_not_carry_bidi_controls(api_client, user, unchanged, control):
    # when
    with unchanged():
        r = api_client.patch(URL, {"display_name": f"{control}nimda"}, format="json")
    # then
    assert r.status_code == 400, r.content
    assert list(r.json()) == ["display_name"]


def test_a_right_to_left_display_name_is_fine(api_client, user):
    # when
    r = api_client.patch(URL, {"display_name": "سارا"}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert r.json()["display_name"] == "سارا"
