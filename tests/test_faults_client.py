"""The fault suite's member client (faults/client.py) on canned frames: it catches up as the shipped client does."""

import json
from typing import Any

from faults.accounting import LIVE
from faults.client import Member
from faults.traffic import Answer

PREFIX = "Ftest-"


class FakeTraffic:
    """Answers GET ?since= from a list of stored messages; records what was asked."""

    port = 1

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.paths: list[str] = []

    async def request(self, method: str, path: str, token: str | None = None, body: Any = None) -> Answer:
        self.paths.append(path)
        since = int(path.split("since=")[1].split("&")[0])
        results = [m for m in self.messages if m["version"] > since]
        return Answer(200, json.dumps({"results": results, "has_more": False}).encode())


def message(chat_id: int, version: int, marker: str) -> dict[str, Any]:
    return {"chat_id": chat_id, "version": version, "content": f"{PREFIX}{marker} text"}


def created(chat_id: int, version: int, marker: str) -> bytes:
    frame = {
        "type": "message.created",
        "chat_id": chat_id,
        "version": version,
        "message": message(chat_id, version, marker),
    }
    return json.dumps(frame).encode()


def member(traffic: FakeTraffic) -> Member:
    client = Member(traffic, user_id=1, token="t", chat_ids=[7], marker_prefix=PREFIX)  # type: ignore[arg-type]
    client.known = {7: 10}
    return client


async def settle(client: Member) -> None:
    for task in list(client.tasks):
        await task


async def test_the_next_version_is_taken_live_without_a_request():
    traffic = FakeTraffic([])
    client = member(traffic)

    client.on_text(created(7, 11, "a"))
    await settle(client)

    assert client.receipts == {f"{PREFIX}a": LIVE}
    assert client.known[7] == 11 and traffic.paths == []


async def test_a_version_gap_fetches_what_was_skipped():
    # given versions 11 and 12 stored, and only 12 arriving live
    traffic = FakeTraffic([message(7, 11, "missed"), message(7, 12, "b")])
    client = member(traffic)

    client.on_text(created(7, 12, "b"))
    await settle(client)

    assert client.receipts == {f"{PREFIX}b": LIVE, f"{PREFIX}missed": "gap"}
    assert traffic.paths == ["/api/chats/7/messages?since=10&limit=100"]
    assert client.known[7] == 12


async def test_a_resync_frame_catches_up_its_chats():
    traffic = FakeTraffic([message(7, 11, "during-outage")])
    client = member(traffic)

    client.on_text(json.dumps({"type": "resync", "chat_ids": [7]}).encode())
    await settle(client)

    assert client.receipts == {f"{PREFIX}during-outage": "resync"}
    assert client.resyncs == 1


async def test_a_resync_without_chat_ids_means_every_chat():
    traffic = FakeTraffic([message(7, 11, "x")])
    client = member(traffic)

    client.on_text(b'{"type": "resync"}')
    await settle(client)

    assert client.receipts == {f"{PREFIX}x": "resync"}


async def test_messages_of_other_runs_are_not_counted():
    client = member(FakeTraffic([]))

    client.on_text(
        json.dumps(
            {
                "type": "message.created",
                "chat_id": 7,
                "version": 11,
                "message": {"chat_id": 7, "version": 11, "content": "hello"},
            }
        ).encode()
    )

    assert client.receipts == {}
