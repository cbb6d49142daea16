"""Group names, the channel-layer envelope and the ways events leave a process.

Every event is encoded to JSON once, here, and carried through the channel layer in an
envelope that names the group it was sent to: the process-local hub (chats.hub) routes on
that name and writes the pre-encoded text straight to each local socket. Events of the
service layer leave only after the transaction that wrote them commits
(`broadcast_on_commit`): nobody hears of a row that rolled back. When the channel layer is
down the write still stands; the failure is logged and clients catch up with ?since=<version>.
"""

import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
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


def encode(event: Mapping[str, Any]) -> str:
    return json.dumps(event, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


def layer_message(event: Mapping[str, Any], group: str, **routing: Any) -> dict[str, Any]:
    """The channel-layer envelope: the frame's text, encoded once, plus what the hub routes on.

    `group` is the group the envelope is sent to (a process's one hub channel sits in many
    groups and must know which one a message came through); `chat_id` and `user_id` let the
    hub act on membership events without decoding the text; extra keyword arguments
    (`skip_user`, `nonce`) are routing hints for the hub.
    """
    envelope: dict[str, Any] = {"type": "relay", "text": encode(event), "event": event["type"], "group": group}
    for key in ("chat_id", "user_id"):
        if key in event:
            envelope[key] = event[key]
    chat = event.get("chat")
    if isinstance(chat, dict) and "id" in chat:
        envelope["chat_id"] = chat["id"]
    envelope.update(routing)
    return envelope


_deferred = threading.local()


@contextmanager
def deferred_sends() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Collect the envelopes that `send_now` would send, instead of sending them from this thread.

    A consumer runs a service in a worker thread inside this block and publishes what was
    collected once back on the event loop (`publish`): the thread is not held up waiting for
    the loop to send each event, and the order of the events is kept.
    """
    collected: list[tuple[str, dict[str, Any]]] = []
    previous = getattr(_deferred, "collector", None)
    _deferred.collector = collected
    try:
        yield collected
    finally:
        _deferred.collector = previous


async def publish(envelopes: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Send collected envelopes in order, from the event loop. Never raises."""
    layer = get_channel_layer()
    if layer is None:
        return
    for group, envelope in envelopes:
        try:
            await layer.group_send(group, envelope)
        except Exception:
            logger.exception("could not announce %s to %s", envelope.get("event"), group)


def send_now(group: str, event: Event) -> None:
    """Send from synchronous code (a service's on_commit callback). Never raises."""
    collector = getattr(_deferred, "collector", None)
    if collector is not None:
        collector.append((group, layer_message(event, group)))
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, layer_message(event, group))
    except Exception:
        # The write has committed; a client that missed this recovers with ?since=<version>.
        logger.exception("could not announce %s to %s", event.get("type"), group)


async def send_async(group: str, event: Mapping[str, Any], **routing: Any) -> bool:
    """Send from the event loop (typing, presence: nothing stored). Never raises; False on failure."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        await layer.group_send(group, layer_message(event, group, **routing))
    except Exception:
        logger.warning("could not announce %s to %s", event.get("type"), group, exc_info=True)
        return False
    return True


def broadcast_on_commit(group: str, event: Event) -> None:
    transaction.on_commit(lambda: send_now(group, event))


def broadcast_each_on_commit(groups_and_events: Iterable[tuple[str, Event]]) -> None:
    pairs = list(groups_and_events)

    def send_all() -> None:
        for group, event in pairs:
            send_now(group, event)

    transaction.on_commit(send_all)
