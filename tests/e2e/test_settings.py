"""The settings page at 1440 and 390 px: a new display name and picture reach the other person, a new
password shuts out the old one while this session continues, and the theme switches at once and
overrides the system's. Screenshots of the page: tests/e2e/screenshots/40-settings-light-<width>.png and
41-settings-dark-<width>.png."""

from __future__ import annotations

import contextlib
import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import post_json
from tests.e2e.direct_chat import PASSWORD, DirectChat, alice_and_bob
from tests.e2e.test_messenger import TIMEOUT_MS, expect, png_bytes

pytestmark = pytest.mark.e2e

VIEWPORTS = {"wide": {"width": 1440, "height": 900}, "narrow": {"width": 390, "height": 844}}
DARK_CHAT = "rgb(14, 22, 33)"  # --chat-bg of the dark theme


@contextlib.contextmanager
def signed_in(browser: Any, url: str, username: str, viewport: dict[str, int], scheme: str = "light") -> Iterator[Any]:
    """A page of a fresh browser context signed in as `username`, its socket connected; closed after."""
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    try:
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.on("pageerror", lambda error: print(f"[{username}] page error: {error}"))
        page.goto(url)
        page.fill("#auth-username", username)
        page.fill("#auth-password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_function("() => window.messenger.store.state.connection === 'online'")
        yield page
    finally:
        context.close()


@contextlib.contextmanager
def both_signed_in(browser: Any, direct: DirectChat, viewport: dict[str, int]) -> Iterator[tuple[Any, Any]]:
    """Alice's page and Bob's, each in a browser context of its own."""
    with (
        signed_in(browser, direct.url, f"alice_{direct.suffix}", viewport) as alice,
        signed_in(browser, direct.url, f"bob_{direct.suffix}", viewport) as bob,
    ):
        yield alice, bob


def open_settings(page: Any) -> Any:
    page.locator(".sidebar").get_by_role("button", name="Settings").click()
    dialog = page.get_by_role("dialog", name="Settings")
    expect(dialog).to_be_visible()
    return dialog


def get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url)
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def login_status(url: str, username: str, password: str) -> int:
    try:
        status, _ = post_json(f"{url}/api/auth/login", {"username": username, "password": password})
        return status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(params=list(VIEWPORTS), ids=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    return VIEWPORTS[request.param]


@pytest.fixture
def direct(e2e_server: str) -> DirectChat:
    return alice_and_bob(e2e_server)


def test_a_new_display_name_reaches_the_other_person(
    browser: Any, direct: DirectChat, viewport: dict[str, int]
) -> None:
    # given Alice with her settings open, and Bob signed in
    with both_signed_in(browser, direct, viewport) as (alice, bob):
        dialog = open_settings(alice)
        # when she saves a new display name
        dialog.locator("#settings-display-name").fill(f"Ada {direct.suffix}")
        dialog.get_by_role("button", name="Save name").click()
        # then her sidebar shows it at once, and Bob's chat list names her so once it loads again
        expect(dialog.get_by_text("Display name saved.")).to_be_visible()
        expect(alice.locator(".sidebar__me")).to_contain_text(f"Ada {direct.suffix}")
        bob.reload()
        expect(bob.locator(".chat-list .chat-item__title", has_text=f"Ada {direct.suffix}")).to_be_visible()


def test_a_new_name_and_picture_reach_the_other_persons_open_window_live(browser: Any, direct: DirectChat) -> None:
    # given Bob with his chat with Alice open at 1440 px, and Alice in her settings
    with both_signed_in(browser, direct, VIEWPORTS["wide"]) as (alice, bob):
        bob.locator(".chat-list .chat-item", has_text=f"Alice {direct.suffix}").click()
        header = bob.locator(".chat__header")
        expect(header.locator(".chat__title")).to_have_text(f"Alice {direct.suffix}")
        expect(header.locator(".avatar__picture")).to_have_count(0)
        bob.evaluate("() => { window.notReloaded = true; }")
        dialog = open_settings(alice)
        # when she saves a new display name
        dialog.locator("#settings-display-name").fill(f"Ada {direct.suffix}")
        dialog.get_by_role("button", name="Save name").click()
        # then Bob's chat header and chat list name her so, without a reload
        expect(header.locator(".chat__title")).to_have_text(f"Ada {direct.suffix}")
        item = bob.locator(".chat-list .chat-item", has_text=f"Ada {direct.suffix}")
        expect(item).to_be_visible()
        # when she sets a picture
        dialog.locator("#settings-avatar-file").set_input_files(
            {"name": "me.png", "mimeType": "image/png", "buffer": png_bytes((40, 160, 40), (300, 300))}
        )
        cropper = alice.get_by_role("dialog", name="Crop your picture")
        cropper.get_by_role("button", name="Save picture").click()
        expect(cropper).to_be_hidden()
        # then it shows beside her name in Bob's header and chat list, still without a reload
        me = get_json(f"{direct.url}/api/auth/me", direct.token("alice"))
        for place in (header, item):
            picture = place.locator(".avatar__picture")
            expect(picture).to_be_visible()
            bob.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
        assert bob.evaluate("(id) => window.messenger.store.userById(id).avatar_url", me["id"]) == me["avatar_url"]
        assert bob.evaluate("() => window.notReloaded") is True


def test_a_rename_reaches_the_group_bubbles_and_member_list_of_an_open_window(browser: Any, direct: DirectChat) -> None:
    # given a group of Alice and Bob with a message of hers, open in Bob's window with its members shown
    title = f"Crew {direct.suffix}"
    alice_id = direct.people["alice"]["user"]["id"]
    body = {"is_group": True, "title": title, "member_ids": [direct.people["bob"]["user"]["id"]]}
    _, group = post_json(f"{direct.url}/api/chats", body, direct.token("alice"))
    post_json(f"{direct.url}/api/chats/{group['id']}/messages", {"content": "Hello crew"}, direct.token("alice"))
    with signed_in(browser, direct.url, f"bob_{direct.suffix}", VIEWPORTS["wide"]) as bob:
        bob.locator(".chat-list .chat-item", has_text=title).click()
        bob.locator(".chat__title", has_text=title).click()
        member = bob.locator(f'.panel .member[data-user-id="{alice_id}"]')
        expect(member).to_contain_text(f"Alice {direct.suffix}")
        expect(bob.locator(".bubble__sender")).to_contain_text(f"Alice {direct.suffix}")
        bob.evaluate("() => { window.notReloaded = true; }")
        # when Alice renames herself (from any client)
        request = urllib.request.Request(
            f"{direct.url}/api/auth/me",
            data=json.dumps({"display_name": f"Ada {direct.suffix}"}).encode(),
            method="PATCH",
        )
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {direct.token('alice')}")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        # then Bob's bubble and member list name her so, without a reload
        expect(bob.locator(".bubble__sender")).to_contain_text(f"Ada {direct.suffix}")
        expect(member).to_contain_text(f"Ada {direct.suffix}")
        assert bob.evaluate("() => window.notReloaded") is True


def test_a_new_password_shuts_out_the_old_one_and_this_session_goes_on(
    browser: Any, direct: DirectChat, viewport: dict[str, int]
) -> None:
    # given Alice signed in, the rules shown before she types
    username = f"alice_{direct.suffix}"
    with signed_in(browser, direct.url, username, viewport) as page:
        dialog = open_settings(page)
        expect(dialog.locator("#settings-password-rules")).to_contain_text("At least 8 characters.")
        # when a wrong old password is tried, then the right one
        dialog.locator("#settings-old-password").fill("not-my-password")
        dialog.locator("#settings-new-password").fill("Brand-New-Lantern-77")
        dialog.get_by_role("button", name="Change password").click()
        expect(dialog.locator("#settings-old-password-error")).to_contain_text("not correct")
        dialog.locator("#settings-old-password").fill(PASSWORD)
        dialog.get_by_role("button", name="Change password").click()
        # then it says so; the old password is refused and the new one works
        expect(dialog.get_by_text("Password changed.")).to_be_visible()
        assert login_status(direct.url, username, PASSWORD) in (400, 401)
        assert login_status(direct.url, username, "Brand-New-Lantern-77") == 200
        # and this page keeps its session: its socket comes back with the new tokens, a send goes through
        dialog.get_by_role("button", name="Close").click()
        page.wait_for_function("() => window.messenger.store.state.connection === 'online'")
        page.reload()
        expect(page.locator(".sidebar__me")).to_contain_text(f"Alice {direct.suffix}")


def test_a_cropped_picture_shows_in_the_other_persons_sidebar(
    browser: Any, direct: DirectChat, viewport: dict[str, int]
) -> None:
    from PIL import Image

    # given Alice in her settings, Bob signed in
    with both_signed_in(browser, direct, viewport) as (alice, bob):
        dialog = open_settings(alice)
        # when she picks a wide picture, drags the square to its left end and saves
        dialog.locator("#settings-avatar-file").set_input_files(
            {"name": "me.png", "mimeType": "image/png", "buffer": png_bytes((200, 40, 40), (900, 300))}
        )
        cropper = alice.get_by_role("dialog", name="Crop your picture")
        canvas = cropper.locator(".cropper__canvas")
        expect(cropper.get_by_role("button", name="Save picture")).to_be_enabled()
        box = canvas.bounding_box()
        alice.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        alice.mouse.down()
        alice.mouse.move(box["x"] + box["width"] * 2, box["y"] + box["height"] / 2, steps=5)
        alice.mouse.up()
        cropper.get_by_role("button", name="Save picture").click()
        # then her own avatar shows the picture
        expect(cropper).to_be_hidden()
        expect(alice.locator(".sidebar__me .avatar__picture")).to_be_visible()
        # and the server keeps a square cut from the left end (the picture's red, not the white disc)
        me = get_json(f"{direct.url}/api/auth/me", direct.token("alice"))
        request = urllib.request.Request(f"{direct.url}{me['avatar_url']}")
        request.add_header("Authorization", f"Bearer {direct.token('bob')}")
        with urllib.request.urlopen(request, timeout=10) as response:
            picture = Image.open(io.BytesIO(response.read())).convert("RGB")
        assert picture.width == picture.height == 300
        centre = picture.getpixel((150, 150))
        assert isinstance(centre, tuple)
        assert all(abs(got - want) <= 8 for got, want in zip(centre, (200, 40, 40), strict=True))
        # and Bob sees it beside her name in his chat list
        bob.reload()
        item = bob.locator(".chat-list .chat-item", has_text=f"Alice {direct.suffix}")
        expect(item.locator(".avatar__picture")).to_be_visible()
        assert bob.evaluate("(img) => img.naturalWidth", item.locator(".avatar__picture").element_handle()) == 300
        # when she removes it, the initials are back
        dialog.get_by_role("button", name="Remove picture").click()
        expect(alice.locator(".sidebar__me .avatar__picture")).to_have_count(0)


def test_the_chosen_theme_applies_at_once_and_overrides_the_system(
    browser: Any, direct: DirectChat, viewport: dict[str, int], screenshot_dir: Any
) -> None:
    # given Alice on a system that prefers light, her chat with Bob open
    post_json(
        f"{direct.url}/api/chats/{direct.chat['id']}/messages", {"content": "Dark mode at last?"}, direct.token("bob")
    )
    with signed_in(browser, direct.url, f"alice_{direct.suffix}", viewport) as page:
        chat_background = "getComputedStyle(document.querySelector('.chat')).backgroundColor"
        page.locator(".chat-list .chat-item", has_text=f"Bob {direct.suffix}").click()
        expect(page.locator(".chat__title", has_text=f"Bob {direct.suffix}")).to_be_visible()
        assert page.evaluate(chat_background) != DARK_CHAT
        if viewport["width"] < 700:  # one column: the chat list (and its Settings button) is behind the chat
            page.get_by_role("button", name="Back to chats").click()
        # when she picks Dark
        dialog = open_settings(page)
        dialog.get_by_text("Dark", exact=True).click()
        # then the page is dark at once, and stays dark after a reload
        assert page.evaluate(chat_background) == DARK_CHAT
        page.wait_for_timeout(300)  # the buttons' colour transition (0.15 s), for the screenshot only
        page.screenshot(path=str(screenshot_dir / f"41-settings-dark-{viewport['width']}.png"))
        page.reload()
        page.wait_for_function("() => window.messenger.store.state.connection === 'online'")
        assert page.evaluate(chat_background) == DARK_CHAT
        # when she picks Light on a system that prefers dark, light wins
        page.emulate_media(color_scheme="dark")
        dialog = open_settings(page)
        dialog.get_by_text("Light", exact=True).click()
        assert page.evaluate(chat_background) != DARK_CHAT
        page.wait_for_timeout(300)
        page.screenshot(path=str(screenshot_dir / f"40-settings-light-{viewport['width']}.png"))
        # and System follows the system again
        dialog.get_by_text("System", exact=True).click()
        assert page.evaluate(chat_background) == DARK_CHAT
