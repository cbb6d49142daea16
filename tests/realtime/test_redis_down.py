"""With Redis unreachable, REST writes still succeed and are stored (the failure is logged), and logging
in and refreshing work, rate-limited by each process on its own (messenger/cache.py)."""

import logging
import socket
import time
from collections.abc import Iterator

import pytest
from rest_framework.throttling import ScopedRateThrottle

from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

UNREACHABLE = "redis://127.0.0.1:1/0"


@pytest.fixture
def redis_unreachable(settings):
    # Every use of Redis points at a port where nothing listens: the layer, the cache, presence.
    settings.REDIS_URL = UNREACHABLE
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chats.realtime.adapter.BatchedRedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": UNREACHABLE, "max_connections": 10}], "prefix": "down"},
        }
    }
    settings.CACHES = {
        "default": {
            "BACKEND": "messenger.cache.FallbackRedisCache",
            "LOCATION": UNREACHABLE,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


@pytest.fixture
def redis_silent(settings) -> Iterator[None]:
    """A Redis that accepts connections and never answers (paused, or behind a dropped network)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # never accepted: the kernel completes the handshakes, nothing replies
        url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
        settings.REDIS_URL = url
        host = {"address": url, "max_connections": 10, "socket_connect_timeout": 1, "socket_timeout": 1}
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "chats.realtime.adapter.BatchedRedisPubSubChannelLayer",
                "CONFIG": {"hosts": [host], "prefix": "silent"},
            }
        }
        settings.CACHES = {
            "default": {
                "BACKEND": "messenger.cache.FallbackRedisCache",
                "LOCATION": url,
                "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
            }
        }
        yield


def test_a_message_posted_while_redis_is_unreachable_is_stored_and_answered_201(
    redis_unreachable, api_client, chat, caplog
):
    # when
    with caplog.at_level(logging.WARNING):
        r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "still here"}, format="json")
    # then
    assert r.status_code == 201, r.content
    history = api_client.get(f"/api/chats/{chat.id}/messages")
    assert history.status_code == 200, history.content
    assert [m["content"] for m in history.json()["results"]] == ["still here"]
    assert any("could not announce message.created" in record.getMessage() for record in caplog.records)


def test_health_names_the_channel_layer_as_down_while_redis_is_unreachable(redis_unreachable, client):
    # when
    r = client.get("/healthz")
    # then
    assert r.status_code == 503, r.content
    assert r.json()["channel_layer"] == "down"


def test_login_and_refresh_answer_200_while_redis_is_unreachable(redis_unreachable, client, user):
    # when
    started = time.monotonic()
    login = client.post(
        "/api/auth/login", {"username": user.username, "password": DEFAULT_PASSWORD}, content_type="application/json"
    )
    assert login.status_code == 200, login.content
    refresh = client.post("/api/auth/refresh", {"refresh": login.json()["refresh"]}, content_type="application/json")
    # then
    assert refresh.status_code == 200, refresh.content
    assert set(refresh.json()) >= {"access", "refresh"}
    assert time.monotonic() - started < 3


def test_login_is_still_rate_limited_in_the_process_while_redis_is_unreachable(
    redis_unreachable, client, user, monkeypatch
):
    # given: DRF reads the rates once, into the throttle class
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "2/min"})
    body = {"username": user.username, "password": "Wrong-password-1"}
    for _ in range(2):
        assert client.post("/api/auth/login", body, content_type="application/json").status_code == 401
    # when
    r = client.post("/api/auth/login", body, content_type="application/json")
    # then
    assert r.status_code == 429, r.content
    assert int(r["Retry-After"]) > 0


def test_login_answers_200_within_seconds_while_redis_accepts_but_never_answers(redis_silent, client, user):
    # when
    started = time.monotonic()
    login = client.post(
        "/api/auth/login", {"username": user.username, "password": DEFAULT_PASSWORD}, content_type="application/json"
    )
    # then: the throttle's cache (1 s) and presence (1 s, tried twice) gave up; nothing hung
    assert login.status_code == 200, login.content
    assert time.monotonic() - started < 6


def test_a_message_posted_while_redis_accepts_but_never_answers_is_stored_and_answered_201(
    redis_silent, api_client, chat
):
    # when
    started = time.monotonic()
    r = api_client.post(f"/api/chats/{chat.id}/messages", {"content": "still here"}, format="json")
    # then: the publish timed out (settings: 5 s; here 1 s) instead of holding the request
    assert r.status_code == 201, r.content
    assert time.monotonic() - started < 4
