"""Two people use the browser client against a live server, each in their own browser context.

The tests in this module share one pair of signed-in users and run in order, like a conversation:
they register and find each other, chat live both ways, watch unread badges rise and clear, share
an image that shows in the chat and the gallery, reload, and lose their connection without losing
a message. Screenshots of the main screens go to tests/e2e/screenshots/ (ignored by git).
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
PASSWORD = "Quiet-Harbor-2048"


@dataclass
class Person:
    page: Any  # playwright.sync_api.Page
    context: Any  # playwright.sync_api.BrowserContext
    username: str
    display_name: str

    def send(self, text: str) -> None:
        composer = self.page.locator(".composer__input")
        composer.fill(text)
        composer.press("Enter")

    def bubble(self, text: str) -> Any:
        return self.page.locator(".msg .bubble__text", has_text=text)

    def chat_item(self, title: str) -> Any:
        """The sidebar entry whose title is exactly `title` (a preview may mention the name too)."""
        exact_title = self.page.locator(".chat-item__title", has_text=re.compile(f"^{re.escape(title)}$"))
        return self.page.locator(".chat-list .chat-item").filter(has=exact_title)

    def open_chat(self, title: str) -> None:
        self.chat_item(title).click()
        self.page.locator(".chat__title", has_text=title).wait_for(timeout=TIMEOUT_MS)


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def register(page: Any, base_url: str, username: str, display_name: str, shots: Path | None = None) -> None:
    page.goto(base_url)
    page.locator("text=Create an account").click()
    page.fill("#auth-username", username)
    page.fill("#auth-display_name", display_name)
    page.fill("#auth-email", f"{username}@example.com")
    page.fill("#auth-password", "short")
    page.click("button[type=submit]")
    # The password rule's error appears next to the password field (the form's own check, worded
    # like the server's).
    expect(page.locator("#auth-password-error")).to_contain_text("at least 8 characters", timeout=TIMEOUT_MS)
    if shots:
        page.screenshot(path=str(shots / "01-register-error.png"))
    page.fill("#auth-password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".sidebar__me")).to_contain_text(display_name, timeout=TIMEOUT_MS)
    expect(page.locator(".sidebar__status")).to_be_hidden(timeout=TIMEOUT_MS)  # the socket is connected


def png_bytes(color: tuple[int, int, int] = (42, 125, 225), size: tuple[int, int] = (320, 200)) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(image)
    draw.ellipse((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def pair(browser: Any, e2e_server: str, screenshot_dir: Path) -> Iterator[tuple[Person, Person]]:
    """Alice and Bob, registered through the UI, each in a separate browser context."""
    suffix = uuid.uuid4().hex[:6]
    people = []
    for name in ("alice", "bob"):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.on("pageerror", lambda error, who=name: print(f"[{who}] page error: {error}"))
        person = Person(page, context, f"{name}_{suffix}", f"{name.title()} {suffix.upper()}")
        if name == "alice":
            page.goto(e2e_server)
            page.locator(".auth__form").wait_for()
            page.screenshot(path=str(screenshot_dir / "00-sign-in.png"))
        register(page, e2e_server, person.username, person.display_name, screenshot_dir if name == "alice" else None)
        people.append(person)
    alice, bob = people
    yield alice, bob
    for person in people:
        person.context.close()


def test_people_find_each_other_by_search(pair: tuple[Person, Person], screenshot_dir: Path) -> None:
    alice, bob = pair

    alice.page.fill(".sidebar__search input", bob.username[:8])
    result = alice.page.locator(".chat-list .chat-item", has_text=f"@{bob.username}")
    expect(result).to_be_visible()
    alice.page.screenshot(path=str(screenshot_dir / "02-search.png"))
    result.click()

    expect(alice.page.locator(".chat__title")).to_have_text(bob.display_name)
    expect(alice.chat_item(bob.display_name)).to_be_visible()


def test_messages_arrive_live_both_ways(pair: tuple[Person, Person], screenshot_dir: Path) -> None:
    alice, bob = pair

    alice.send("Hello Bob! 👋 Are you there?")
    # Bob has never loaded this chat: it reaches his sidebar over the socket.
    expect(bob.chat_item(alice.display_name)).to_contain_text("Hello Bob!")
    bob.open_chat(alice.display_name)
    expect(bob.bubble("Hello Bob! 👋 Are you there?")).to_be_visible()

    bob.page.locator(".composer__input").type("Hi Al", delay=30)
    expect(alice.page.locator(".chat__subtitle")).to_have_text("typing…")
    bob.page.locator(".composer__input").fill("Hi Alice!\nYes, right here.")
    bob.page.locator(".composer__input").press("Enter")

    expect(alice.bubble("Yes, right here.")).to_be_visible()
    expect(alice.page.locator(".chat__subtitle")).not_to_have_text("typing…")
    # Bob has read Alice's message, so it shows the read ticks on her side.
    expect(alice.page.locator(".msg--own .ticks--read")).to_have_count(1)
    assert bob.page.locator(".msg--own").count() == 1
    assert bob.page.locator(".msg--pending").count() == 0
    alice.page.screenshot(path=str(screenshot_dir / "03-chat-alice.png"))
    bob.page.screenshot(path=str(screenshot_dir / "04-chat-bob.png"))


def test_unread_badges_rise_and_clear(pair: tuple[Person, Person], screenshot_dir: Path) -> None:
    alice, bob = pair
    group = f"Weekend plans {uuid.uuid4().hex[:4]}"

    # Bob starts a group with Alice and stays in it, away from the direct chat.
    bob.page.get_by_role("button", name="New group").click()
    bob.page.fill("#group-title", group)
    bob.page.fill("#group-search", alice.username)
    bob.page.locator(".picker__item", has_text=alice.display_name).click()
    bob.page.get_by_role("button", name="Create group").click()
    expect(bob.page.locator(".chat__title")).to_have_text(group)
    expect(alice.chat_item(group)).to_be_visible()

    alice.send("First unread")
    alice.send("Second unread")

    badge = bob.chat_item(alice.display_name).locator(".badge")
    expect(badge).to_have_text("2")
    expect(bob.page).to_have_title("(2) Messenger")
    bob.page.screenshot(path=str(screenshot_dir / "05-unread-badge.png"))

    bob.open_chat(alice.display_name)
    expect(badge).to_have_count(0)
    expect(bob.page).to_have_title("Messenger")
    expect(alice.page.locator(".msg--own .ticks--read")).to_have_count(3)

    # And after a reload the server agrees that nothing is unread.
    bob.page.reload()
    expect(bob.chat_item(alice.display_name)).to_be_visible()
    expect(bob.chat_item(alice.display_name).locator(".badge")).to_have_count(0)


def test_group_info_lists_members_and_roles(pair: tuple[Person, Person], screenshot_dir: Path) -> None:
    alice, bob = pair
    group_item = bob.page.locator(".chat-list .chat-item", has_text="Weekend plans")
    group_item.click()
    bob.page.get_by_role("button", name="Group info").click()

    members = bob.page.locator(".panel .member")
    expect(members).to_have_count(2)
    expect(members.filter(has_text=bob.display_name)).to_contain_text("Owner")
    expect(members.filter(has_text=alice.display_name)).to_contain_text("Member")
    bob.page.screenshot(path=str(screenshot_dir / "06-group-info.png"))
    bob.page.get_by_role("button", name="Close panel").click()


def test_a_group_shows_each_senders_username_beside_the_display_name(pair: tuple[Person, Person]) -> None:
    alice, bob = pair
    alice.page.locator(".chat-list .chat-item", has_text="Weekend plans").click()
    alice.send("Who is who here?")
    bob.page.locator(".chat-list .chat-item", has_text="Weekend plans").click()

    # The name is isolated (<bdi>) and the @username, which no one else has, stands beside it.
    sender = bob.page.locator(".msg", has_text="Who is who here?").locator(".bubble__sender")
    expect(sender.locator("bdi")).to_have_text(alice.display_name)
    expect(sender.locator(".handle")).to_have_text(f"@{alice.username}")
    bob.page.get_by_role("button", name="Group info").click()
    expect(bob.page.locator(".panel .member .handle")).to_have_text([f"@{bob.username}", f"@{alice.username}"])
    bob.page.get_by_role("button", name="Close panel").click()


def test_an_image_shows_in_the_chat_and_the_gallery(
    pair: tuple[Person, Person], screenshot_dir: Path, tmp_path: Path
) -> None:
    alice, bob = pair
    bob.open_chat(alice.display_name)
    alice.open_chat(bob.display_name)
    image = tmp_path / "sunset.png"
    image.write_bytes(png_bytes())

    alice.page.set_input_files("#composer-file", str(image))
    expect(alice.page.locator(".composer__upload")).to_contain_text("Ready")
    alice.page.screenshot(path=str(screenshot_dir / "07-upload-preview.png"))
    alice.send("Look at this")

    received = bob.page.locator(".msg--other", has_text="Look at this").locator("img.bubble__image")
    expect(received).to_have_attribute("src", re.compile(r"^blob:"))
    bob.page.wait_for_function("img => img.complete && img.naturalWidth === 320", arg=received.element_handle())
    bob.page.screenshot(path=str(screenshot_dir / "08-image-received.png"))

    bob.page.get_by_role("button", name="Shared media").click()
    thumbnail = bob.page.locator(".gallery__item img")
    expect(thumbnail).to_have_count(1)
    expect(thumbnail).to_have_attribute("src", re.compile(r"^blob:"))
    bob.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    bob.page.screenshot(path=str(screenshot_dir / "09-gallery.png"))
    bob.page.get_by_role("button", name="Close panel").click()


def test_a_reload_keeps_the_session_and_the_open_chat(pair: tuple[Person, Person]) -> None:
    alice, bob = pair
    bob.open_chat(alice.display_name)

    bob.page.reload()

    expect(bob.page.locator(".sidebar__me")).to_contain_text(bob.display_name)
    expect(bob.page.locator(".auth__form")).to_have_count(0)
    expect(bob.page.locator(".chat__title")).to_have_text(alice.display_name)
    expect(bob.bubble("Hello Bob! 👋 Are you there?")).to_be_visible()
    expect(bob.page.locator(".sidebar__status")).to_be_hidden()


def test_a_dropped_socket_reconnects_and_misses_nothing(pair: tuple[Person, Person], screenshot_dir: Path) -> None:
    alice, bob = pair
    bob.open_chat(alice.display_name)
    alice.open_chat(bob.display_name)

    # Bob loses the network; his socket is gone and cannot come back yet.
    bob.context.set_offline(True)
    bob.page.evaluate("window.messenger.socket.raw && window.messenger.socket.raw.close()")
    expect(bob.page.locator(".sidebar__status")).to_have_text("Connecting…")

    missed = [f"While you were away #{n}" for n in range(1, 4)]
    for text in missed:
        alice.send(text)
    for text in missed:
        expect(alice.bubble(text)).to_have_count(1)
    alice.page.wait_for_function("() => document.querySelectorAll('.msg--pending').length === 0", timeout=TIMEOUT_MS)
    bob.send("Typed while offline")
    expect(bob.page.locator(".msg--pending", has_text="Typed while offline")).to_be_visible()
    bob.page.wait_for_timeout(1000)
    for text in missed:
        expect(bob.bubble(text)).to_have_count(0)
    bob.page.screenshot(path=str(screenshot_dir / "10-offline.png"))

    bob.context.set_offline(False)

    expect(bob.page.locator(".sidebar__status")).to_be_hidden(timeout=40_000)
    for text in missed:
        expect(bob.bubble(text)).to_have_count(1)
    texts = bob.page.locator(".msg .bubble__text").all_inner_texts()
    positions = [texts.index(text) for text in missed]
    assert positions == sorted(positions), texts
    expect(bob.page.locator(".msg--pending")).to_have_count(0)
    expect(bob.bubble("Typed while offline")).to_have_count(1)
    expect(alice.bubble("Typed while offline")).to_have_count(1)
    # The live connection works again, too.
    alice.send("Welcome back")
    expect(bob.bubble("Welcome back")).to_have_count(1)
    bob.page.screenshot(path=str(screenshot_dir / "11-reconnected.png"))


def test_older_history_loads_when_scrolling_up(pair: tuple[Person, Person], screenshot_dir: Path) -> None:
    alice, bob = pair
    # Alice fills the group with more messages than one history page, through the app's own API client.
    group_id = alice.page.evaluate(
        """async () => {
            const app = window.messenger;
            const group = app.store.chatList().find((chat) => chat.is_group);
            for (let n = 1; n <= 120; n += 1) {
                await app.api.sendMessage(group.id, { content: `History ${String(n).padStart(3, '0')}` });
            }
            return group.id;
        }"""
    )
    bob.page.reload()  # Bob heard all of it live; start from an empty store to page through history
    bob.page.locator(f'.chat-list .chat-item[data-chat-id="{group_id}"]').click()
    expect(bob.bubble("History 120")).to_be_visible()
    expect(bob.bubble("History 001")).to_have_count(0)

    scroller = bob.page.locator(".chat__messages")
    for _ in range(10):
        if bob.bubble("History 001").count():
            break
        scroller.evaluate("element => { element.scrollTop = 0; }")
        bob.page.wait_for_timeout(400)

    expect(bob.bubble("History 001")).to_have_count(1)
    expect(bob.page.locator(".chat__start")).to_be_visible()
    texts = [t for t in bob.page.locator(".msg .bubble__text").all_inner_texts() if t.startswith("History")]
    assert texts == [f"History {n:03d}" for n in range(1, 121)], texts[:5]
    bob.page.screenshot(path=str(screenshot_dir / "12-history-top.png"))


def test_edits_and_deletions_show_on_both_sides(pair: tuple[Person, Person]) -> None:
    alice, bob = pair
    alice.open_chat(bob.display_name)
    bob.open_chat(alice.display_name)
    alice.send("Meet at 7")
    expect(bob.bubble("Meet at 7")).to_have_count(1)

    mine = alice.page.locator(".msg--own", has_text="Meet at 7")
    mine.hover()
    mine.get_by_role("button", name="Edit message").click()
    composer = alice.page.locator(".composer__input")
    expect(composer).to_have_value("Meet at 7")
    composer.fill("Meet at 8")
    composer.press("Enter")

    expect(composer).to_have_value("")  # the composer is back to the (empty) draft
    edited = bob.page.locator(".msg--other", has_text="Meet at 8")
    expect(edited.locator(".bubble__edited")).to_have_text("edited")
    expect(bob.bubble("Meet at 7")).to_have_count(0)

    alice.page.once("dialog", lambda dialog: dialog.accept())
    mine = alice.page.locator(".msg--own", has_text="Meet at 8")
    mine.hover()
    mine.get_by_role("button", name="Delete message").click()

    expect(bob.bubble("Meet at 8")).to_have_count(0)
    expect(bob.page.locator(".msg--other .bubble__deleted").last).to_have_text("Message deleted")
    expect(alice.page.locator(".msg--own .bubble__deleted").last).to_have_text("Message deleted")


def test_narrow_window_shows_one_column(pair: tuple[Person, Person], screenshot_dir: Path) -> None:
    alice, _bob = pair
    alice.page.set_viewport_size({"width": 390, "height": 760})
    try:
        expect(alice.page.locator(".chat__back")).to_be_visible()
        expect(alice.page.locator(".sidebar")).to_be_hidden()
        alice.page.screenshot(path=str(screenshot_dir / "13-narrow-chat.png"))
        alice.page.locator(".chat__back").click()
        expect(alice.page.locator(".sidebar")).to_be_visible()
        alice.page.screenshot(path=str(screenshot_dir / "14-narrow-list.png"))
    finally:
        alice.page.set_viewport_size({"width": 1280, "height": 800})


def test_logout_ends_the_session(pair: tuple[Person, Person], screenshot_dir: Path) -> None:
    _alice, bob = pair

    bob.page.get_by_role("button", name="Sign out").click()

    expect(bob.page.locator(".auth__form")).to_be_visible()
    bob.page.reload()
    expect(bob.page.locator(".auth__form")).to_be_visible()
    assert bob.page.evaluate("localStorage.getItem('messenger.refresh')") is None
