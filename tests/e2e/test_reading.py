"""Reading a long chat at 1440 and 390 px: one day label at a time, the unread divider to open at,
the jump-to-newest button, and read marks only for what was on screen while the page had focus.

The server stamps created_at itself, so a chat over three days is made by rewriting the dates in the
history answers the page receives (page.route): the client only ever sees three days of messages.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import post_json
from tests.e2e.direct_chat import PASSWORD, DirectChat, alice_and_bob
from tests.e2e.test_messenger import TIMEOUT_MS, expect

pytestmark = pytest.mark.e2e

VIEWPORTS = {"wide": {"width": 1440, "height": 900}, "narrow": {"width": 390, "height": 844}}

# document.hasFocus() under the test's control: window.__focused = false is a window in the background.
FOCUS_SWITCH = "document.hasFocus = () => window.__focused !== false;"


def bob_posts(direct: DirectChat, texts: list[str]) -> list[dict[str, Any]]:
    sent = []
    for text in texts:
        status, body = post_json(
            f"{direct.url}/api/chats/{direct.chat['id']}/messages", {"content": text}, direct.token("bob")
        )
        assert status == 201, body
        sent.append(body)
    return sent


def unread_for_alice(direct: DirectChat) -> int:
    request = urllib.request.Request(f"{direct.url}/api/chats")
    request.add_header("Authorization", f"Bearer {direct.token('alice')}")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    chats = answer["results"] if isinstance(answer, dict) else answer
    return int(next(c for c in chats if c["id"] == direct.chat["id"])["unread_count"])


def settles_at(direct: DirectChat, expected: int, seconds: float = 5) -> None:
    """The server's unread count for Alice reaches `expected` (the page's read request may be in flight)."""
    deadline = time.monotonic() + seconds
    while (count := unread_for_alice(direct)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert count == expected


def spread_over_three_days(route: Any) -> None:
    """The history answer with messages 0-7 moved two days back and 8-17 one day (by their text)."""
    response = route.fetch()
    body = response.json()
    for message in body.get("results", []):
        number = int(message["content"].rsplit(" ", 1)[-1])
        days = 2 if number < 8 else 1 if number < 18 else 0
        if days:
            at = datetime.fromisoformat(message["created_at"].replace("Z", "+00:00")) - timedelta(days=days)
            message["created_at"] = at.astimezone(UTC).isoformat()
    route.fulfill(
        response=response, body=json.dumps(body), headers={**response.headers, "content-type": "application/json"}
    )


def alice_opens(
    browser: Any, direct: DirectChat, viewport: dict[str, int], three_days: bool = False
) -> tuple[Any, Any]:
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(FOCUS_SWITCH)
    if three_days:
        context.route("**/api/chats/*/messages?*", spread_over_three_days)
    page = context.new_page()
    page.goto(direct.url)
    page.fill("#auth-username", f"alice_{direct.suffix}")
    page.fill("#auth-password", PASSWORD)
    page.click("button[type=submit]")
    page.locator(".chat-list .chat-item", has_text=f"Bob {direct.suffix}").click()
    page.locator(".chat__title", has_text=f"Bob {direct.suffix}").wait_for()
    return context, page


def in_view(page: Any, text: str) -> bool:
    """Whether the bubble with exactly this text lies inside the message scroller's box."""
    return bool(
        page.evaluate(
            """(text) => {
              const scroller = document.querySelector('.chat__messages').getBoundingClientRect();
              const bubble = [...document.querySelectorAll('.msg .bubble__text')].find((b) => b.textContent === text);
              if (!bubble) return false;
              const box = bubble.getBoundingClientRect();
              return box.bottom > scroller.top && box.top < scroller.bottom;
            }""",
            text,
        )
    )


def scroll_to(page: Any, text: str) -> None:
    """Scroll the history so the bubble with this text sits just below the top."""
    page.evaluate(
        """(text) => {
          const target = [...document.querySelectorAll('.bubble__text')].find((b) => b.textContent === text);
          const scroller = document.querySelector('.chat__messages');
          scroller.scrollTop += target.getBoundingClientRect().top - scroller.getBoundingClientRect().top - 60;
          scroller.dispatchEvent(new Event('scroll'));
        }""",
        text,
    )


