"""GET /healthz: 200 {"database": "ok", "channel_layer": "ok"}; 503 naming what is down."""

import socket

import pytest


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.django_db
def test_healthz_answers_200_when_everything_is_up(client):
    # when
    r = client.get("/healthz")
    # then
    assert r.status_code == 200, r.content
    assert r.json() == {"database": "ok", "channel_layer": "ok", "disk": "ok"}


@pytest.mark.django_db
def test_healthz_needs_no_token(client):
    # when
    r = client.get("/healthz", HTTP_AUTHORIZATION="Bearer garbage")
    # then
    assert r.status_code == 200, r.content


@pytest.mark.parametrize(
    "backend", ["channels_redis.core.RedisChannelLayer", "chats.realtime.adapter.BatchedRedisPubSubChannelLayer"]
)
@pytest.mark.django_db
def test_healthz_answers_503_naming_the_channel_layer_when_it_is_down(client, settings, backend):
    # given: a Redis channel layer pointing at a port nobody listens on
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": backend, "CONFIG": {"hosts": [f"redis://127.0.0.1:{unused_port()}/0"]}}
    }
    # when
    r = client.get("/healthz")
    # then
    assert r.status_code == 503, r.content
    assert r.json() == {"database": "ok", "channel_layer": "down", "disk": "ok"}


@pytest.mark.django_db
def test_healthz_recovers_when_the_layer_is_back(client, settings):
    # given
    original = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{unused_port()}/0"]},
        }
    }
    assert client.get("/healthz").status_code == 503
    # when
    settings.CHANNEL_LAYERS = original
    r = client.get("/healthz")
    # then
    assert r.status_code == 200, r.content
