"""Two people registering the same name at the same moment: the unique index decides, the loser gets
a 400 naming the field (never a 500). On MariaDB and on SQLite (see tests/chats/test_concurrency.py)."""

import pytest
from django.test import Client

from accounts.models import User
from tests.concurrency import run_together
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def register(username: str, email: str) -> tuple[int, dict]:
    r = Client().post(
        "/api/auth/register",
        {"username": username, "email": email, "password": DEFAULT_PASSWORD},
        content_type="application/json",
    )
    return r.status_code, r.json()


def test_concurrent_registrations_of_one_name_in_two_cases_make_one_user():
    # given
    attempts = [("alice", "a1@example.com"), ("ALICE", "a2@example.com")] * 3
    # when
    results = run_together(len(attempts), lambda i: register(*attempts[i]))
    # then
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [400] * 5, results
    assert all("username" in body for status, body in results if status == 400), results
    assert User.objects.filter(username__iexact="alice").count() == 1


def test_concurrent_registrations_of_one_email_all_wait_for_its_confirmation():
    # given
    attempts = [(f"user{i}", "same@example.com") for i in range(6)]
    # when
    results = run_together(len(attempts), lambda i: register(*attempts[i]))
    # then: an address is the account's only once confirmed (accounts.email_confirmation)
    assert sorted(status for status, _ in results) == [201] * 6, results
    assert User.objects.filter(pending_email="same@example.com").count() == 6
    assert not User.objects.filter(email__iexact="same@example.com").exists()
