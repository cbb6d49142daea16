"""The router delivers a chat's changes in version order, whatever order they were published in."""

import asyncio
import json
from typing import Any

import pytest

from chats.realtime import router as router_module
from chats.realtime.envelopes import chat_group, envelope
from chats.realtime.router import Router


class Sink:
    """A local socket that records what reaches it."""

    def __init__(self, user_id: int = 1) -> None:
        self.user_id = user_id
        self.chat_id = None
        self.groups: set[str] = set()
        self.wire = None
        self.texts: list[str] = []

    async def send(self, frame: dict[str, Any]) -> None:
        self.texts.append(frame["text"])

    async def close(self, code: int) -> None:
        pass

    def versions(self) -> list[Any]:
        return [json.loads(text).get("version") for text in self.texts]


class Members:
    def __init__(self, members: dict[str, set[Any]]) -> None:
        self.members = members


def change(chat_id: int, version: int) -> dict[str, Any]:
    text = json.dumps({"type": "message.deleted", "chat_id": chat_id, "message_id": version, "version": version})
    return envelope(chat_group(chat_id), "message.deleted", text, chat_id=chat_id, version=version)[1]


def make_router(sink: Sink, *chat_ids: int) -> Router:
    subscriptions: Any = Members({chat_group(chat_id): {sink} for chat_id in chat_ids})
    return Router(subscriptions, asyncio.get_running_loop(), on_member_removed=lambda user_id, chat_id: None)


async def test_changes_published_out_of_order_are_delivered_in_version_order():
    # given
    sink = Sink()
    router = make_router(sink, 7)
    # when: 1, then 3 and 4 ahead of 2, then 2
    for version in (1, 3, 4, 2, 5):
        await router.dispatch(change(7, version))
    # then
    assert sink.versions() == [1, 2, 3, 4, 5]


async def test_events_without_a_version_pass_at_once():
    # given
    sink = Sink()
    router = make_router(sink, 7)
    await router.dispatch(change(7, 1))
    await router.dispatch(change(7, 3))  # waits for 2
    # when
    typing = envelope(chat_group(7), "typing", '{"type":"typing","chat_id":7}', chat_id=7)[1]
    await router.dispatch(typing)
    # then
    assert [json.loads(text)["type"] for text in sink.texts] == ["message.deleted", "typing"]


async def test_a_version_that_never_comes_holds_the_later_ones_only_briefly(monkeypatch):
    # given
    monkeypatch.setattr(router_module, "GAP_WAIT_SECONDS", 0.05)
    sink = Sink()
    router = make_router(sink, 7)
    await router.dispatch(change(7, 1))
    # when: 2 is lost on the way
    await router.dispatch(change(7, 4))
    await router.dispatch(change(7, 3))
    assert sink.versions() == [1]
    await asyncio.sleep(0.2)
    # then: delivered in order after the wait, and the sequence goes on from there
    await router.dispatch(change(7, 5))
    assert sink.versions() == [1, 3, 4, 5]


async def test_chats_are_ordered_each_on_its_own():
    # given
    sink = Sink()
    router = make_router(sink, 7, 8)
    # when
    for chat_id, version in ((7, 1), (8, 10), (7, 3), (8, 11), (7, 2)):
        await router.dispatch(change(chat_id, version))
    # then
    assert [(json.loads(t)["chat_id"], json.loads(t)["version"]) for t in sink.texts] == [
        (7, 1),
        (8, 10),
        (8, 11),
        (7, 2),
        (7, 3),
    ]


async def test_a_late_duplicate_is_still_delivered():
    # given
    sink = Sink()
    router = make_router(sink, 7)
    for version in (1, 2):
        await router.dispatch(change(7, version))
    # when
    await router.dispatch(change(7, 1))
    # then: the client drops what it has; nothing is withheld
    assert sink.versions() == [1, 2, 1]


@pytest.fixture(autouse=True)
def _no_database():
    """These tests need neither the database nor the layer."""


@pytest.mark.django_db(transaction=True)
async def test_a_socket_seeds_the_order_of_the_chats_it_listens_to_only(connect, user, other_user, chat):
    # given: the user is in two chats; the second has had changes
    from asgiref.sync import sync_to_async

    from chats.realtime.hub import get_hub
    from tests.factories import group_with

    second = await sync_to_async(group_with)(user, other_user, title="second")
    await sync_to_async(type(second).objects.filter(pk=second.pk).update)(version=7)
    # when: a socket for the first chat only
    await connect(user, f"/ws/chat/{chat.id}/")
    # then: the router expects the first chat's next version, and knows nothing yet of the second
    sequences = get_hub().router.sequences
    assert sequences[chat.id].next_version == chat.version + 1
    assert second.id not in sequences
    # and a socket on every chat seeds the second from its version now
    await connect(user, "/ws/")
    assert sequences[second.id].next_version == 8


@pytest.mark.django_db(transaction=True)
async def test_the_order_of_a_chat_is_forgotten_when_its_last_local_socket_leaves(connect, user, chat):
    # given
    import asyncio as aio

    from chats.realtime.hub import get_hub

    socket = await connect(user, f"/ws/chat/{chat.id}/")
    assert chat.id in get_hub().router.sequences
    # when
    await socket.communicator.disconnect()
    await aio.sleep(0.05)
    # then: a later subscription starts from the version of its own authorisation, not a stale one
    assert chat.id not in get_hub().router.sequences
