"""The stock Channels relay: the Channels tutorial's chat consumer, as usually written.

One consumer per socket joins its room's group and relays every frame with `group_send`;
each recipient's consumer decodes the event and encodes its own JSON frame. No auth, no
database. It runs on daphne with the same channel layer as the messenger (channels-redis
with BENCH_REDIS_URL, the in-memory layer without it), so the two are measured alike.
BENCH_LAYER=pubsub selects channels-redis's other layer, `RedisPubSubChannelLayer` (Redis
PUBLISH/SUBSCRIBE instead of the core layer's lists and sorted sets), with the same pool size;
it has no capacity or expiry (a subscriber that is not reading simply misses messages).

    daphne bench.stock_relay:application      # ws://host/ws/chat/<room>/
    BENCH_LAYER=pubsub daphne bench.stock_relay:application
"""

import json
import os

import django
from django.conf import settings

_redis_url = os.environ.get("BENCH_REDIS_URL", "")
_layer_kind = os.environ.get("BENCH_LAYER", "core")
if _layer_kind not in {"core", "pubsub"}:
    raise SystemExit(f"BENCH_LAYER must be core or pubsub, not {_layer_kind!r}")
if _redis_url and _layer_kind == "pubsub":
    _layer = {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            # The same pool size as the core layer's (and the messenger's); PubSub has no capacity or expiry.
            "hosts": [{"address": _redis_url, "max_connections": 1000}],
            "prefix": os.environ.get("BENCH_LAYER_PREFIX", "stock"),
        },
    }
elif _redis_url:
    _layer = {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # The same pool size, capacity and expiry as the messenger's settings.
            "hosts": [{"address": _redis_url, "max_connections": 1000}],
            "prefix": os.environ.get("BENCH_LAYER_PREFIX", "stock"),
            "capacity": 5000,
            "expiry": 60,
        },
    }
else:
    _layer = {"BACKEND": "channels.layers.InMemoryChannelLayer"}

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={"default": _layer},
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class ChatConsumer(AsyncWebsocketConsumer):
    """https://channels.readthedocs.io/en/latest/tutorial/part_3.html, unchanged in substance."""

    room_group_name: str

    async def connect(self) -> None:
        room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{room_name}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = json.loads(text_data or "{}")["message"]
        await self.channel_layer.group_send(self.room_group_name, {"type": "chat.message", "message": message})

    async def chat_message(self, event: dict[str, str]) -> None:
        await self.send(text_data=json.dumps({"message": event["message"]}))


application = ProtocolTypeRouter({"websocket": URLRouter([path("ws/chat/<str:room_name>/", ChatConsumer.as_asgi())])})
