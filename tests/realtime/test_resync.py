"""When the channel layer fails a process's sockets, they stay open and are told to catch up (`resync`)
once it is back: a subscription that failed, a connect while it was down, a publish that failed, a
layer that went quiet. Never a close 1011 or 4503 for it (docs/realtime.md, "When the channel layer is down")."""

import asyncio
import json
from typing import Any

import pytest
from channels.layers import get_channel_layer

from chats.realtime import resync
from chats.realtime.envelopes import chat_group, envelope
from chats.realtime.hub import get_hub
from tests.realtime.test_router_order import Sink, change, make_router

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quick_watch():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resync, "PROBE_INTERVAL_SECONDS", 0.1)
        patch.setattr(resync, "PROBE_TIMEOUT_SECONDS", 0.3)
        patch.setattr(resync, "RETRY_SECONDS", 0.05)
        patch.setattr(resync, "RECOVERY_PROBE_SECONDS", 0.3)
        yield


async def failing(*args: Any, **kwargs: Any) -> None:
    await asyncio.sleep(0.02)
    raise ConnectionError("layer down")


async def test_sockets_whose_subscription_fails_are_kept_and_told_to_resync_once_the_layer_is_back(
    connect, rest, user, other_user, chat, monkeypatch
):
    # given: the layer's subscriptions fail, slowly enough that both sockets wait on the same one
    layer = get_channel_layer()
    monkeypatch.setattr(layer, "group_add", failing)
    # when
    first, second = await asyncio.gather(connect(user), connect(other_user, f"/ws/chat/{chat.id}/"))
    # then: both accepted
    assert first.accepted and second.accepted
    # when the layer is back
    monkeypatch.undo()
    # then: each is told to resync (/ws/: everything; /ws/chat/<id>/: its chat) and is live again
    assert await first.receive_type("resync") == {"type": "resync"}
    assert await second.receive_type("resync") == {"type": "resync", "chat_ids": [chat.id]}
    r = await rest(user, "post", f"/api/chats/{chat.id}/messages", {"content": "after"})
    assert r.status_code == 201, r.content
    assert (await second.receive_type("message.created"))["message"]["content"] == "after"


async def test_a_process_that_starts_while_the_layer_is_down_gets_its_channel_once_it_is_back(
    connect, rest, user, chat, monkeypatch
):
    # given: the layer cannot give the hub its channel as the first socket connects
    layer = get_channel_layer()
    monkeypatch.setattr(layer, "new_channel", failing)
    socket = await connect(user)
    # then: accepted all the same
    assert socket.accepted and await socket.is_open()
    # when the layer is back
    monkeypatch.undo()
    # then: told to resync, and live
    assert await socket.receive_type("resync") == {"type": "resync"}
    r = await rest(user, "post", f"/api/chats/{chat.id}/messages", {"content": "live"})
    assert r.status_code == 201, r.content
    assert (await socket.receive_type("message.created"))["message"]["content"] == "live"


async def test_a_socket_that_connects_while_the_layer_is_down_is_accepted_and_told_to_resync(
    connect, user, chat, monkeypatch
):
    # given: a hub that found the layer down
    layer = get_channel_layer()
    monkeypatch.setattr(layer, "group_add", failing)
    monkeypatch.setattr(layer, "send", failing)
    early = await connect(user)
    hub = get_hub()
    for _ in range(50):
        if not hub.watch.up:
            break
        await asyncio.sleep(0.05)
    assert not hub.watch.up
    # when: a socket connects while it is down
    late = await connect(user, f"/ws/chat/{chat.id}/")
    # then: accepted, and told to resync once the layer is back
    assert late.accepted and await late.is_open()
    monkeypatch.undo()
    assert await late.receive_type("resync") == {"type": "resync", "chat_ids": [chat.id]}
    assert await early.receive_type("resync") == {"type": "resync"}
    assert hub.watch.up


async def test_a_layer_that_stops_carrying_messages_is_noticed_by_the_probe_and_sockets_resync(
    connect, user, monkeypatch
):
    # given: a live socket
    socket = await connect(user)
    assert await socket.is_open()
    hub = get_hub()
    # when: the layer silently stops delivering (nothing raises: a probe never comes back)
    monkeypatch.setattr(hub.router, "on_probe", lambda nonce: None)
    for _ in range(50):
        if not hub.watch.up:
            break
        await asyncio.sleep(0.05)
    assert not hub.watch.up
    # when it delivers again
    monkeypatch.undo()
    # then
    assert await socket.receive_type("resync") == {"type": "resync"}
    assert hub.watch.resyncs == 1


async def test_one_probe_that_comes_back_late_is_no_outage(connect, user, monkeypatch):
    # given: a live socket, and a layer that loses one probe (a busy loop or layer: late, not lost)
    socket = await connect(user)
    assert await socket.is_open()
    hub = get_hub()
    real_on_probe = hub.router.on_probe
    dropped = 0

    def drop_one(nonce: str) -> None:
        nonlocal dropped
        if dropped == 0:
            dropped += 1
            return
        real_on_probe(nonce)

    monkeypatch.setattr(hub.router, "on_probe", drop_one)
    # when: a few probes go by
    await asyncio.sleep(1.2)
    # then: still up, nobody told to resync
    assert dropped == 1
    assert hub.watch.up and hub.watch.resyncs == 0
    assert "resync" not in await socket.received_types()


async def test_an_event_whose_publish_failed_leads_to_a_resync_of_its_chat_on_every_process(
    connect, rest, user, other_user, chat, monkeypatch
):
    # given: sockets of both members, and a layer that fails the publish of the next message
    mine, theirs = await connect(user), await connect(other_user, f"/ws/chat/{chat.id}/")
    layer = get_channel_layer()
    real_group_send = layer.group_send
    failures = 1

    async def fail_once(group: str, message: dict[str, Any]) -> None:
        nonlocal failures
        if message.get("event") == "message.created" and failures:
            failures -= 1
            raise ConnectionError("layer down")
        await real_group_send(group, message)

    monkeypatch.setattr(layer, "group_send", fail_once)
    # when: a message is stored but not announced
    r = await rest(user, "post", f"/api/chats/{chat.id}/messages", {"content": "lost"})
    assert r.status_code == 201, r.content
    # then: a resync of that chat reaches both through the chat's group (how other processes hear it)
    assert await theirs.receive_type("resync") == {"type": "resync", "chat_ids": [chat.id]}
    assert await mine.receive_type("resync") == {"type": "resync", "chat_ids": [chat.id]}
    assert get_hub().watch.resyncs == 0  # the layer itself never went down


async def test_a_resync_of_a_chat_starts_its_version_order_over():
    # given: version 2 is missing, so 3 waits
    sink = Sink()
    router = make_router(sink, 7)
    await router.dispatch(change(7, 1))
    await router.dispatch(change(7, 3))
    assert sink.versions() == [1]
    # when: the chat is resynced (its missing events are for the client to catch up)
    text = json.dumps({"type": "resync", "chat_ids": [7]})
    await router.dispatch(envelope(chat_group(7), "resync", text, chat_id=7)[1])
    await asyncio.sleep(0)
    # then: the resync, and what waited delivered at once; the next version is taken as it comes
    assert sink.versions() == [1, None, 3]
    await router.dispatch(change(7, 9))
    assert sink.versions() == [1, None, 3, 9]
    assert not router.sequences[7].held
