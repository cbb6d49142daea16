"""Limits the reader meets head-on: a message over the length limit, the sign-up form's rules and a
refused upload, each shown plainly rather than cut, hidden or left as a broken image."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.direct_chat import alice_and_bob, alice_on_the_chat
from tests.e2e.test_messenger import TIMEOUT_MS, expect, png_bytes

pytestmark = pytest.mark.e2e


def test_a_message_over_the_limit_is_kept_whole_and_refused_with_a_reason(browser: Any, e2e_server: str) -> None:
    # given Alice in a chat, with a paste of 4100 characters in the composer
    direct = alice_and_bob(e2e_server)
    context, page, _ = alice_on_the_chat(browser, direct)
    try:
        composer = page.locator(".composer__input")
        composer.fill("y" * 4100)
        # then nothing is cut and the counter says how far over it is
        assert len(composer.input_value()) == 4100
        expect(page.locator(".composer__counter")).to_have_text("100 over")
        # when she presses Enter, it is not sent and the banner says why
        composer.press("Enter")
        expect(page.locator(".composer__banner--error")).to_contain_text("the limit is 4000")
        assert page.locator(".msg--pending").count() == 0
        # when she shortens it, the banner goes and it sends
        composer.fill("y" * 3990)
        expect(page.locator(".composer__banner")).to_be_hidden()
        expect(page.locator(".composer__counter")).to_have_text("10")
        composer.press("Enter")
        expect(page.locator(".msg--own .bubble__text")).to_have_count(1)
    finally:
        context.close()


def test_sign_up_shows_the_password_rules_and_every_fields_error_at_once(browser: Any, e2e_server: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(e2e_server)
        page.locator("text=Create an account").click()
        expect(page.locator(".field__hint", has_text="At least 8 characters")).to_be_visible()
        page.fill("#auth-username", "x!")
        page.fill("#auth-email", "not-an-email")
        page.fill("#auth-password", "1234")
        page.click("button[type=submit]")
        expect(page.locator("#auth-username-error")).to_contain_text("letters, digits")
        expect(page.locator("#auth-email-error")).to_contain_text("email address")
        expect(page.locator("#auth-password-error")).to_contain_text("at least 8 characters")
    finally:
        context.close()


def test_a_refused_upload_shows_the_error_and_no_thumbnail(browser: Any, e2e_server: str) -> None:
    direct = alice_and_bob(e2e_server)
    context, page, _ = alice_on_the_chat(browser, direct)
    try:
        # given the server refuses the image
        page.route(
            "**/api/attachments*",
            lambda route: route.fulfill(
                status=400, content_type="application/json", body='{"file": ["This image could not be read."]}'
            ),
        )
        page.locator("#composer-file").set_input_files(
            files=[{"name": "photo.png", "mimeType": "image/png", "buffer": png_bytes()}]
        )
        # then the tray shows the error, without a preview of an image that will not be sent
        expect(page.locator(".composer__upload .field__error")).to_be_visible()
        expect(page.locator(".composer__preview")).to_have_count(0)
    finally:
        context.close()
