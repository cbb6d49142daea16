"""Alice and Bob in a direct chat on a server of a test's own, and Alice's browser open on it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tests.e2e.conftest import post_json
from tests.e2e.test_messenger import TIMEOUT_MS, expect

PASSWORD = "Quiet-Harbor-2048"


@dataclass
class DirectChat:
    url: str
    suffix: str
    people: dict[str, Any]  # "alice", "bob": each one's register answer (user, access, refresh)
    chat: dict[str, Any]

    def token(self, name: str) -> str:
        return str(self.people[name]["access"])


def alice_and_bob(url: str) -> DirectChat:
    suffix = uuid.uuid4().hex[:6]
    people = {}
    for name in ("alice", "bob"):
        status, body = post_json(
            f"{url}/api/auth/register",
            {
                "username": f"{name}_{suffix}",
                "email": f"{name}_{suffix}@example.com",
                "password": PASSWORD,
                "display_name": f"{name.title()} {suffix}",
            },
        )
        assert status == 201, body
        people[name] = body
    direct = {"is_group": False, "member_ids": [people["bob"]["user"]["id"]]}
    status, chat = post_json(f"{url}/api/chats", direct, people["alice"]["access"])
    assert status in (200, 201), chat
    return DirectChat(url, suffix, people, chat)


def alice_on_the_chat(browser: Any, direct: DirectChat, init_script: str | None = None) -> tuple[Any, Any, list[Any]]:
    """Alice signed in, her socket connected, the chat with Bob open: (context, page, the page's sockets)."""
    return on_the_chat(browser, direct, "alice", init_script=init_script)


def on_the_chat(
    browser: Any,
    direct: DirectChat,
    name: str,
    init_script: str | None = None,
    viewport: dict[str, int] | None = None,
) -> tuple[Any, Any, list[Any]]:
    """`name` ("alice" or "bob") signed in, their socket connected, the chat with the other open."""
    other = "Bob" if name == "alice" else "Alice"
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    sockets: list[Any] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    page.goto(direct.url)
    page.fill("#auth-username", f"{name}_{direct.suffix}")
    page.fill("#auth-password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".sidebar__status")).to_be_hidden(timeout=TIMEOUT_MS)  # the socket is connected
    page.locator(".chat-list .chat-item", has_text=f"{other} {direct.suffix}").click()
    page.locator(".chat__title", has_text=f"{other} {direct.suffix}").wait_for(timeout=TIMEOUT_MS)
    return context, page, sockets
