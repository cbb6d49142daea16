"""Group names, the channel-layer envelope, and publishing.

Every frame is encoded to JSON once, by whoever renders it, and crosses the channel layer in an
envelope naming the group it was sent to; each process's router (chats.realtime.router) routes
on that name and writes the encoded text to its local sockets as it is. A publish never raises:
the write it announces has committed, and clients catch up with ?since=<version>. The groups of
a publish that failed are handed to the loop's watcher (the hub's, `watch_failures`), which tells
their sockets on every process to catch up (`resync`) once the layer is reachable again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder

logger = logging.getLogger(__name__)

Frame = dict[str, Any]
# (group, layer message)
Envelope = tuple[str, dict[str, Any]]


# Frames of these kinds are not caught up with ?since=: losing one is no reason to resync.
EPHEMERAL = frozenset({"typing", "presence"})

# Per event loop: who hears of the groups whose publish failed (the loop's hub).
_failure_watchers: dict[asyncio.AbstractEventLoop, Callable[[list[str]], None]] = {}


def watch_failures(loop: asyncio.AbstractEventLoop, callback: Callable[[list[str]], None] | None) -> None:
    """Hand the groups of every failed publish on `loop` to `callback` (None: stop)."""
    if callback is None:
        _failure_watchers.pop(loop, None)
    else:
        _failure_watchers[loop] = callback


def chat_group(chat_id: int) -> str:
    return f"chat.{chat_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def encode(frame: Mapping[str, Any]) -> str:
    return json.dumps(frame, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


def envelope(group: str, kind: str, text: str, **routing: Any) -> Envelope:
    """The layer message: the frame's text, plus what the router acts on without decoding it.

    `kind` is the frame's type; routing keys: `chat_id`, `user_id`, `version` (message changes:
    the router delivers a chat's changes in version order), `skip_user` (not to that user's
    sockets), `nonce` (presence, user.updated: delivered once per socket though sent through several groups),
    `chat_version` (`chat.created`: the version the router orders the chat's changes from).
    """
    message: dict[str, Any] = {"type": "relay", "text": text, "event": kind, "group": group}
    message.update(routing)
    return group, message


def frame_envelope(group: str, frame: Mapping[str, Any], **routing: Any) -> Envelope:
    """The envelope of a frame that is encoded here (typing, presence: nothing stored)."""
    for key in ("chat_id", "user_id"):
        if key in frame and key not in routing:
            routing[key] = frame[key]
    return envelope(group, frame["type"], encode(frame), **routing)


async def publish(envelopes: Iterable[Envelope]) -> bool:
    """Send envelopes from the event loop, in order (one pipeline on Redis). False if any failed."""
    layer = get_channel_layer()
    if layer is None:
        return False
    pending = list(envelopes)
    if not pending:
        return True
    results = await asyncio.gather(
        *(layer.group_send(group, message) for group, message in pending), return_exceptions=True
    )
    ok = True
    failed: list[str] = []
    for (group, message), result in zip(pending, results, strict=True):
        if isinstance(result, BaseException):
            ok = False
            logger.warning("could not announce %s to %s: %r", message.get("event"), group, result)
            if message.get("event") not in EPHEMERAL:
                failed.append(group)
    if failed:
        watcher = _failure_watchers.get(asyncio.get_running_loop())
        if watcher is None:
            logger.warning("no hub on this loop: %d groups missed events and will not be told to resync", len(failed))
        else:
            watcher(failed)
    return ok


def publish_from_thread(envelopes: list[Envelope]) -> None:
    """Send envelopes from synchronous code (a REST request's thread): one hop to the loop for all."""
    if envelopes:
        try:
            async_to_sync(publish)(envelopes)
        except Exception:
            logger.exception("could not announce %d events", len(envelopes))
