"""With Redis unreachable, REST writes still succeed and are stored (the failure is logged), and logging
in and refreshing work, rate-limited by each process on its own (messenger/cache.py)."""

import logging
import time

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
