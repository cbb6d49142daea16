"""GET /healthz: 200 {"database": "ok", "channel_layer": "ok"}; 503 naming what is down."""

import socket
import threading
import time

import pytest

from messenger import health


@pytest.fixture(autouse=True)
def fresh_probes(monkeypatch):
    """Each test gets probes of its own: a check an earlier test left hanging (and then released)
    may still be finishing, and the next test's first request would get that run's answer."""
    for name, probe in list(health.PROBES.items()):
        monkeypatch.setitem(health.PROBES, name, health.Probe(name, probe.check))


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


@pytest.mark.django_db
def test_healthz_answers_503_naming_the_disk_when_free_space_is_below_the_threshold(client, settings):
    # given: more free space demanded than any disk has
    settings.DISK_MIN_FREE_BYTES = 2**62
    # when
    r = client.get("/healthz")
    # then
    assert r.status_code == 503, r.content
    assert r.json() == {"database": "ok", "channel_layer": "ok", "disk": "full"}


@pytest.mark.django_db
def test_healthz_answers_within_2_s_while_the_database_hangs_and_starts_no_second_probe(client, monkeypatch):
    # given: a database check that hangs until released (as against a stopped server)
    release = threading.Event()
    calls: list[str] = []

    def hanging() -> str:
        calls.append(threading.current_thread().name)
        release.wait(timeout=30)
        return "ok"

    monkeypatch.setattr(health.PROBES["database"], "check", hanging)
    try:
        # when: three checks, one after another, while it hangs
        answers = []
        for _ in range(3):
            started = time.monotonic()
            r = client.get("/healthz")
            answers.append((r.status_code, r.json(), time.monotonic() - started))
    finally:
        release.set()
    # then: each within 2 s, naming the database; the hung check ran once, in one thread
    for status, body, seconds in answers:
        assert status == 503
        assert body == {"database": "down", "channel_layer": "ok", "disk": "ok"}
        assert seconds < 2
    assert answers[1][2] < 0.5 and answers[2][2] < 0.5  # past the run's deadline: no waiting again
    assert len(calls) == 1  # (the probe's executor has one thread: one hung run holds one thread)


@pytest.mark.django_db
def test_healthz_sees_the_database_again_once_the_hung_check_returns(client, monkeypatch):
    # given
    release = threading.Event()
    real_check = health.PROBES["database"].check

    def hanging_once() -> str:
        release.wait(timeout=30)
        return real_check()

    monkeypatch.setattr(health.PROBES["database"], "check", hanging_once)
    assert client.get("/healthz").json()["database"] == "down"
    # when
    release.set()
    monkeypatch.setattr(health.PROBES["database"], "check", real_check)
    time.sleep(0.2)
    r = client.get("/healthz")
    # then
    assert r.status_code == 200, r.content
