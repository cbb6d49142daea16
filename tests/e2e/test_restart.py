"""The browser client across a server restart: the server's SIGTERM closes the socket with 1001, a
message written meanwhile waits in the client, and once the server is back the client reconnects,
sends it (stored once) and catches up on what was said while it was away.

A server of its own (SQLite, one process), stopped and started again on the same port by its pid.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from tests.e2e.conftest import free_port, own_server_env, post_json, start_own_server, stop_own_server
from tests.e2e.direct_chat import alice_and_bob, alice_on_the_chat
from tests.e2e.test_messenger import TIMEOUT_MS, expect

pytestmark = pytest.mark.e2e

# Every socket the page opens records the code it was closed with.
RECORD_CLOSE_CODES = """
window.__closeCodes = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('close', (event) => window.__closeCodes.push(event.code));
  }
};
"""


def _messages(url: str, chat_id: int, token: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(f"{url}/api/chats/{chat_id}/messages")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return list(json.loads(response.read())["results"])


def test_a_restart_closes_with_1001_and_the_client_sends_what_waited_and_catches_up(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dir = tmp_path_factory.mktemp("e2e-restart")
    env = own_server_env(data_dir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = data_dir / "daphne.log"
    process = start_own_server(env, port, log)
    context = None
    try:
        # given: Alice and Bob, a direct chat, and Alice's browser open on it
        direct = alice_and_bob(url)
        chat, bob_token = direct.chat, direct.token("bob")
        context, page, sockets = alice_on_the_chat(browser, direct, init_script=RECORD_CLOSE_CODES)

        # when: the server shuts down
        assert stop_own_server(process) == 0
        # then: the socket was closed with 1001, not dropped
        page.wait_for_function("window.__closeCodes.length > 0", timeout=TIMEOUT_MS)
        assert page.evaluate("window.__closeCodes") == [1001]

        # when: Alice writes while it is down, and the server comes back, and Bob speaks
        composer = page.locator(".composer__input")
        composer.fill("written while the server restarted")
        composer.press("Enter")
        time.sleep(1)
        process = start_own_server(env, port, log)
        said = {"content": "said after the restart"}
        status, _ = post_json(f"{url}/api/chats/{chat['id']}/messages", said, bob_token)
        assert status == 201

        # then: Alice sees Bob's message, her own was sent once, over a new socket
        expect(page.locator(".msg .bubble__text", has_text="said after the restart")).to_be_visible(timeout=TIMEOUT_MS)
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        contents: list[str] = []
        while time.monotonic() < deadline:
            contents = [m["content"] for m in _messages(url, chat["id"], bob_token)]
            if "written while the server restarted" in contents:
                break
            time.sleep(0.25)
        assert contents.count("written while the server restarted") == 1, contents
        assert len(sockets) >= 2, "the client reconnected"
    finally:
        if context is not None:
            context.close()
        stop_own_server(process)
