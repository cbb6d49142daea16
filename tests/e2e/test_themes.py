"""Light and dark: the page follows prefers-color-scheme (while Settings says System, the default).
Its screenshots land in tests/e2e/screenshots/ (30-light.png, 31-dark.png); client/docs/ shows
test_group_admin.py's (42-group-light.png, 43-group-dark.png)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import post_json
from tests.e2e.direct_chat import alice_and_bob
from tests.e2e.test_messenger import TIMEOUT_MS, expect
from tests.e2e.test_reading import alice_opens, bob_posts

pytestmark = pytest.mark.e2e

LINES = [
    "Morning! Did the build finish?",
    "Yes, all green on both databases.",
    "Great, shipping the client fixes today then.",
    "The day labels no longer pile up when you scroll back.",
    "And a long chat now opens at the first unread message.",
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_page_follows_the_systems_colour_scheme(
    browser: Any, e2e_server: str, screenshot_dir: Any, scheme: str
) -> None:
    direct = alice_and_bob(e2e_server)
    sent = bob_posts(direct, LINES[:3])
    post_json(f"{direct.url}/api/chats/{direct.chat['id']}/read", {"message_id": sent[-1]["id"]}, direct.token("alice"))
    post_json(
        f"{direct.url}/api/chats/{direct.chat['id']}/messages", {"content": "Sounds good to me."}, direct.token("alice")
    )
    bob_posts(direct, LINES[3:])
    context, page = alice_opens(browser, direct, {"width": 1100, "height": 640})
    try:
        page.emulate_media(color_scheme=scheme)
        expect(page.locator(".unread-divider")).to_be_visible(timeout=TIMEOUT_MS)
        background = page.evaluate("getComputedStyle(document.querySelector('.chat')).backgroundColor")
        assert (background == "rgb(14, 22, 33)") == (scheme == "dark"), background
        page.screenshot(path=str(screenshot_dir / f"{30 if scheme == 'light' else 31}-{scheme}.png"))
    finally:
        context.close()
