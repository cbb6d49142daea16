"""docs/asyncapi.yaml describes the WebSocket protocol the code speaks: every frame type the
consumer handles and the server emits, every `error` code and close code, read from the code
itself so that the document cannot drift from it silently."""

import re
from pathlib import Path

import pytest
import yaml

from chats.realtime.consumer import FRAME_HANDLERS
from messenger.exceptions import ERRORS

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "docs" / "asyncapi.yaml"
# Where frames are built and sockets closed.
SOURCES = [
    *sorted((ROOT / "chats" / "realtime").glob("*.py")),
    ROOT / "chats" / "routing.py",
    ROOT / "accounts" / "ws_auth.py",
]
# In the contract (v1.1) and the document, not emitted by this server's code (yet).
CONTRACT_ONLY: set[str] = set()
CLOSE_CODES_IN_CONTRACT_ONLY = {1001}


@pytest.fixture(scope="module")
def document():
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))


def source_text() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in SOURCES)


def frames_in_code() -> set[str]:
    """The `type` of every frame the server code builds: dicts, pre-encoded text, renderer kinds."""
    text = source_text() + (ROOT / "messenger" / "exceptions.py").read_text(encoding="utf-8")
    found = set(re.findall(r'"type":\s*"([a-z][a-z._]*)"', text))
    found |= set(re.findall(r'\{"type":"([a-z][a-z._]*)"', text))
    found |= set(re.findall(r'_message_change\("([a-z][a-z._]*)"\)', text))
    # ASGI's own messages, the channel layer's envelope and the hub's probe of its layer are not frames.
    return {kind for kind in found if not kind.startswith("websocket.") and kind not in {"relay", "probe"}}


def close_codes_in_code() -> set[int]:
    text = source_text()
    codes = re.findall(r"CLOSE_[A-Z_]+\s*=\s*(\d{4})", text) + re.findall(r'"code":\s*(\d{4})', text)
    return {int(code) for code in codes}


def messages_of(document, action: str, channel: str) -> set[str]:
    names = set()
    for operation in document["operations"].values():
        if operation["action"] == action and operation["channel"]["$ref"] == f"#/channels/{channel}":
            for reference in operation["messages"]:
                key = reference["$ref"].rsplit("/", 1)[-1]
                ref = document["channels"][channel]["messages"][key]["$ref"]
                names.add(document["components"]["messages"][ref.rsplit("/", 1)[-1]]["name"])
    return names


def test_the_document_is_asyncapi_3_with_both_paths(document):
    assert document["asyncapi"].startswith("3.")
    addresses = {channel["address"].split("?")[0] for channel in document["channels"].values()}
    assert addresses == {"/ws/", "/ws/chat/{chatId}/"}


def test_the_code_s_frame_lists_are_read(document):
    # A regex that found nothing would make the checks below vacuous.
    assert {"message.created", "message.deleted", "chat.created", "message.ack", "error", "pong"} <= frames_in_code()
    assert {4401, 4403, 4404, 4429, 4503} <= close_codes_in_code()


@pytest.mark.parametrize("channel", ["allChats", "oneChat"])
def test_every_frame_the_consumer_handles_is_documented(document, channel):
    assert set(FRAME_HANDLERS) == messages_of(document, "receive", channel)


@pytest.mark.parametrize("channel", ["allChats", "oneChat"])
def test_every_frame_the_server_emits_is_documented_and_no_other(document, channel):
    documented = messages_of(document, "send", channel)
    emitted = frames_in_code()
    if channel == "oneChat":
        emitted -= {"chat.created"}  # to a user's own group only: sockets on /ws/
    assert emitted <= documented, f"undocumented: {emitted - documented}"
    assert documented - emitted <= CONTRACT_ONLY, (
        f"documented but never emitted: {documented - emitted - CONTRACT_ONLY}"
    )


def test_every_error_code_is_documented(document):
    codes = {code for _, _, code in ERRORS} | {"unavailable"}
    codes |= set(re.findall(r'Refused\(\s*"([a-z_]+)"', source_text()))
    codes |= set(re.findall(r'Refused\(\s*"([a-z_]+)"', (ROOT / "messenger" / "json_input.py").read_text()))
    assert codes <= set(document["components"]["schemas"]["ErrorCode"]["enum"])


@pytest.mark.parametrize("channel", ["allChats", "oneChat"])
def test_every_close_code_is_documented(document, channel):
    documented = {entry["code"] for entry in document["channels"][channel]["x-close-codes"]}
    assert close_codes_in_code() | CLOSE_CODES_IN_CONTRACT_ONLY <= documented


def test_the_document_is_served_beside_the_openapi_schema(client, db):
    # when
    r = client.get("/api/asyncapi.yaml")
    # then
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("application/yaml")
    assert r.content == DOCUMENT.read_bytes()


def test_a_readable_page_is_rendered_from_it_with_every_frame(client, db, document):
    # when
    r = client.get("/api/ws-docs/")
    # then
    assert r.status_code == 200, r.content
    page = r.content.decode()
    assert "<script" not in page and "https://" not in page  # nothing fetched from elsewhere
    for message in document["components"]["messages"].values():
        assert f"<code>{message['name']}</code>" in page
    for code in (4401, 4403, 4429, 4503, 1001):
        assert f"<td>{code}</td>" in page


def test_swagger_ui_s_description_links_the_websocket_documents(client, db):
    # when
    r = client.get("/api/schema/", {"format": "json"})
    # then
    assert "/api/ws-docs/" in r.json()["info"]["description"]
