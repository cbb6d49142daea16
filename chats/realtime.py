"""Group names, event payloads and the one way events leave the service layer.

Every event is built here, encoded to JSON once, and handed to the channel layer only
after the transaction that wrote it commits (`broadcast_on_commit`): nobody hears of a
row that rolled back. When the channel layer is down the write still stands; the failure
is logged and clients catch up with ?since=<version>.
"""

import json
import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

logger = logging.getLogger(__name__)

Event = dict[str, Any]


def chat_group(chat_id: int) -> str:
    return f"chat.{chat_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def encode(event: Event) -> str:
    return json.dumps(event, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


def layer_message(event: Event) -> dict[str, Any]:
    """The channel-layer envelope: the frame's text, encoded once, plus what relays route on."""
    envelope: dict[str, Any] = {"type": "relay", "text": encode(event), "event": event["type"]}
    for key in ("chat_id", "user_id"):
        if key in event:
            envelope[key] = event[key]
    return envelope


def send_now(group: str, event: Event) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, layer_message(event))
    except Exception:
        # The write has committed; a client that missed this recovers with ?since=<version>.
        logger.exception("could not announce %s to %s", event.get("type"), group)


def broadcast_on_commit(group: str, event: Event) -> None:
    transaction.on_commit(lambda: send_now(group, event))


def broadcast_each_on_commit(groups_and_events: Iterable[tuple[str, Event]]) -> None:
    pairs = list(groups_and_events)

    def send_all() -> None:
        for group, event in pairs:
            send_now(group, event)

    transaction.on_commit(send_all)
