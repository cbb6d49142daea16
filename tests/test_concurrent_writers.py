"""Sixteen writers at once on the embedded default (SQLite) are all served: registrations (with
the real password hasher), logins and message sends, 0 errors. On MariaDB the same must hold.

SQLite has one write lock: the writers queue for it (busy timeout, BEGIN IMMEDIATE), password
hashing is done before the transaction takes it, and a write that still finds the database
locked runs again (messenger.deadlocks).
"""

import time
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from chats.models import Message
from tests.concurrency import run_together
from tests.factories import DEFAULT_PASSWORD, UserFactory, group_with

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def real_password_hasher(settings):
    # PBKDF2 at Django's full iteration count: the cost a registration has on a server.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def test_sixteen_concurrent_registrations_and_sends_all_succeed(real_password_hasher):
    # given
    senders = [UserFactory.create() for _ in range(8)]
    chat = group_with(*senders)
    clients = []
    for sender in senders:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(sender)}")
        clients.append(client)

    def work(index: int) -> tuple[int, Any]:
        r: Any
        if index % 2 == 0:
            r = Client().post(
                "/api/auth/register",
                {"username": f"new{index}", "email": f"new{index}@example.com", "password": DEFAULT_PASSWORD},
                content_type="application/json",
            )
        else:
            r = clients[index // 2].post(f"/api/chats/{chat.id}/messages", {"content": f"m{index}"}, format="json")
        return r.status_code, r.content

    # when
    started = time.monotonic()
    results = run_together(16, work)
    elapsed = time.monotonic() - started
    # then
    assert [status for status, _ in results] == [201] * 16, results
    assert User.objects.filter(username__startswith="new").count() == 8
    assert Message.objects.filter(chat=chat).count() == 8
    print(f"16 concurrent writers served in {elapsed:.2f} s")
