"""Two tabs of one browser signed in as the same person: signing out in one signs out both."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.direct_chat import alice_and_bob, on_the_chat
from tests.e2e.test_messenger import expect

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width, height", [(1440, 900), (390, 844)])
def test_signing_out_in_one_tab_signs_out_the_others(browser: Any, e2e_server: str, width: int, height: int) -> None:
    # given Alice in two tabs of one browser, each with its socket open
    direct = alice_and_bob(e2e_server)
    context, first, _ = on_the_chat(browser, direct, "alice", viewport=(width, height))
    try:
        second = context.new_page()
        sockets: list[Any] = []
        second.on("websocket", lambda socket: sockets.append(socket))
        second.goto(direct.url)
        second.wait_for_function("() => window.messenger.store.state.connection === 'online'")
        assert sockets and not sockets[-1].is_closed()

        # when she signs out in the first (in one column, from the list of chats)
        if width < 700:
            first.get_by_role("button", name="Back to chats").click()
        first.get_by_role("button", name="Sign out").click()
        expect(first.locator(".auth__form")).to_be_visible()

        # then the second shows the sign-in screen with a reason and its socket is closed
        expect(second.locator(".auth__form")).to_be_visible()
        expect(second.get_by_text("You signed out in another tab.")).to_be_visible()
        second.wait_for_function("() => !window.messenger.store.state.user")
        for _ in range(50):
            if all(socket.is_closed() for socket in sockets):
                break
            second.wait_for_timeout(100)
        assert all(socket.is_closed() for socket in sockets)
    finally:
        context.close()
