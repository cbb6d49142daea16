"""POST /api/auth/register: {username, email, password, display_name?} → 201 {user: Me, access, refresh}."""

import pytest

from accounts.models import User
from tests.factories import DEFAULT_PASSWORD, ME_FIELDS, UserFactory

URL = "/api/auth/register"


def payload(**overrides):
    return {"username": "carol", "email": "carol@example.com", "password": DEFAULT_PASSWORD, **overrides}


def test_register_creates_the_user_and_answers_me_with_a_token_pair(client, db):
    # when
    r = client.post(URL, payload(display_name="Carol C."), content_type="application/json")
    # then
    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == {"user", "access", "refresh"}
    assert set(body["user"]) == ME_FIELDS
    assert body["user"]["username"] == "carol"
    assert body["user"]["email"] == "carol@example.com"
    assert body["user"]["display_name"] == "Carol C."
    user = User.objects.get(pk=body["user"]["id"])
    assert user.check_password(DEFAULT_PASSWORD)


def test_register_tokens_authenticate_the_new_user(client, db):
    # given
    r = client.post(URL, payload(), content_type="application/json")
    # when
    me = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    # then
    assert me.status_code == 200, me.content
    assert me.json()["username"] == "carol"


def test_register_without_display_name_leaves_it_empty(client, db):
    # when
    r = client.post(URL, payload(), content_type="application/json")
    # then
    assert r.status_code == 201, r.content
    assert r.json()["user"]["display_name"] == ""


def test_register_works_with_a_trailing_slash(client, db):
    # when
    r = client.post(URL + "/", payload(), content_type="application/json")
    # then
    assert r.status_code == 201, r.content


@pytest.mark.parametrize("username", ["abc", "a" * 32, "Dot.ted_name", "user_1", "123"])
def test_register_accepts_usernames_of_3_to_32_letters_digits_underscores_and_dots(client, db, username):
    # when
    r = client.post(URL, payload(username=username), content_type="application/json")
    # then
    assert r.status_code == 201, r.content
    assert r.json()["user"]["username"] == username


