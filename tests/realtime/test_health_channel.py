"""The health check's round trip through the channel layer leaves nothing subscribed behind."""

import os

import pytest
import redis
from django.conf import settings

from messenger.health import _layer_round_trip

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="subscriptions are Redis's (REDIS_URL)"),
]


async def test_health_round_trips_leave_no_subscription_behind():
    # given
    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]  # type: ignore[index]
    before = set(client.pubsub_channels(f"{prefix}*"))
    # when: several checks on one long-lived event loop, as in a server process
    results = [await _layer_round_trip() for _ in range(5)]
    # then
    assert results == [True] * 5
    assert set(client.pubsub_channels(f"{prefix}*")) == before
