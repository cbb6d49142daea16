"""GET / PATCH /api/auth/me: Me = PublicUser + {email, date_joined}."""

import pytest

from tests.factories import DEFAULT_PASSWORD, UserFactory

URL = "/api/auth/me"


def test_me_answers_the_callers_own_profile_with_email(api_client, user):
    # when
    r = api_client.get(URL)
    # then
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"id", "username", "display_name", "is_online", "last_seen", "email", "date_joined"}
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


def test_patch_me_may_clear_the_display_name(api_client, user):
    # when
    r = api_client.patch(URL, {"display_name": ""}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert r.json()["display_name"] == ""


def test_patch_me_changes_the_email(api_client, user):
    # when
    r = api_client.patch(URL, {"email": "new@example.com", "password": DEFAULT_PASSWORD}, format="json")
    # then
    assert r.status_code == 200, r.content
    assert r.json()["email"] == "new@example.com"
    user.refresh_from_db()
    assert user.email == "new@example.com"


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
    r = api_client.patch(URL, {"email": user.email.upper()}, format="json")
    # then
    assert r.status_code == 200, r.content


def test_patch_me_refuses_an_email_another_user_has_ignoring_case(api_client, user, unchanged):
    # given
    UserFactory.create(username="carol", email="carol@example.com")
    # when
    with unchanged():
        r = api_client.patch(URL, {"email": "CAROL@example.com", "password": DEFAULT_PASSWORD}, format="json")
    # then
    assert r.status_code == 400, r.content
    assert r.json()["email"] == ["A user with that email already exists."]


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
