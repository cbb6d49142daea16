"""Rate limits name the client by its address, X-Forwarded-For only through TRUSTED_PROXIES, and
count failed logins per username besides; the admin's login is limited the same way."""

import pytest
from rest_framework.throttling import ScopedRateThrottle

from tests.factories import DEFAULT_PASSWORD, UserFactory

LOGIN = "/api/auth/login"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def alice(db):
    return UserFactory.create(username="alice", email="alice@example.com", is_staff=True)


def login(client, username="alice", password="Wrong-password-1", **headers):
    return client.post(
        LOGIN, {"username": username, "password": password}, content_type="application/json", headers=headers
    )


def test_a_new_x_forwarded_for_each_time_is_still_one_client(client, db, settings):
    # given: the default, no trusted proxy; usernames vary so that only the address limit applies
    assert settings.TRUSTED_PROXIES == 0
    statuses = []
    # when: 35 wrong passwords, each claiming another address (the default rate is 30/min)
    for attempt in range(35):
        r = login(client, username=f"nobody{attempt}", x_forwarded_for=f"203.0.113.{attempt}")
        statuses.append(r.status_code)
    # then
    assert statuses[:30] == [401] * 30
    assert statuses[30:] == [429] * 5
    assert int(r["Retry-After"]) > 0


def test_with_one_trusted_proxy_the_address_it_gives_is_the_client(client, db, settings, monkeypatch):
    # given: behind one proxy, which appends the address it saw; the client wrote the rest
    settings.TRUSTED_PROXIES = 1
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "2/min"})
    # when: one address spends the budget, whatever it wrote before the proxy's entry
    first = [login(client, username=f"u{n}", x_forwarded_for=f"10.9.9.{n}, 198.51.100.7") for n in range(3)]
    # then: that address is limited, another one behind the same proxy is not
    assert [r.status_code for r in first] == [401, 401, 429]
    assert login(client, username="u9", x_forwarded_for="198.51.100.8").status_code == 401


def test_with_no_trusted_proxy_the_header_changes_nothing(client, db, settings, monkeypatch):
    # given
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "2/min"})
    login(client, username="u1", x_forwarded_for="198.51.100.7")
    login(client, username="u2", x_forwarded_for="198.51.100.7")
    # when: the same socket address with a different header
    r = login(client, username="u3", x_forwarded_for="198.51.100.8")
    # then
    assert r.status_code == 429, r.content


def test_failed_logins_are_limited_per_username_from_any_address(client, alice, settings):
    # given: ten failures for alice, from ten trusted addresses
    settings.TRUSTED_PROXIES = 1
    for n in range(10):
        assert login(client, x_forwarded_for=f"198.51.100.{n}").status_code == 401
    # when: the right password, from yet another address
    r = login(client, password=DEFAULT_PASSWORD, x_forwarded_for="198.51.100.99")
    # then: the account is closed to logins until the window ends
    assert r.status_code == 429, r.content
    assert 0 < int(r["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW_SECONDS


def test_an_email_and_a_username_count_as_one_account(client, alice, settings):
    # given
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    login(client, username="alice@example.com")
    login(client, username="ALICE")
    # when
    r = login(client, username="alice", password=DEFAULT_PASSWORD)
    # then
    assert r.status_code == 429, r.content


def test_a_success_does_not_clear_the_failures_of_others(client, alice, settings):
    # given: two failures of a limit of three
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    login(client)
    login(client)
    # when: alice logs in, then someone fails once more
    assert login(client, password=DEFAULT_PASSWORD).status_code == 200
    assert login(client).status_code == 401
    # then: three failures in the window: the next attempt is refused
    assert login(client, password=DEFAULT_PASSWORD).status_code == 429


def test_the_username_limit_leaves_other_accounts_alone(client, alice, settings):
    # given
    settings.LOGIN_FAILURES_PER_USERNAME = 1
    UserFactory.create(username="bob")
    login(client)
    # when
    r = login(client, username="bob", password=DEFAULT_PASSWORD)
    # then
    assert r.status_code == 200, r.content


def test_the_limit_ends_with_its_window(client, alice, settings, monkeypatch):
    # given: a closed account
    settings.LOGIN_FAILURES_PER_USERNAME = 1
    login(client)
    assert login(client, password=DEFAULT_PASSWORD).status_code == 429
    # when: the window has passed (its keys expire with it)
    from django.core.cache import cache

    cache.clear()
    # then
    assert login(client, password=DEFAULT_PASSWORD).status_code == 200


def admin_login(client, username="alice", password="Wrong-password-1", **headers):
    return client.post(ADMIN_LOGIN, {"username": username, "password": password}, headers=headers)


def test_the_admin_login_is_limited_per_address(client, db, monkeypatch):
    # given
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "3/min"})
    statuses = [admin_login(client, username=f"u{n}", x_forwarded_for=f"203.0.113.{n}").status_code for n in range(4)]
    # then: the form again for each failure, then 429
    assert statuses == [200, 200, 200, 429]


def test_the_admin_login_is_limited_per_username(client, alice, settings):
    # given
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    admin_login(client)
    login(client)  # the API's login and the admin's count together
    # when
    r = admin_login(client, password=DEFAULT_PASSWORD)
    # then
    assert r.status_code == 429, r.content
    assert int(r["Retry-After"]) > 0


def test_the_admin_login_still_logs_in(client, alice):
    # when
    r = admin_login(client, password=DEFAULT_PASSWORD)
    # then
    assert r.status_code == 302, r.content
    assert client.get("/admin/").status_code == 200