@pytest.mark.parametrize(
    "username",
    ["ab", "a" * 33, "with space", "dash-ed", "at@sign", "émile", "emoji😀", "semi;colon", ""],
)
def test_register_refuses_a_username_outside_the_rules(client, db, unchanged, username):
    # when
    with unchanged():
        r = client.post(URL, payload(username=username), content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert "username" in r.json()


def test_register_refuses_a_username_that_differs_only_in_case(client, db, unchanged):
    # given
    UserFactory.create(username="alice")
    # when
    with unchanged():
        r = client.post(URL, payload(username="Alice"), content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert r.json()["username"] == ["A user with that username already exists."]


def test_register_answers_the_same_whether_or_not_the_email_is_taken(
    client, db, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    UserFactory.create(username="alice", email="alice@example.com")
    # when: one registration with alice's address (in another case), one with a free one
    with django_capture_on_commit_callbacks(execute=True):
        taken = client.post(
            URL, payload(username="mallory", email="ALICE@example.com"), content_type="application/json"
        )
        free = client.post(URL, payload(username="carol", email="carol@example.com"), content_type="application/json")
    # then: the same status and the same answer, but for the names and ids
    assert taken.status_code == free.status_code == 201, (taken.content, free.content)

    def shape(body):
        user = body["user"]
        return sorted(body), sorted(user), user["email_verified"], user["pending_email"] == user["email"]

    assert (
        shape(taken.json())
        == shape(free.json())
        == (
            ["access", "refresh", "user"],
            sorted(ME_FIELDS),
            False,
            True,
        )
    )
    # and: alice keeps her address; its owner is told, the free address gets a code
    assert User.objects.get(username="alice").email == "alice@example.com"
    assert User.objects.get(username="mallory").email is None
    assert [m.to for m in mailoutbox] == [["ALICE@example.com"], ["carol@example.com"]]
    assert "already belongs to your account" in mailoutbox[0].body
    assert "enter this code" in mailoutbox[1].body


def test_a_registered_email_is_confirmed_by_the_mailed_code(client, db, mailoutbox, django_capture_on_commit_callbacks):
    # given
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(URL, payload(), content_type="application/json")
    code = mailoutbox[0].body.split("\n\n")[1].strip()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {r.json()['access']}"}
    # when
    confirmed = client.post("/api/auth/email/confirm", {"code": code}, content_type="application/json", **auth)
    # then
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["email"] == "carol@example.com"
    assert confirmed.json()["email_verified"] is True
    assert confirmed.json()["pending_email"] is None
    login = client.post(
        "/api/auth/login",
        {"username": "carol@example.com", "password": DEFAULT_PASSWORD},
        content_type="application/json",
    )
    assert login.status_code == 200, login.content


def test_an_unconfirmed_email_is_no_login_name(client, db):
    # given
    client.post(URL, payload(), content_type="application/json")
    # when
    r = client.post(
        "/api/auth/login",
        {"username": "carol@example.com", "password": DEFAULT_PASSWORD},
        content_type="application/json",
    )
    # then
    assert r.status_code == 401, r.content


def test_a_wrong_confirmation_code_is_refused(api_client, user):
    # when
    r = api_client.post("/api/auth/email/confirm", {"code": "forged"}, format="json")
    # then
    assert r.status_code == 400, r.content
    assert list(r.json()) == ["code"]


@pytest.mark.parametrize("email", ["not-an-email", "", "a@", "@example.com"])
def test_register_refuses_an_invalid_email(client, db, unchanged, email):
    # when
    with unchanged():
        r = client.post(URL, payload(email=email), content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert "email" in r.json()


@pytest.mark.parametrize(
    "password",
    ["short1!", "password", "12345678901", "carol@example.com"],
    ids=["too-short", "too-common", "all-digits", "same-as-the-email"],
)
def test_register_refuses_a_password_that_fails_the_validators_naming_the_field(client, db, unchanged, password):
    # when
    with unchanged():
        r = client.post(URL, payload(password=password), content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert r.json()["password"], r.content


@pytest.mark.parametrize("missing", ["username", "email", "password"])
def test_register_refuses_a_missing_required_field(client, db, unchanged, missing):
    # given
    body = payload()
    del body[missing]
    # when
    with unchanged():
        r = client.post(URL, body, content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert r.json()[missing] == ["This field is required."]


def test_register_refuses_a_display_name_over_64_characters(client, db, unchanged):
    # when
    with unchanged():
        r = client.post(URL, payload(display_name="x" * 65), content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert "display_name" in r.json()


def test_register_ignores_unknown_fields_such_as_is_staff(client, db):
    # when
    r = client.post(URL, payload(is_staff=True, is_superuser=True, id=999), content_type="application/json")
    # then
    assert r.status_code == 201, r.content
    user = User.objects.get(username="carol")
    assert not user.is_staff
    assert not user.is_superuser


def test_register_trims_the_username_and_display_name(client, db):
    # when
    r = client.post(URL, payload(username="  carol ", display_name="  Carol  "), content_type="application/json")
    # then
    assert r.status_code == 201, r.content
    assert r.json()["user"]["username"] == "carol"
    assert r.json()["user"]["display_name"] == "Carol"


def test_register_refuses_a_body_that_is_not_json(client, db, unchanged):
    # when
    with unchanged():
        r = client.post(URL, "{not json", content_type="application/json")
    # then
    assert r.status_code == 400, r.content


def test_register_refuses_a_display_name_with_a_bidi_override(client, db, unchanged):
    # when
    with unchanged():
        r = client.post(URL, payload(display_name="\u202eeciffo"), content_type="application/json")
    # then
    assert r.status_code == 400, r.content
    assert list(r.json()) == ["display_name"]
