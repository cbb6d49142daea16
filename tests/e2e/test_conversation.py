"""The conversation features in the browser client, two people at once (API.md v1.1 "Messages").

Alice owns a group with Bob and has a direct chat with him; each is signed in in a browser context
of their own. The tests run in order, like a conversation: a rename reaches Bob live as a system
line, they reply to each other (and jump to the original through the quote), react, forward, pin,
mention one another with the composer's autocomplete, find a message by a CJK substring, mute the
group, and edit the last message with the Up arrow. Screenshots at 1440 and 390 px go to
tests/e2e/screenshots/ (ignored by git).
"""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import post_json
from tests.e2e.test_messenger import PASSWORD, TIMEOUT_MS, expect

pytestmark = pytest.mark.e2e


def call(url: str, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    """One API request as someone; the decoded answer (None for an empty one)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@dataclass
class Member:
    username: str
    display_name: str
    token: str
    user_id: int
    page: Any = None
    context: Any = None

    def send(self, text: str) -> None:
        composer = self.page.locator(".composer__input")
        composer.fill(text)
        composer.press("Enter")

    def message(self, text: str) -> Any:
        """The message row whose own text is `text` (not a quote of it)."""
        return self.page.locator(".msg").filter(has=self.page.locator(".bubble__text", has_text=text))

    def open_chat(self, chat_id: int) -> None:
        self.page.locator(f'.chat-list .chat-item[data-chat-id="{chat_id}"]').click()
        expect(self.page.locator(".chat__body")).to_be_visible()


@dataclass
class Conversation:
    url: str
    alice: Member
    bob: Member
    group_id: int
    direct_id: int


@pytest.fixture(scope="module")
def talk(browser: Any, e2e_server: str) -> Iterator[Conversation]:
    suffix = uuid.uuid4().hex[:6]
    members = {}
    for name in ("alice", "bob"):
        username = f"{name}_{suffix}"
        display_name = f"{name.title()} {suffix.upper()}"
        status, body = post_json(
            f"{e2e_server}/api/auth/register",
            {
                "username": username,
                "email": f"{username}@example.com",
                "password": PASSWORD,
                "display_name": display_name,
            },
        )
        assert status == 201, body
        members[name] = Member(username, display_name, body["access"], body["user"]["id"])
    alice, bob = members["alice"], members["bob"]
    _, group = post_json(
        f"{e2e_server}/api/chats", {"is_group": True, "title": "Trip", "member_ids": [bob.user_id]}, alice.token
    )
    _, direct = post_json(f"{e2e_server}/api/chats", {"is_group": False, "member_ids": [bob.user_id]}, alice.token)
    for member in (alice, bob):
        member.context = browser.new_context(viewport={"width": 1440, "height": 900})
        member.context.set_default_timeout(TIMEOUT_MS)
        member.page = member.context.new_page()
        member.page.on("pageerror", lambda error, who=member.username: print(f"[{who}] page error: {error}"))
        member.page.goto(e2e_server)
        member.page.fill("#auth-username", member.username)
        member.page.fill("#auth-password", PASSWORD)
        member.page.click("button[type=submit]")
        expect(member.page.locator(".sidebar__status")).to_be_hidden()  # the socket is connected
        member.open_chat(group["id"])
    yield Conversation(e2e_server, alice, bob, group["id"], direct["id"])
    for member in (alice, bob):
        member.context.close()


def test_a_rename_shows_as_a_system_line_live(talk: Conversation, screenshot_dir: Path) -> None:
    alice, bob = talk.alice, talk.bob
    expect(bob.page.locator(".system-line", has_text="created the group")).to_be_visible()

    call(talk.url, "PATCH", f"/api/chats/{talk.group_id}", alice.token, {"title": "Trip to Kyoto"})

    line = bob.page.locator(".system-line", has_text="renamed the group to")
    expect(line).to_contain_text(alice.display_name)
    expect(line).to_contain_text("Trip to Kyoto")
    expect(bob.page.locator(".chat__title")).to_have_text("Trip to Kyoto")
    expect(alice.page.locator(".system-line", has_text="You renamed the group")).to_be_visible()
    # A system line never counts as unread.
    assert call(talk.url, "GET", f"/api/chats/{talk.group_id}", bob.token)["unread_count"] == 0


def test_a_reply_quotes_its_original_and_the_quote_jumps_to_it(talk: Conversation, screenshot_dir: Path) -> None:
    alice, bob = talk.alice, talk.bob
    bob.send("Where shall we meet?")
    original = alice.message("Where shall we meet?")
    expect(original).to_be_visible()

    original.hover()
    original.get_by_role("button", name="Reply", exact=True).click()
    quote = alice.page.locator(".composer__quote")
    expect(quote).to_contain_text("Where shall we meet?")
    # Esc cancels the reply; R on the focused message starts it again.
    alice.page.locator(".composer__input").press("Escape")
    expect(quote).to_be_hidden()
    original.locator(".bubble").click()
    original.locator(".bubble").press("r")
    expect(quote).to_contain_text(bob.display_name)
    alice.send("At the station, 9:00")

    answer = bob.message("At the station, 9:00")
    expect(answer.locator(".quote")).to_contain_text("Where shall we meet?")
    expect(alice.message("At the station, 9:00").locator(".quote")).to_contain_text(bob.display_name)
    expect(quote).to_be_hidden()
    history = call(talk.url, "GET", f"/api/chats/{talk.group_id}/messages?limit=5", alice.token)["results"]
    sent = next(m for m in history if m["content"] == "At the station, 9:00")
    assert sent["reply_to"]["content"] == "Where shall we meet?"

    answer.locator(".quote").click()
    expect(bob.message("Where shall we meet?")).to_have_class(re.compile(r"\bmsg--flash\b"))
    alice.page.screenshot(path=str(screenshot_dir / "30-reply.png"))


def test_a_reply_to_an_old_message_loads_history_back_to_it(talk: Conversation) -> None:
    alice, bob = talk.alice, talk.bob
    first = call(
        talk.url, "POST", f"/api/chats/{talk.direct_id}/messages", bob.token, {"content": "Long ago: the plan"}
    )
    for n in range(130):
        call(talk.url, "POST", f"/api/chats/{talk.direct_id}/messages", alice.token, {"content": f"Filler {n:03d}"})
    call(
        talk.url,
        "POST",
        f"/api/chats/{talk.direct_id}/messages",
        bob.token,
        {"content": "Remember this?", "reply_to_id": first["id"]},
    )
    # A fresh page: the messages above reached the open page live; after a reload only history pages do.
    alice.page.reload()
    expect(alice.page.locator(".sidebar__status")).to_be_hidden()
    alice.open_chat(talk.direct_id)
    reply = alice.message("Remember this?")
    expect(reply).to_be_visible()
    expect(alice.message("Long ago: the plan")).to_have_count(0)  # beyond the first page

    reply.locator(".quote").click()

    original = alice.message("Long ago: the plan")
    expect(original).to_be_in_viewport()
    expect(original).to_have_class(re.compile(r"\bmsg--flash\b"))


def test_reactions_toggle_and_show_live_on_the_other_side(talk: Conversation, screenshot_dir: Path) -> None:
    alice, bob = talk.alice, talk.bob
    alice.open_chat(talk.group_id)
    target = bob.message("At the station, 9:00")
    target.hover()
    target.get_by_role("button", name="React").click()
    bob.page.get_by_role("menuitem", name="React with 🎉").click()

    chip = alice.message("At the station, 9:00").locator(".reaction", has_text="🎉")
    expect(chip).to_contain_text("1")
    expect(chip).not_to_have_class(re.compile(r"\breaction--mine\b"))
    mine = target.locator(".reaction", has_text="🎉")
    expect(mine).to_have_class(re.compile(r"\breaction--mine\b"))

    # Alice adds hers by clicking the chip: two now, hers highlighted on her side.
    chip.click()
    expect(chip).to_contain_text("2")
    expect(chip).to_have_class(re.compile(r"\breaction--mine\b"))
    expect(mine).to_contain_text("2")
    alice.page.screenshot(path=str(screenshot_dir / "31-reactions.png"))

    # Bob takes his back; a reaction from the picker's "more" works too.
    mine.click()
    expect(chip).to_contain_text("1")
    target.hover()
    target.get_by_role("button", name="React").click()
    bob.page.get_by_role("menuitem", name="More reactions").click()
    bob.page.get_by_role("menuitem", name="React with 🔥").click()
    expect(alice.message("At the station, 9:00").locator(".reaction", has_text="🔥")).to_contain_text("1")


def test_a_forward_names_its_sender_and_lands_in_the_chosen_chat(talk: Conversation) -> None:
    alice, bob = talk.alice, talk.bob
    original = alice.message("Where shall we meet?")
    original.hover()
    original.get_by_role("button", name="Forward").click()
    alice.page.locator(".forward input").fill(bob.display_name)
    alice.page.locator(f'.forward .picker__item[data-chat-id="{talk.direct_id}"]').click()

    forwarded = alice.message("Where shall we meet?")
    expect(forwarded.locator(".bubble__forwarded")).to_contain_text(f"Forwarded from {bob.display_name}")
    expect(alice.page.locator(".chat__title")).to_have_text(bob.display_name)
    bob.open_chat(talk.direct_id)
    expect(bob.message("Where shall we meet?").locator(".bubble__forwarded")).to_be_visible()


def test_a_pin_shows_in_the_pinned_bar_on_both_sides(talk: Conversation, screenshot_dir: Path) -> None:
    alice, bob = talk.alice, talk.bob
    alice.open_chat(talk.group_id)
    bob.open_chat(talk.group_id)
    # A member of a group cannot pin; the owner can.
    bob.message("Where shall we meet?").hover()
    expect(bob.message("Where shall we meet?").get_by_role("button", name="Pin message")).to_have_count(0)
    target = alice.message("At the station, 9:00")
    target.hover()
    target.get_by_role("button", name="Pin message").click()

    for member in (alice, bob):
        expect(member.page.locator(".pinned")).to_contain_text("At the station, 9:00")
        expect(member.page.locator(".system-line", has_text="pinned a message")).to_be_visible()
    alice.page.screenshot(path=str(screenshot_dir / "32-pinned.png"))

    bob.page.locator(".pinned__open").click()
    expect(bob.message("At the station, 9:00")).to_have_class(re.compile(r"\bmsg--flash\b"))

    alice.page.get_by_role("button", name="Unpin message").first.click()
    expect(bob.page.locator(".pinned")).to_be_hidden()


def test_a_mention_autocompletes_highlights_and_lists_under_mentions(talk: Conversation, screenshot_dir: Path) -> None:
    alice, bob = talk.alice, talk.bob
    composer = bob.page.locator(".composer__input")
    composer.fill("")
    composer.type(f"@{alice.username[:4]}", delay=20)
    option = bob.page.locator(".composer__mention", has_text=alice.username)
    expect(option).to_be_visible()
    bob.page.screenshot(path=str(screenshot_dir / "33-mention-autocomplete.png"))
    composer.press("Enter")
    expect(composer).to_have_value(f"@{alice.username} ")
    composer.type("are you bringing the tickets?")
    composer.press("Enter")

    mention = alice.message("are you bringing the tickets?").locator(".mention--me")
    expect(mention).to_have_text(f"@{alice.username}")

    # Alice goes to another chat, then opens the mention from the Mentions view.
    alice.open_chat(talk.direct_id)
    alice.page.get_by_role("button", name="Mentions").click()
    found = alice.page.locator(".chat-list .found", has_text="are you bringing the tickets?")
    expect(found).to_be_visible()
    alice.page.screenshot(path=str(screenshot_dir / "34-mentions.png"))
    found.click()
    expect(alice.page.locator(".chat__title")).to_have_text("Trip to Kyoto")
    expect(alice.message("are you bringing the tickets?")).to_have_class(re.compile(r"\bmsg--flash\b"))
    alice.page.get_by_role("button", name="Back to chats").click()


def test_search_finds_a_cjk_substring_and_opens_the_chat_at_it(talk: Conversation, screenshot_dir: Path) -> None:
    alice, bob = talk.alice, talk.bob
    alice.open_chat(talk.group_id)
    bob.open_chat(talk.group_id)
    bob.send("我们明天去北京吃饭")
    expect(alice.message("我们明天去北京吃饭")).to_be_visible()
    alice.open_chat(talk.direct_id)

    alice.page.fill(".sidebar__search input", "北京吃")
    hit = alice.page.locator(".chat-list .found", has_text="我们明天去")
    expect(hit.locator("mark.hit")).to_have_text("北京吃")
    alice.page.screenshot(path=str(screenshot_dir / "35-search.png"))
    hit.click()

    expect(alice.page.locator(".chat__title")).to_have_text("Trip to Kyoto")
    expect(alice.message("我们明天去北京吃饭")).to_have_class(re.compile(r"\bmsg--flash\b"))
    alice.page.locator(".sidebar__search input").fill("")


def test_a_muted_chat_shows_a_grey_badge(talk: Conversation) -> None:
    alice, bob = talk.alice, talk.bob
    alice.open_chat(talk.group_id)
    alice.page.get_by_role("button", name="Chat menu").click()
    alice.page.get_by_role("menuitem", name="Mute notifications").click()
    expect(alice.page.locator(".chat__muted")).to_be_visible()
    assert call(talk.url, "GET", f"/api/chats/{talk.group_id}", alice.token)["muted"] is True

    alice.open_chat(talk.direct_id)
    call(talk.url, "POST", f"/api/chats/{talk.group_id}/messages", bob.token, {"content": "quiet news"})
    badge = alice.page.locator(f'.chat-item[data-chat-id="{talk.group_id}"] .badge')
    expect(badge).to_have_class(re.compile(r"\bbadge--muted\b"))
    # The title's unread total leaves the muted chat out.
    expect(alice.page).to_have_title("Messenger")

    alice.open_chat(talk.group_id)
    alice.page.get_by_role("button", name="Chat menu").click()
    alice.page.get_by_role("menuitem", name="Unmute notifications").click()
    expect(alice.page.locator(".chat__muted")).to_have_count(0)


def test_up_arrow_edits_my_last_message_and_escape_cancels(talk: Conversation) -> None:
    alice = talk.alice
    alice.send("See you at 9")
    # Stored and acked (a pending bubble is not editable yet: Up would find nothing to edit).
    expect(alice.message("See you at 9").and_(alice.page.locator(".msg[data-message-id]"))).to_be_visible()
    composer = alice.page.locator(".composer__input")
    composer.press("ArrowUp")
    expect(composer).to_have_value("See you at 9")
    expect(alice.page.locator(".composer__banner")).to_contain_text("Editing")
    composer.press("Escape")
    expect(composer).to_have_value("")

    composer.press("ArrowUp")
    composer.fill("See you at 9:30")
    composer.press("Enter")
    expect(talk.bob.message("See you at 9:30").locator(".bubble__edited")).to_be_visible()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_conversation_fits_1440_and_390_px(talk: Conversation, screenshot_dir: Path, scheme: str) -> None:
    alice = talk.alice
    alice.page.emulate_media(color_scheme=scheme)
    try:
        for width, height in ((1440, 900), (390, 800)):
            alice.page.set_viewport_size({"width": width, "height": height})
            expect(alice.page.locator(".chat__body")).to_be_visible()
            sideways = alice.page.evaluate(
                "() => { const s = document.querySelector('.chat__messages'); return s.scrollWidth - s.clientWidth; }"
            )
            assert sideways <= 0, f"the history scrolls sideways at {width} px"
            alice.page.screenshot(path=str(screenshot_dir / f"36-conversation-{width}-{scheme}.png"))
    finally:
        alice.page.set_viewport_size({"width": 1440, "height": 900})
        alice.page.emulate_media(color_scheme="light")