@pytest.fixture(params=list(VIEWPORTS), ids=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    return VIEWPORTS[request.param]


def test_only_the_current_days_label_shows_at_the_top(
    browser: Any, e2e_server: str, viewport: dict[str, int], screenshot_dir: Any
) -> None:
    # given a chat whose 48 messages span three days, all read
    direct = alice_and_bob(e2e_server)
    sent = bob_posts(direct, [f"Day message {n}" for n in range(48)])
    post_json(f"{direct.url}/api/chats/{direct.chat['id']}/read", {"message_id": sent[-1]["id"]}, direct.token("alice"))
    context, page = alice_opens(browser, direct, viewport, three_days=True)
    try:
        expect(page.locator(".day")).to_have_count(3)
        # when Alice scrolls to the middle of yesterday's messages
        scroll_to(page, "Day message 12")
        # then one label floats, yesterday's, and no separator sticks over it
        expect(page.locator(".chat__day-float")).to_have_text("Yesterday")
        positions = page.eval_on_selector_all(".day", "days => days.map((d) => getComputedStyle(d).position)")
        assert set(positions) == {"static"}, positions
        page.screenshot(path=str(screenshot_dir / f"20-day-label-{viewport['width']}.png"))
        # and among today's messages the label is today's
        scroll_to(page, "Day message 20")
        expect(page.locator(".chat__day-float")).to_have_text("Today")
    finally:
        context.close()


def test_a_chat_opens_at_the_unread_divider_and_marks_only_what_was_seen(
    browser: Any, e2e_server: str, viewport: dict[str, int], screenshot_dir: Any
) -> None:
    # given Alice read Bob's first five messages and 40 more arrived since
    direct = alice_and_bob(e2e_server)
    first = bob_posts(direct, [f"Read {n}" for n in range(5)])
    post_json(
        f"{direct.url}/api/chats/{direct.chat['id']}/read", {"message_id": first[-1]["id"]}, direct.token("alice")
    )
    bob_posts(direct, [f"Unread {n}" for n in range(40)])
    context, page = alice_opens(browser, direct, viewport)
    try:
        # when she opens the chat, it shows the divider above the first unread, not the end
        divider = page.locator(".unread-divider")
        expect(divider).to_have_text("Unread messages")
        expect(divider).to_be_in_viewport()
        assert in_view(page, "Unread 0")
        assert not in_view(page, "Unread 39")
        expect(page.locator(".chat__jump")).to_be_visible()
        sideways = page.evaluate(
            "() => { const s = document.querySelector('.chat__messages'); return s.scrollWidth - s.clientWidth; }"
        )
        assert sideways <= 0, f"the history scrolls sideways by {sideways}px"
        page.screenshot(path=str(screenshot_dir / f"21-unread-divider-{viewport['width']}.png"))
        # then only what she has seen is read: the server still counts the rest
        page.wait_for_timeout(800)
        assert 0 < unread_for_alice(direct) < 40

        # when a message arrives while she is scrolled up, a pill counts it and nothing more is read
        before = unread_for_alice(direct)
        bob_posts(direct, ["Arrived while scrolled up"])
        expect(page.locator(".chat__jump-count")).to_have_text("1 new message")
        page.wait_for_timeout(500)
        assert unread_for_alice(direct) == before + 1

        # when she jumps to the newest, everything is seen and read
        page.locator(".chat__jump").click()
        expect(page.locator(".chat__jump")).to_be_hidden()
        assert in_view(page, "Arrived while scrolled up")
        page.wait_for_function("() => !document.title.startsWith('(')")
        settles_at(direct, 0)
    finally:
        context.close()


def test_a_message_arriving_while_the_window_is_unfocused_stays_unread(
    browser: Any, e2e_server: str, viewport: dict[str, int]
) -> None:
    # given Alice at the bottom of a chat she has read
    direct = alice_and_bob(e2e_server)
    context, page = alice_opens(browser, direct, viewport)
    try:
        # when her window loses focus and Bob writes
        page.evaluate("() => { window.__focused = false; }")
        bob_posts(direct, ["While you were away"])
        expect(page.locator(".bubble__text", has_text="While you were away")).to_be_visible()
        page.wait_for_timeout(800)
        # then it is not read yet
        assert unread_for_alice(direct) == 1
        # when she comes back, it is
        page.evaluate("() => { window.__focused = true; window.dispatchEvent(new Event('focus')); }")
        page.wait_for_function("() => !document.title.startsWith('(')")
        settles_at(direct, 0)
    finally:
        context.close()
