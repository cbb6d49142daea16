"""With the channel layer unreachable, REST writes still succeed and are stored; the failure is logged."""

import logging

import pytest

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
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": UNREACHABLE}}


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
