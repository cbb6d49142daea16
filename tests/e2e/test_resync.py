"""The browser client across a Redis outage: a message posted while Redis is down reaches the open
chat once Redis is back, through the server's `resync` frame -- on the same socket, no reconnect.

A server of its own (SQLite, and a redis-server of the test's own that is killed and started
again by its pid), not the session's e2e server: the shared Redis is never touched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import free_port, own_server_env, post_json, start_own_server, stop_own_server
from tests.e2e.direct_chat import alice_and_bob, alice_on_the_chat
from tests.e2e.test_messenger import TIMEOUT_MS, expect
from tests.own_redis import REDIS_SERVER, OwnRedis

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server to start a Redis of the test's own"),
]


@pytest.fixture(scope="module")
def outage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, OwnRedis]]:
    data_dir = tmp_path_factory.mktemp("e2e-outage")
    own = OwnRedis(data_dir)
    own.start()
    env = own_server_env(data_dir, REDIS_URL=own.url, CHANNEL_LAYER_PREFIX="e2e-outage")
    port = free_port()
    process = None
    try:
        process = start_own_server(env, port, data_dir / "daphne.log")
        yield f"http://127.0.0.1:{port}", own
    finally:
        stop_own_server(process, timeout=10)
        own.kill()


def test_a_message_lost_to_a_redis_outage_shows_in_the_open_chat_once_redis_is_back(
    browser: Any, outage_server: tuple[str, OwnRedis]
) -> None:
    url, own = outage_server
    # given: Alice and Bob, a direct chat between them, and Alice's browser open on it
    direct = alice_and_bob(url)
    chat = direct.chat
    context, page, sockets = alice_on_the_chat(browser, direct)
    try:
        # when: Redis dies, Bob posts meanwhile (stored: 201), and nothing reaches Alice
        own.kill()
        status, _ = post_json(
            f"{url}/api/chats/{chat['id']}/messages", {"content": "said while Redis was down"}, direct.token("bob")
        )
        assert status == 201
        bubble = page.locator(".msg .bubble__text", has_text="said while Redis was down")
        time.sleep(2)
        assert bubble.count() == 0
        # when Redis is back
        own.start()
        # then: the message shows, on the same socket
        expect(bubble).to_be_visible(timeout=TIMEOUT_MS)
        assert len(sockets) == 1, "caught up through the resync frame, not a reconnect"
    finally:
        context.close()
