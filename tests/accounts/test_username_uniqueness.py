"""Usernames and emails are unique ignoring case, enforced by the database itself: a Lower() unique
index on SQLite, the columns' case-insensitive collation (utf8mb4_unicode_ci) on MariaDB."""

import os

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.models import User
from tests.factories import DEFAULT_PASSWORD, UserFactory

needs_mysql = pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="needs MariaDB/MySQL (DATABASE_URL)")


def test_the_database_refuses_a_username_differing_only_in_case(db):
    # given
    User.objects.create(username="alice", email="alice@example.com")
    # when / then: bypassing the service's check, the index still decides
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="ALICE", email="other@example.com")


def test_the_database_refuses_an_email_differing_only_in_case(db):
    # given
    User.objects.create(username="alice", email="alice@example.com")
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="alice2", email="ALICE@example.com")


def test_register_alice_then_Alice_answers_400(client, db):
    # given
    body = {"username": "alice", "email": "a@example.com", "password": DEFAULT_PASSWORD}
    assert client.post("/api/auth/register", body, content_type="application/json").status_code == 201
    # when
    r = client.post(
        "/api/auth/register", {**body, "username": "Alice", "email": "b@example.com"}, content_type="application/json"
    )
    # then
    assert r.status_code == 400, r.content
    assert User.objects.filter(username__iexact="alice").count() == 1


def test_a_mixed_case_username_logs_in_in_any_case(client, db):
    # given
    UserFactory.create(username="MixedCase")
    # when
    r = client.post(
        "/api/auth/login", {"username": "mixedcase", "password": DEFAULT_PASSWORD}, content_type="application/json"
    )
    # then
    assert r.status_code == 200, r.content
    assert r.json()["user"]["username"] == "MixedCase"


def test_usernames_with_like_wildcards_do_not_match_others(client, db):
    # given: "_" is a LIKE wildcard; an iexact lookup must escape it
    UserFactory.create(username="a_b")
    # when
    r = client.post(
        "/api/auth/register",
        {"username": "axb", "email": "axb@example.com", "password": DEFAULT_PASSWORD},
        content_type="application/json",
    )
    # then
    assert r.status_code == 201, r.content


@pytest.mark.mysql
@needs_mysql
def test_mysql_username_and_email_columns_compare_case_insensitively(db):
    # when
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'accounts_user' AND COLUMN_NAME IN ('username', 'email')"
        )
        collations = dict(cursor.fetchall())
    # then
    assert set(collations) == {"username", "email"}
    assert all(name.startswith("utf8mb4_") and name.endswith("_ci") for name in collations.values()), collations


@pytest.mark.mysql
@needs_mysql
def test_mysql_finds_a_user_by_username_in_another_case(db):
    # given
    UserFactory.create(username="Alice")
    # then
    assert User.objects.get_by_natural_key("aLiCe").username == "Alice"
